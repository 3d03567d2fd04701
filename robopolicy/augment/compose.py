"""Augmenters composed in order on one generated copy (`augment=[pose,lighting,camera]`).

Each augmenter is a stage of one of three kinds (its ``stage`` attribute, or inferred):

- ``simulate`` (pose, swap): redoes the demo on a live env and records it from the replay; it may
  drop the copy. It reads only the kinematic records, so it must come before any stage that
  changes images, or it would throw their work away.
- ``render`` (lighting, camera, appearance): an edit of the Gaussian scene or of the cameras
  (`edit`). Consecutive render stages are merged and the frames rendered once, so lighting
  after appearance recolours the new table and a moved camera sees both.
- ``image`` (image2d): works on the frames it is given, so it comes after every render stage.

The order is checked when the stages are built: a stage of a lower kind after a higher one is a
one-line error. Each stage draws from its own random stream (`stage_rng`), so a copy's pose
draw is the same whether or not lighting follows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robopolicy.errors import RobopolicyError

STAGE_KINDS = ("simulate", "render", "image")
# leads every augmentation seed sequence: without it, seed [0, 0] draws the very placement
# `initial_pose(0)` does (numpy's seeding ignores trailing zero words)
AUGMENT_STREAM = 0xA11


def stage_kind(aug) -> str:
    kind = getattr(aug, "stage", None)
    if kind is None:
        kind = ("render" if hasattr(aug, "edit")
                else "simulate" if getattr(aug, "needs_env", True) else "image")
    assert kind in STAGE_KINDS, kind
    return kind


def stage_rng(seed: int, episode: int, copy: int, stage: int) -> np.random.Generator:
    """The random stream of one stage of one copy of one source episode."""
    return np.random.default_rng([AUGMENT_STREAM, seed, episode, copy, stage])


EVERY_COPY = 2**32 - 1  # stands for the copy in the stream every copy of an episode shares


def episode_rng(seed: int, episode: int, stage: int) -> np.random.Generator:
    """The random stream of one stage shared by every copy of one source episode."""
    return stage_rng(seed, episode, EVERY_COPY, stage)


@dataclass
class Stage:
    name: str
    aug: Any
    kind: str


def build_stages(names: list[str], params: dict[str, dict]) -> list[Stage]:
    """The augmenters `names` (in order) built from their `params`; the order is checked."""
    from robopolicy.augment.registry import augmenter_class

    if not names:
        raise RobopolicyError("augment: name at least one augmenter (augment=[pose,lighting])")
    if len(set(names)) < len(names):
        raise RobopolicyError(f"augment: an augmenter is named twice in {list(names)}")
    stages = []
    for name in names:
        cls = augmenter_class(name)
        try:
            aug = cls(dict(params.get(name) or {}))
        except TypeError as e:
            raise RobopolicyError(f"augment: {name} params: {e}") from None
        stages.append(Stage(name, aug, stage_kind(aug)))
    for a, b in zip(stages, stages[1:], strict=False):
        if STAGE_KINDS.index(b.kind) < STAGE_KINDS.index(a.kind):
            raise RobopolicyError(
                f"augment: {b.name} ({b.kind}) must come before {a.name} ({a.kind}) in "
                f"augment=[...]: a {b.kind} stage redoes the frames a {a.kind} stage made")
    renders = [s for s in stages if s.kind == "render"]
    if any(s.aug.frames.params != renders[0].aug.frames.params for s in renders):
        raise RobopolicyError("augment: the render stages "
                              f"{[s.name for s in renders]} name different fits "
                              "(params.fit, params.fit_cache_dir); give them the same")
    return stages


def needs_env(stages: list[Stage]) -> bool:
    return any(s.kind == "simulate" for s in stages)


def image_source(stages: list[Stage]) -> str:
    """How the final frames are made: by the last stage that makes frames."""
    return stages[-1].aug.image_source


@dataclass
class Outcome:
    """One generated copy: kept or not (and why), its data and metadata (``completion``,
    ``skill_starts``, ``cameras``) and each stage's draw so far."""

    kept: bool
    reason: str = ""
    data: dict[str, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)


def image_size(env, data: dict[str, np.ndarray]) -> tuple[int, int]:
    """(width, height) of the frames: the env's, else the data's images'."""
    if env is not None:
        return tuple(env.config.image_size)
    for key, value in data.items():
        if key.startswith(("rgb.", "depth.", "part_mask.")):
            return int(value.shape[2]), int(value.shape[1])
    return (128, 128)


def run_copy(stages: list[Stage], env, task, source: dict[str, np.ndarray], source_meta: dict,
             seed: int, episode: int, copy: int) -> Outcome:
    """Stages applied in order to one copy of a source episode (see the module docstring)."""
    data = source
    meta = {**source_meta, "cameras": source_meta.get("cameras", "")}
    drawn: list[dict] = []
    k = 0
    while k < len(stages):
        stage = stages[k]
        if stage.kind == "render":
            group = [stage]
            while k + len(group) < len(stages) and stages[k + len(group)].kind == "render":
                group.append(stages[k + len(group)])
            data, meta = _render_group(group, env, data, meta, drawn,
                                       [stage_rng(seed, episode, copy, k + j)
                                        for j in range(len(group))])
            k += len(group)
            continue
        if hasattr(stage.aug, "copy_variant"):
            # an augmenter whose copies must differ (swap: one instance each) draws from the
            # episode's stream and is told which copy this is
            var = stage.aug.copy_variant(env, task, data, meta, episode_rng(seed, episode, k), copy)
        else:
            var = next(iter(stage.aug.variants(env, task, data, meta,
                                               stage_rng(seed, episode, copy, k), 1)), None)
        if var is None:
            return Outcome(False, f"{stage.name}: nothing to draw for this copy", None, meta, drawn)
        drawn.append({"augmenter": stage.name, "params": _jsonable(var.meta.get("params", {}))})
        if not var.success:
            return Outcome(False, f"{stage.name}: {var.reason}", None, meta, drawn)
        data = var.data
        # a stage's metadata (completion, skill_starts, cameras; a swap's instance) is the
        # copy's from here on
        meta = {**meta, **{k: v for k, v in var.meta.items() if k != "params"}}
        k += 1
    return Outcome(True, "", data, meta, drawn)


def _render_group(group: list[Stage], env, data, meta, drawn: list[dict], rngs):
    from robopolicy.augment.frames import camera_to_dict, episode_cameras, image_keys

    if not image_keys(data):
        raise RobopolicyError("augment: the source store has no image keys (rgb.<cam>, "
                              "depth.<cam>, part_mask.<cam>) to re-render")
    frames = group[0].aug.frames.get(meta["category"], meta["instance_id"])
    size = image_size(env, data)
    scene, cameras = frames.scene, episode_cameras(meta)
    for stage, rng in zip(group, rngs, strict=True):
        edit = stage.aug.edit(frames, scene, data, size, rng)
        scene = edit.scene if edit.scene is not None else scene
        cameras.update(edit.cameras)
        drawn.append({"augmenter": stage.name, "params": _jsonable(edit.drawn)})
    images = frames.render_episode(data, meta, list(data), size, scene=scene,
                                   cameras=cameras or None)
    data = {key: images.get(key, value) for key, value in data.items()}
    cams = json.dumps({c: camera_to_dict(v) for c, v in cameras.items()}) if cameras else ""
    return data, {**meta, "cameras": cams}


def _jsonable(value):
    """`value` with numpy scalars and arrays made plain (for the provenance JSON)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist")
                                 else str(v)))
