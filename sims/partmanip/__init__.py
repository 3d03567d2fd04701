"""The part-level manipulation suite: tasks, skills, predicates, the gymnasium env and the expert.

`make_env` (`sims.partmanip.factory`) builds the env; it is loaded on first use, so importing
this package stays cheap.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "make_env":
        from sims.partmanip.factory import make_env

        return make_env
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
