"""Save and load policies as directories, without pickling.

A policy directory holds:

- ``config.yaml``: the resolved hydra policy config (``_target_`` + constructor kwargs, and
  ``name``), without ``shape_meta``;
- ``model.safetensors``: the state dict (network weights and normalizer statistics);
- ``meta.json``: ``{"policy": name, "shape_meta": ..., "robopolicy_version": ..., **extra}``.

``save_policy`` writes into a temporary sibling directory and renames it into place, so a
crash never leaves a half-written policy. ``load_policy`` never runs code a file names: every
``_target_`` in config.yaml (at any depth) must be an exact allowed class (the registries' policy
and planner classes at the top, ``COMPONENT_TARGETS`` below) before hydra builds anything, and the weights
are read with safetensors; problems raise a one-line RobopolicyError that names the directory.

    save_policy(policy, "outputs/run/checkpoints/latest/pretrained_model", config=cfg.policy)
    policy = load_policy("outputs/run/checkpoints/latest/pretrained_model", expected="diffusion_unet")
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra.utils
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import robopolicy
from robopolicy.errors import RobopolicyError
from robopolicy.planners import planner_targets
from robopolicy.policies import policy_target, policy_targets
from robopolicy.policies.base import Policy, to_plain

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"

# The `_target_`s a policy config may name below its top level, exactly (the top level must
# name a class of the policy registry, `robopolicy.policies.policy_targets`). hydra builds every
# `_target_` it meets at any depth, so anything else could call arbitrary code when a downloaded
# policy directory is loaded.
# Schedulers: the diffusion policy's training noise scheduler (its inference scheduler is picked
# by name, `inference_scheduler: ddim|ddpm`, and built by the policy).
SCHEDULER_TARGETS = frozenset({"diffusers.DDPMScheduler"})
# Networks and encoders: none. The shipped configs give ConditionalUnet1D, TransformerDenoiser,
# ObsEncoder, the text encoder and robomimic's algorithms as plain kwargs the policy classes
# build, so a config never needs to name one.
NETWORK_TARGETS: frozenset[str] = frozenset()
COMPONENT_TARGETS = SCHEDULER_TARGETS | NETWORK_TARGETS


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_targets(config: Any, source: str) -> None:
    """Refuse, in one line naming `source` and the dotted key, any `_target_` in `config` (at any
    depth) that is not an exact allowed class (at the top: a registered policy or planner);
    nothing is imported or built before this passes."""
    policies = policy_targets() | planner_targets()

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            if "_target_" in node:
                target, allowed = node["_target_"], policies if not where else COMPONENT_TARGETS
                if not isinstance(target, str) or target not in allowed:
                    raise RobopolicyError(
                        f"{source}: key '{where}_target_' names {target!r}, which is not an allowed "
                        f"class here (allowed: {', '.join(sorted(allowed))})")
            for key, value in node.items():
                walk(value, f"{where}{key}.")
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f"{where}{i}.")

    walk(config, "")


def instantiate_policy(config: Mapping, shape_meta: Mapping, source: str = "policy config") -> Policy:
    """Build a policy from its hydra config (``_target_`` + kwargs, ``name`` allowed) and shape_meta;
    every ``_target_`` in it must be an allowed class (`check_targets`; `source` names the config)."""
    config = to_plain(config)
    if "_target_" not in config:
        raise RobopolicyError("policy config has no _target_")
    check_targets(config, source)
    try:
        policy = hydra.utils.instantiate(config, shape_meta=to_plain(shape_meta), _convert_="all")
    except InstantiationException as exc:
        # hydra wraps errors raised by the constructor; surface our own one-line errors as they are.
        if isinstance(exc.__cause__, RobopolicyError):
            raise exc.__cause__ from None
        raise
    if not isinstance(policy, Policy):
        raise RobopolicyError(
            f"policy config _target_ '{config['_target_']}' did not build a Policy"
        )
    return policy


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_policy(
    policy: Policy, path: str | os.PathLike, config: Mapping, extra_meta: Mapping | None = None
) -> Path:
    """Write ``policy`` to directory ``path`` (replacing an earlier policy there); returns the path.

    ``config`` is the policy's hydra config (a dict or DictConfig); ``shape_meta`` in it is
    dropped (it is stored in meta.json from the policy itself).
    """
    path = Path(path)
    config = dict(to_plain(config))
    config.pop("shape_meta", None)
    if "_target_" not in config:
        raise RobopolicyError(f"cannot save policy to {path}: config has no _target_")
    if config.get("name", policy.name) != policy.name:
        raise RobopolicyError(
            f"cannot save policy to {path}: config name '{config['name']}' but policy is '{policy.name}'"
        )
    if path.exists() and (
        not path.is_dir() or (any(path.iterdir()) and not (path / META_FILE).exists())
    ):
        raise RobopolicyError(
            f"cannot save policy to {path}: it exists and is not a policy directory"
        )

    meta = {
        "policy": policy.name,
        "shape_meta": policy.shape_meta,
        "robopolicy_version": robopolicy.__version__,
        **(extra_meta or {}),
    }
    state = {k: v.detach().to("cpu").contiguous() for k, v in policy.state_dict().items()}

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _fsync_write(tmp / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(config)).encode())
        _fsync_write(tmp / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_policy(
    path: str | os.PathLike, expected: str | None = None, device: str | torch.device = "cpu"
) -> Policy:
    """Load a policy directory written by ``save_policy``; returns it in eval mode on ``device``.

    ``expected``: the policy name the caller needs (e.g. "diffusion_unet"); another type fails.
    """
    path = Path(path)
    if not path.is_dir():
        raise RobopolicyError(f"policy at {path}: no such directory")
    for file in (CONFIG_FILE, WEIGHTS_FILE, META_FILE):
        if not (path / file).is_file():
            raise RobopolicyError(f"policy at {path}: missing {file}")
    try:
        meta = json.loads((path / META_FILE).read_text())
        name, shape_meta = meta["policy"], meta["shape_meta"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RobopolicyError(
            f"policy at {path}: unreadable {META_FILE} ({_one_line(exc)})"
        ) from exc
    if expected is not None and name != expected:
        raise RobopolicyError(f"policy at {path} is a '{name}' policy, expected '{expected}'")

    try:
        config = OmegaConf.to_container(OmegaConf.load(path / CONFIG_FILE), resolve=True)
    except Exception as exc:
        raise RobopolicyError(
            f"policy at {path}: unreadable {CONFIG_FILE} ({_one_line(exc)})"
        ) from exc
    if not isinstance(config, dict) or "_target_" not in config:
        raise RobopolicyError(f"policy at {path}: {CONFIG_FILE} has no _target_")
    source = f"policy at {path}: {CONFIG_FILE}"
    check_targets(config, source)
    try:
        expected_target = policy_target(str(name))
    except RobopolicyError as exc:
        raise RobopolicyError(f"policy at {path}: {META_FILE}: {exc}") from None
    if config["_target_"] != expected_target:
        raise RobopolicyError(
            f"{source} _target_ '{config['_target_']}' does not match meta policy '{name}'"
        )
    try:
        policy = instantiate_policy(config, shape_meta, source)
    except RobopolicyError as exc:
        if str(exc).startswith(source):
            raise
        raise RobopolicyError(f"policy at {path}: {exc}") from exc
    except Exception as exc:
        raise RobopolicyError(
            f"policy at {path}: cannot build from {CONFIG_FILE} ({_one_line(exc)})"
        ) from exc

    try:
        state = load_file(str(path / WEIGHTS_FILE), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise RobopolicyError(
            f"policy at {path}: corrupt {WEIGHTS_FILE} ({_one_line(exc)})"
        ) from exc
    _check_state(policy.state_dict(), state, path)
    policy.load_state_dict(state, strict=True)
    return policy.to(device).eval()


def _check_state(
    model: Mapping[str, torch.Tensor], saved: Mapping[str, torch.Tensor], path: Path
) -> None:
    """Raise a one-line error naming the first key where the saved weights differ from the model."""
    problems = [
        f"key '{k}' is in the model but not in {WEIGHTS_FILE}" for k in model if k not in saved
    ]
    problems += [
        f"key '{k}' in {WEIGHTS_FILE} is not in the model" for k in saved if k not in model
    ]
    problems += [
        f"key '{k}' has shape {list(saved[k].shape)} in {WEIGHTS_FILE}, {list(model[k].shape)} in the model"
        for k in model
        if k in saved and saved[k].shape != model[k].shape
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RobopolicyError(
            f"policy at {path}: weights do not match the architecture in {CONFIG_FILE}: {problems[0]}{more}"
        )
