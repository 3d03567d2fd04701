"""A registry of classes by name, shared by the policy and planner registries.

Built-in classes are listed as ``name -> "module:Class"`` and imported only when asked for by
name, so importing a package that holds a registry stays cheap (no torch). A class registers
itself with the registry's decorator, which also sets its ``name`` attribute (the name a
config and a checkpoint use). Every message names the registry's kind ("policy", "planner").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from robopolicy.errors import RobopolicyError

T = TypeVar("T", bound=type)


class Registry:
    """Classes of one kind by name: the built-in table plus whatever registers itself."""

    def __init__(self, kind: str, builtin: Mapping[str, str]) -> None:
        self.kind = kind
        self.builtin = dict(builtin)
        self._classes: dict[str, type] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Class decorator: register a class under ``name`` and set ``cls.name``. A built-in passes
        no name: its name is its entry in the built-in table, so each built-in name is written
        once."""

        def decorator(cls: T) -> T:
            path = f"{cls.__module__}:{cls.__qualname__}"
            dotted = path.replace(":", ".")
            key = name
            if key is None:
                names = [n for n, p in self.builtin.items() if p == path]
                if not names:
                    raise RobopolicyError(
                        f"{dotted} is not a built-in {self.kind}: register it with a name, "
                        f"@register_{self.kind}(\"name\")")
                key = names[0]
            builtin = self.builtin.get(key)
            if builtin is not None and builtin != path:
                # the built-in table and the decorator must agree, or a config's _target_ and
                # the name in a checkpoint could point at two different classes
                raise RobopolicyError(f"{self.kind} name '{key}' is the built-in {builtin}; "
                                      f"{dotted} cannot take it")
            known = self._classes.get(key)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise RobopolicyError(f"{self.kind} name '{key}' is already registered by "
                                      f"{known.__module__}.{known.__qualname__}")
            cls.name = key
            self._classes[key] = cls
            return cls

        return decorator

    def available(self) -> list[str]:
        """Names of all known classes (built-in and registered)."""
        return sorted(set(self.builtin) | set(self._classes))

    def unknown(self, name: Any) -> RobopolicyError:
        """The one-line error for a name nothing is registered under."""
        return RobopolicyError(f"unknown {self.kind} '{name}' (known: {', '.join(self.available())})")

    def target(self, name: str) -> str:
        """The dotted class path a config's ``_target_`` names for ``name`` (no import)."""
        if name in self._classes:
            cls = self._classes[name]
            return f"{cls.__module__}.{cls.__qualname__}"
        if name in self.builtin:
            return self.builtin[name].replace(":", ".")
        raise self.unknown(name)

    def targets(self) -> dict[str, str]:
        """Every known class path (``_target_``) -> its registry name."""
        return {self.target(name): name for name in self.available()}

    def get_class(self, name: str) -> type:
        """The class registered as ``name``; imports a built-in's module on demand."""
        if name not in self._classes and name in self.builtin:
            importlib.import_module(self.builtin[name].split(":")[0])
        if name not in self._classes:
            raise self.unknown(name)
        return self._classes[name]
