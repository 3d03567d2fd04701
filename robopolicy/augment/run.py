"""`robopolicy augment`: new episodes from a source store's by an augmenter, written to a new
store with their provenance, and the yield (kept / generated) per task class."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robopolicy.data.store import EpisodeStore
from robopolicy.errors import RobopolicyError
from robopolicy.progress import progress

log = logging.getLogger(__name__)
REPORT_FILE = "augment_report.json"
# leads every augmentation seed sequence: without it, seed [0, 0] draws the very placement
# `initial_pose(0)` does (numpy's seeding ignores trailing zero words)
AUGMENT_STREAM = 0xA11


@dataclass(frozen=True)
class AugmentConfig:
    """What an augmentation run does (configs/augment.yaml builds it).

    Attributes:
        augmenter: a registered augmenter's name (`configs/augment/<name>.yaml`).
        source: the demo store to augment (it must record robot_joints, object_pose,
            articulation).
        out: the new store (must not exist, unless ``overwrite``).
        per_episode: variants generated per source episode (kept only if they succeed).
        episodes: source episodes to use (None: all).
        seed: seeds the variants (source episode i's draw from ``[AUGMENT_STREAM, seed, i]``).
        params: the augmenter's parameters.
    """

    augmenter: str
    source: Path
    out: Path
    per_episode: int = 1
    episodes: int | None = None
    seed: int = 0
    overwrite: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Path(self.source))
        object.__setattr__(self, "out", Path(self.out))
        for name in ("per_episode", "episodes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise RobopolicyError(f"augment: {name} must be a positive integer, got {value!r}")


@dataclass
class AugmentSummary:
    path: Path
    generated: int
    kept: int
    by_class: dict[int, list[int]]  # class -> [kept, generated]
    wall_s: float

    def table(self) -> str:
        lines = ["class  kept/generated  yield"]
        for c, (k, g) in sorted(self.by_class.items()):
            lines.append(f"{c:>5}  {k:>6}/{g:<9}  {k / max(g, 1):.0%}")
        lines.append(f"  all  {self.kept:>6}/{self.generated:<9}  "
                     f"{self.kept / max(self.generated, 1):.0%}")
        return "\n".join(lines)


def _open_source(path: Path) -> EpisodeStore:
    if not path.exists():
        raise RobopolicyError(f"augment: source store {path} does not exist")
    return EpisodeStore.open(path)


def augment(config: AugmentConfig) -> AugmentSummary:
    """Run `config` (see :class:`AugmentConfig`); return the yield."""
    from robopolicy.augment.registry import augmenter_class
    from robopolicy.viewer.sources import from_store
    from sims.partmanip.factory import make_env
    from sims.partmanip.obs_layout import RECORDED_KEYS
    from sims.partmanip.tasks import TaskSpec

    c = config
    cls = augmenter_class(c.augmenter)
    source = _open_source(c.source)
    missing = [k for k in RECORDED_KEYS if k not in source.keys]
    if missing:
        raise RobopolicyError(f"augment: source store {c.source} has no {missing} per step; "
                              "collect it again with `robopolicy collect`")
    try:
        aug = cls(c.params)
    except TypeError as e:
        raise RobopolicyError(f"augment: {c.augmenter} params: {e}") from None
    n_src = source.n_episodes if c.episodes is None else min(c.episodes, source.n_episodes)
    obs_keys = [k for k in source.shape_meta["obs"]]
    # augmenters that only re-render (lighting, camera) need no simulator
    env = make_env({**source.env_config["env"], "obs_keys": obs_keys},
                   source.env_config["tasks"]) if getattr(aug, "needs_env", True) else None
    out = EpisodeStore.create(
        c.out, source.shape_meta, env_config=source.env_config, overwrite=c.overwrite,
        obs_layout=source.obs_layout,
        attrs={"image_source": aug.image_source,
               "augment": {"augmenter": c.augmenter, "source": str(c.source), "seed": c.seed,
                           "per_episode": c.per_episode, "params": dict(c.params)}})
    by_class: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    reasons: list[dict] = []
    t0 = time.perf_counter()
    try:
        with progress(total=n_src * c.per_episode, desc=f"augment {c.augmenter}",
                      unit="demo") as bar:
            for i in range(n_src):
                meta = source.episode_meta(i)
                task = TaskSpec.from_dict(from_store(source, i).task)
                data = source.get_episode(i)
                rng = np.random.default_rng([AUGMENT_STREAM, c.seed, i])
                for v, var in enumerate(aug.variants(env, task, data, meta, rng, c.per_episode)):
                    stats = by_class[meta["task_class"]]
                    stats[1] += 1
                    reasons.append({"episode": i, "variant": v, "kept": var.success,
                                    "reason": var.reason})
                    if var.success:
                        stats[0] += 1
                        out.add_episode(var.data, _meta(meta, var, c, i, v))
                    bar.update(1)
    finally:
        if env is not None:
            env.close()
    kept = sum(k for k, _ in by_class.values())
    summary = AugmentSummary(c.out, sum(g for _, g in by_class.values()), kept,
                             dict(by_class), time.perf_counter() - t0)
    (c.out / REPORT_FILE).write_text(json.dumps(
        {"by_class": {str(k): v for k, v in summary.by_class.items()},
         "generated": summary.generated, "kept": kept, "variants": reasons}, indent=1))
    log.info("augment %s: kept %d of %d in %.1f s", c.augmenter, kept, summary.generated,
             summary.wall_s)
    return summary


def _meta(src: dict, var, c: AugmentConfig, episode: int, variant: int) -> dict:
    keep = ("task_id", "task_class", "category", "instance_id", "split", "seed", "init_seed",
            "backend", "instruction", "skill_instructions", "chain")
    params = dict(var.meta["params"])
    # an augmenter that changes the instance (`swap`) names it in its variant's meta
    return {**{k: src[k] for k in keep}, "instance_id": var.meta.get("instance_id", src["instance_id"]),
            "success": True,
            "completion": var.meta["completion"], "skill_starts": var.meta["skill_starts"],
            "cameras": var.meta.get("cameras", ""),
            "source": f"augment:{c.augmenter}",
            "provenance": json.dumps({"store": str(c.source), "episode": episode,
                                      "variant": variant, "augmenter": c.augmenter,
                                      "seed": c.seed, "params": params})}


def initial_options(store: EpisodeStore, episode: int) -> dict:
    """`env.reset` options that start a stored episode (augmented or not) from its recorded
    initial state: its task, and for a `pose`-augmented one its placement."""
    from robopolicy.viewer.sources import from_store

    options = {"task": from_store(store, episode).task}
    prov = store.episode_meta(episode)["provenance"]
    if prov:
        p = json.loads(prov)["params"]
        if "x" in p:
            options["placement"] = (p["x"], p["y"], p["yaw"])
    return options
