"""The training state a run resumes from (`checkpoints/train_state.pt`), saved without pickled code.

Everything in it is a tensor, a plain container (dict, list, tuple) or a number/string/bool/None,
so `torch.load(..., weights_only=True)` reads it: loading a downloaded run folder can never call
code. Random states are stored in those types too (numpy's bit generator state as its plain dict,
the global numpy and python states as tensors/lists) and restore exactly, which keeps a resumed
run bit for bit equal to one never interrupted.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robopolicy.errors import RobopolicyError

STATE_FILE = "train_state.pt"
# Keys a training state must hold to be resumed from.
REQUIRED_KEYS = ("step", "run", "model", "optimizer", "scheduler", "ema", "rng", "order", "cursor")


def capture_rng(generator: np.random.Generator, cuda: bool) -> dict[str, Any]:
    """Every random state a training step draws from, in types weights_only loading accepts."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "generator": generator.bit_generator.state,  # a dict of str and int
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, torch.from_numpy(np.asarray(np_keys).copy()), int(np_pos),
                  int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda else None,
    }


def restore_rng(state: dict[str, Any], generator: np.random.Generator, cuda: bool) -> None:
    """Put back the random states `capture_rng` took (CUDA's only when training on CUDA)."""
    generator.bit_generator.state = state["generator"]
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, np_gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if cuda and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, state: dict) -> None:
    """Write the training state atomically (a kill mid-write leaves the previous one)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path, run: dict) -> dict:
    """The training state at `path`, read with `weights_only=True` (no code runs while reading);
    it must come from a run with the same configuration `run`."""
    if not path.is_file():
        raise RobopolicyError(f"resume: no training state at {path} (the run saved no checkpoint yet)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # names a global outside tensors and plain containers
        reason = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line), "")
        raise RobopolicyError(f"resume: {path} is not a plain training state (it needs code to "
                              f"load{': ' + reason if reason else ''}); refusing to load it") from None
    except Exception as e:  # a truncated or foreign file
        first = (str(e).strip().splitlines() or [""])[0]
        raise RobopolicyError(f"resume: cannot read {path}: {type(e).__name__}: {first}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise RobopolicyError(f"resume: {path} is not a training state (no {', '.join(missing)})")
    saved_run = state["run"] if isinstance(state["run"], dict) else {}
    differ = sorted(k for k in run if saved_run.get(k) != run[k])
    if differ:
        raise RobopolicyError(f"resume: {path} was written by a run with other settings "
                              f"({', '.join(differ)}); start a new run instead")
    return state
