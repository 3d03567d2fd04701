"""The task catalog: every task of the suite with its split, and fixed episode lists per split.

A pure function of a seed (and the object library). A task is (class, category, parameters);
an episode is a task on one instance from one initial state (`init_seed`). Splits:

| split | tasks | instances | initial states |
|---|---|---|---|
| train, val, test1 (OS) | the train tasks | train instances | disjoint seed ranges |
| test2 (OI) | the train tasks | held-out instances | own seeds |
| test3 (TP) | held-out (class, category, part) triples: one grasped/touched part per class and seen category | train instances | own seeds |
| test4 (TC) | classes never trained: 10 and 15 (each composes skills the train classes teach) | train instances | own seeds, horizon 400 |
| test5 (OC) | the unseen categories (knife, bucket, box, pliers), train classes | all their instances | own seeds |

Only physically sensible parameters are enumerated: grasped parts are the category's grasp
parts; pushes touch a part and move horizontally, and a push on a side (left/right/front/
back, a spatial part) moves away from that side; a grasped object is first moved up or
sideways, never down into the table, never straight back where it came from, and down only
once it is up; a rotation turns a part that sits off the object's centre and not far above
or below it (a mug's handle, a laptop's screen) to face a horizontal direction, after
lifting. A task is kept only if the expert can do each of its part-level units (carry the
object by its grasped part, turn it while holding that part, push it by its touched part), as
measured in `sims/partmanip/feasibility.json` (see `sims.partmanip.feasibility`): turning a
laptop by its screen frame or pushing a bottle by its neck is enumerable but not sensible.
At most TASKS_PER_CELL tasks are drawn per (class, category), by the seed. An
episode of a touch-then-push task starts from an initial state (instance and seed) where its
first push is possible: the initial yaw can turn the touched side away or hide it behind
another part. Class 14 pushes after turning the object, so its episodes start on an instance
where the push is possible once the turn is done.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from sims.core.directions import DIRECTIONS
from sims.partmanip.classes import CLASSES, HORIZONTAL, TaskParams, n_directions, placeholders
from sims.partmanip.tasks import DEFAULT_HORIZON, TaskSpec, make_task

SPLITS: tuple[str, ...] = ("train", "val", "test1", "test2", "test3", "test4", "test5")
TEST4_CLASSES: tuple[int, ...] = (10, 15)
TASKS_PER_CELL = 12
NOVEL_CLASS_HORIZON = 400
SIDES: tuple[str, ...] = ("left", "right", "front", "back")  # spatial parts a push may touch
OPPOSITE = {"left": "right", "right": "left", "front": "back", "back": "front", "top": "bottom",
            "bottom": "top"}
ROTATE_MIN_OFFSET = 0.15  # part centre at least this fraction of the object's size off its centre
# A part further above/below the object's centre than this (in every instance) is not turned to
# face a horizontal direction: that needs the object tipped on its side, which a top-down
# grasp cannot hold (a bottle's cap, a bucket's handle); the expert tilts up to this much.
ROTATE_MAX_ELEVATION = np.radians(45.0)
SEED_BASE = {s: 1_000_000 * (i + 1) for i, s in enumerate(SPLITS)}  # disjoint init seeds
PUSH_START_TRIES = 4  # initial states tried for a push task (half on its drawn instance)
PUSH_SEED_STRIDE = 100_000  # > episodes per split: a retried seed never meets another episode's
GRASP_CLASSES_P = {1, 3, 5, 7, 8, 9, 10, 11, 14, 16}  # classes whose P is grasped (else touched)
Q_GRASPED = {12, 15, 16}  # two-phase classes whose Q is grasped (else touched)
TOUCH_THEN_MOVE = {4, 6, 12, 13, 15}  # classes whose first move follows touch(P)
PUSH_AFTER_TURN = {14}  # classes that push the object after turning it (R to face F)


@dataclass(frozen=True)
class CategoryParts:
    """Which parts of a category tasks may use, and which instances have each part (and can
    have it turned to face a direction)."""

    grasp: tuple[str, ...]
    touch: tuple[str, ...]
    rotate: tuple[str, ...]
    instances_with: dict[str, frozenset[int]] = field(default_factory=dict)
    rotatable_in: dict[str, frozenset[int]] = field(default_factory=dict)


@cache
def _asset(category: str, instance: int):
    """One generated instance (generated once per process)."""
    from sims.objects import make_instance

    return make_instance(category, instance)


@cache
def category_parts(category: str) -> CategoryParts:
    """Grasp parts from the spec; touch parts = parts with collision geometry; rotate parts =
    parts whose centre sits off the object's centre and at most ROTATE_MAX_ELEVATION above or
    below it in at least half of the instances that have them (tasks turning them use only
    those instances). Generates every instance of the category (a few seconds)."""
    from sims.objects.geometry import load_category_spec
    from sims.objects.kinematics import object_points
    from sims.objects.library import n_instances

    spec = load_category_spec(category)
    vocab = list(spec["parts"])
    have: dict[str, set[int]] = {p: set() for p in vocab}
    rotatable: dict[str, set[int]] = {p: set() for p in vocab}
    collides: set[str] = set()
    for i in range(n_instances(category)):
        asset = _asset(category, i)
        pts, _, idx, names = object_points(asset)
        centre = pts.mean(axis=0)
        size = float(np.max(pts.max(0) - pts.min(0)))
        for k, name in enumerate(names):
            have[name].add(i)
            v = pts[idx == k].mean(axis=0) - centre
            elevation = np.arctan2(abs(v[2]), np.linalg.norm(v[:2]))
            if np.linalg.norm(v) >= ROTATE_MIN_OFFSET * size and elevation <= ROTATE_MAX_ELEVATION:
                rotatable[name].add(i)
        collides |= {g.part for g in asset.geoms if g.collide}
    present = [p for p in vocab if have[p]]
    return CategoryParts(
        grasp=tuple(p for p in spec["grasp_parts"] if have.get(p)),
        touch=tuple(p for p in present if p in collides),
        rotate=tuple(p for p in present if p in collides and 2 * len(rotatable[p]) >= len(have[p])),
        instances_with={p: frozenset(v) for p, v in have.items()},
        rotatable_in={p: frozenset(v) for p, v in rotatable.items()},
    )


def _grasp_moves(n: int) -> list[tuple[str, ...]]:
    """Move sequences for a grasped object: start up or sideways, never undo the last move,
    down only when above the table."""
    out = []
    for seq in itertools.product(DIRECTIONS, repeat=n):
        height, ok = 0, True
        for i, d in enumerate(seq):
            if (i and d == OPPOSITE[seq[i - 1]]) or (d == "bottom" and height <= 0):
                ok = False
                break
            height += {"top": 1, "bottom": -1}.get(d, 0)
        if ok:
            out.append(seq)
    return out


def _push_dirs(part: str) -> list[str]:
    """Where a push touching `part` may go: away from a touched side, else any horizontal way."""
    return [OPPOSITE[part]] if part in SIDES else list(HORIZONTAL)


def unit_roles(task_class: int, params: TaskParams) -> list[tuple[str, str]]:
    """The (role, part) units a task uses (see `sims.partmanip.feasibility`): parts grasped
    and carried, held while the object turns, touched to push."""
    p_role = "grasp" if task_class in GRASP_CLASSES_P else "push" if task_class in TOUCH_THEN_MOVE else None
    out = [(p_role, params.part)] if p_role else []
    if params.rotate_part and task_class != 15:
        out.append(("rotate", params.part))
    if params.part2:
        out.append(("grasp" if task_class in Q_GRASPED else "push", params.part2))
        if task_class == 15:
            out.append(("rotate", params.part2))
    return out


def enumerate_params(task_class: int, parts: CategoryParts,
                     infeasible: frozenset[tuple[str, str]] = frozenset()) -> list[TaskParams]:
    """Every sensible parameter set of a class for a category's parts, without those using an
    `infeasible` (role, part) unit."""
    out = _all_params(task_class, parts)
    return [t for t in out if not infeasible.intersection(unit_roles(task_class, t))]


def _all_params(task_class: int, parts: CategoryParts) -> list[TaskParams]:
    need = placeholders(task_class)
    p_parts = parts.grasp if task_class in GRASP_CLASSES_P else parts.touch + SIDES
    q_parts = (parts.grasp if task_class in Q_GRASPED else parts.touch + SIDES) if "Q" in need else (None,)
    r_parts = parts.rotate if "R" in need else (None,)
    facings = HORIZONTAL if "F" in need else (None,)
    nd = n_directions(task_class)
    out = []
    for p, q, r, f in itertools.product(p_parts, q_parts, r_parts, facings):
        if r is not None and r == (q if task_class == 15 else p):
            continue  # turning the held part to face somewhere says little about the object
        if task_class in TOUCH_THEN_MOVE:
            firsts = [(d,) for d in _push_dirs(p)]
        elif nd and task_class != 14:  # class 14's only free move is its phase-2 push
            firsts = _grasp_moves(nd if task_class not in (5, 16) else 1)
            if task_class in (5, 16):  # carry sideways, then put down
                firsts = [s for s in firsts if s[0] in HORIZONTAL]
        else:
            firsts = [()]
        for dirs in firsts:
            if task_class == 13:  # second push, from a side of the pushed object
                for d2 in _push_dirs(q):
                    out.append(TaskParams(p, (*dirs, d2), r, f, q))
            elif task_class == 14:
                for d in _push_dirs(q):
                    out.append(TaskParams(p, (d,), r, f, q))
            elif task_class == 16:
                for d2 in HORIZONTAL:
                    if d2 != OPPOSITE[dirs[0]]:
                        out.append(TaskParams(p, (*dirs, d2), r, f, q))
            else:
                out.append(TaskParams(p, tuple(dirs), r, f, q))
    return out


def build_catalog(seed: int = 0, train_episodes: int = 10_000, episodes_per_cell: int = 16,
                  val_per_category: int = 4) -> dict:
    """The catalog as a JSON-ready dict: tasks with their split and fixed episode lists."""
    from sims.objects.library import split_manifest
    from sims.partmanip.feasibility import infeasible_for, load_table

    manifest = split_manifest()
    cats = manifest["categories"]
    table = load_table()
    rng = np.random.default_rng([seed, 1302])
    tasks: list[dict] = []
    for category in sorted(cats):
        entry = cats[category]
        parts = category_parts(category)
        for task_class in CLASSES:
            if entry["split"] == "unseen" and task_class in TEST4_CLASSES:
                continue
            options = enumerate_params(task_class, parts, infeasible_for(category, table))
            if not options:
                continue
            order = rng.permutation(len(options))[:TASKS_PER_CELL]
            chosen = sorted((options[i] for i in order), key=lambda t: t.key())
            if entry["split"] == "unseen":
                split_of = dict.fromkeys((t.key() for t in chosen), "test5")
            elif task_class in TEST4_CLASSES:
                split_of = dict.fromkeys((t.key() for t in chosen), "test4")
            else:
                primaries = sorted({t.part for t in chosen})
                held = primaries[int(rng.integers(len(primaries)))] if len(primaries) > 1 else None
                split_of = {t.key(): "test3" if t.part == held else "train" for t in chosen}
            for t in chosen:
                task = make_task(task_class, category, t.part, directions=t.directions,
                                 rotate_part=t.rotate_part, facing=t.facing, part2=t.part2,
                                 horizon=NOVEL_CLASS_HORIZON if task_class in TEST4_CLASSES
                                 else DEFAULT_HORIZON)
                needed = {t.part, t.part2, t.rotate_part} - {None, *SIDES}
                tasks.append({"task_id": task.task_id, "task_class": task_class,
                              "category": category, "split": split_of[t.key()],
                              "params": {"part": t.part, "directions": list(t.directions),
                                         "rotate_part": t.rotate_part, "facing": t.facing,
                                         "part2": t.part2},
                              "parts": sorted(needed), "horizon": task.horizon})
    episodes = _episodes(tasks, manifest, rng, train_episodes, episodes_per_cell, val_per_category)
    by_split = {s: {"tasks": sum(t["split"] == s for t in tasks), "episodes": len(episodes[s])}
                for s in SPLITS}
    for s in ("val", "test1", "test2"):  # these splits reuse the train tasks
        by_split[s]["tasks"] = len({e["task_id"] for e in episodes[s]})
    return {"seed": seed, "n_tasks": len(tasks), "classes": list(CLASSES),
            "test4_classes": list(TEST4_CLASSES), "unseen_categories": manifest["unseen_categories"],
            "splits": by_split, "tasks": tasks, "episodes": episodes}


def _instances_for(task: dict, pool: list[int], category: str) -> list[int]:
    """The instances of `pool` a task can run on: they have its parts, and the part it turns
    sits where it can be turned."""
    cp = category_parts(category)
    r = task["params"]["rotate_part"]
    return [i for i in pool if all(i in cp.instances_with[p] for p in task["parts"])
            and (r is None or r not in cp.rotatable_in or i in cp.rotatable_in[r])]


def _pushable_start(task: dict, instances: list[int], instance: int, seed: int, rng) -> tuple[int, int]:
    """An (instance, init seed) from which the task's first push (class 13: both pushes) is
    possible: some side of the touched part faces away from the push with nothing else in the
    fingers' lane (the initial yaw decides that, e.g. a mug's handle turned away). A class
    that turns the object before its push (PUSH_AFTER_TURN) is checked as the turn leaves it:
    there the instance decides, the turn undoes the initial yaw. Seeds step by
    PUSH_SEED_STRIDE, so they stay in the split's range; if no try works the first draw is
    kept (the expert will fail)."""
    from sims.partmanip.env import EnvConfig, initial_pose
    from sims.partmanip.predicates import yaw_to_face
    from sims.partmanip.push import push_contact, resting_snapshot

    config = EnvConfig()
    p = task["params"]
    turned = task["task_class"] in PUSH_AFTER_TURN
    pushes = [(p["part2"] if turned else p["part"], DIRECTIONS[p["directions"][0]])]
    if task["task_class"] == 13:  # a push barely turns the object: check the second one too
        pushes.append((p["part2"], DIRECTIONS[p["directions"][1]]))
    for k in range(PUSH_START_TRIES):
        inst = instance if k < PUSH_START_TRIES // 2 else int(rng.choice(instances))
        s = seed + k * PUSH_SEED_STRIDE
        asset = _asset(task["category"], inst)
        pos, yaw = initial_pose(s, config)
        snap = resting_snapshot(asset, pos, yaw)
        if turned:
            snap = resting_snapshot(asset, pos, yaw + yaw_to_face(snap, p["rotate_part"], p["facing"]))
        if all(push_contact(snap, part, d) is not None for part, d in pushes):
            return inst, s
    return instance, seed


def _episodes(tasks, manifest, rng, train_episodes, per_cell, val_per_category) -> dict[str, list]:
    cats = manifest["categories"]
    out: dict[str, list] = {s: [] for s in SPLITS}

    def add(split, task, instances):
        i = len(out[split])
        instance, seed = int(rng.choice(instances)), SEED_BASE[split] + i
        if task["task_class"] in TOUCH_THEN_MOVE:
            instance, seed = _pushable_start(task, instances, instance, seed, rng)
        elif task["task_class"] in PUSH_AFTER_TURN:
            # its own generator: the check leaves the draws of the episodes after it as they are
            instance, seed = _pushable_start(task, instances, instance, seed, np.random.default_rng(seed))
        out[split].append({"task_id": task["task_id"], "instance_id": instance, "init_seed": seed})

    def spread(split, pool_of, n_per_category, task_split):
        """n episodes per category, round-robin over its classes, tasks drawn by the seed."""
        for category in sorted(cats):
            mine = [t for t in tasks if t["category"] == category and t["split"] == task_split]
            by_class: dict[int, list] = {}
            for t in mine:
                inst = _instances_for(t, pool_of(category), category)
                if inst:
                    by_class.setdefault(t["task_class"], []).append((t, inst))
            classes = sorted(by_class)
            for k in range(n_per_category if classes else 0):
                options = by_class[classes[k % len(classes)]]
                t, inst = options[int(rng.integers(len(options)))]
                add(split, t, inst)

    train_pool = lambda c: cats[c]["train_instances"]  # noqa: E731
    held_pool = lambda c: cats[c]["held_out_instances"]  # noqa: E731
    train_tasks = [t for t in tasks if t["split"] == "train"]
    usable = [(t, _instances_for(t, train_pool(t["category"]), t["category"])) for t in train_tasks]
    usable = [(t, inst) for t, inst in usable if inst]
    # every train task once, in a shuffled order (a prefix of the list spans the suite), then
    # tasks drawn at random
    order = rng.permutation(len(usable))
    for k in range(train_episodes):
        t, inst = usable[order[k]] if k < len(usable) else usable[int(rng.integers(len(usable)))]
        add("train", t, inst)
    spread("val", train_pool, val_per_category, "train")
    spread("test1", train_pool, per_cell, "train")
    spread("test2", held_pool, per_cell, "train")
    spread("test3", train_pool, per_cell, "test3")
    spread("test4", train_pool, per_cell, "test4")
    spread("test5", held_pool, per_cell, "test5")  # unseen categories: all instances are held out
    return out


def task_spec(catalog: dict, episode: dict, split: str, paraphrase: int | None = None) -> TaskSpec:
    """The TaskSpec of one catalog episode (instruction paraphrase drawn from its seed)."""
    task = next(t for t in catalog["tasks"] if t["task_id"] == episode["task_id"])
    p = task["params"]
    return make_task(task["task_class"], task["category"], p["part"], directions=tuple(p["directions"]),
                     rotate_part=p["rotate_part"], facing=p["facing"], part2=p["part2"],
                     instance_id=episode["instance_id"], init_seed=episode["init_seed"], split=split,
                     horizon=task["horizon"],
                     paraphrase=episode["init_seed"] if paraphrase is None else paraphrase)


def write_catalog(catalog: dict, path: Path) -> Path:
    """Write `catalog.json` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(catalog))
    tmp.replace(path)
    return path


def catalog_key(seed: int, train_episodes: int, episodes_per_cell: int, val_per_category: int) -> str:
    """A hash of everything a catalog depends on: its arguments, its code (with the push check
    and where episodes place the object) and the object library."""
    import hashlib
    import importlib
    import inspect

    from sims.objects import CATEGORIES
    from sims.objects.library import fingerprint, split_manifest

    h = hashlib.sha256(json.dumps([seed, train_episodes, episodes_per_cell, val_per_category,
                                   split_manifest()]).encode())
    from sims.partmanip.env import EnvConfig, initial_pose

    for module in ("sims.partmanip.catalog", "sims.partmanip.classes", "sims.partmanip.tasks",
                   "sims.partmanip.push", "sims.partmanip.predicates", "sims.partmanip.feasibility"):
        h.update(inspect.getsource(importlib.import_module(module)).encode())
    from sims.partmanip.feasibility import TABLE

    h.update(TABLE.read_bytes() if TABLE.is_file() else b"")
    # push starts are checked at the pose the default env config gives a seed
    h.update((inspect.getsource(initial_pose) + repr(EnvConfig())).encode())
    for c in CATEGORIES:
        h.update(fingerprint(c).encode())
    return h.hexdigest()[:16]


def load_catalog(seed: int = 0, train_episodes: int = 10_000, episodes_per_cell: int = 16,
                 val_per_category: int = 4, cache_dir: Path | None = None) -> dict:
    """The catalog, built once and then read from the cache (`<cache>/catalog/`); a change to
    the catalog code, the task classes or any object generator builds it afresh."""
    from sims.objects.library import default_cache_dir

    root = Path(cache_dir) if cache_dir else default_cache_dir().parent / "catalog"
    key = catalog_key(seed, train_episodes, episodes_per_cell, val_per_category)
    path = root / f"catalog-{seed}-{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:  # torn by a kill: build it again
            pass
    catalog = build_catalog(seed, train_episodes, episodes_per_cell, val_per_category)
    write_catalog(catalog, path)
    return catalog


def summary_table(catalog: dict) -> str:
    """Counts of tasks per split x class, then per split x category."""
    tasks = catalog["tasks"]
    lines = [f"{catalog['n_tasks']} tasks in {len(catalog['classes'])} classes; test4 classes "
             f"{catalog['test4_classes']}; unseen categories {', '.join(catalog['unseen_categories'])}",
             "", f"{'split':<7}{'tasks':>7}{'episodes':>10}"]
    for s, v in catalog["splits"].items():
        lines.append(f"{s:<7}{v['tasks']:>7}{v['episodes']:>10}")
    task_splits = ("train", "test3", "test4", "test5")
    lines += ["", "tasks per class:  " + "  ".join(f"{s:>5}" for s in task_splits)]
    for c in catalog["classes"]:
        counts = [sum(t["task_class"] == c and t["split"] == s for t in tasks) for s in task_splits]
        lines.append(f"  class {c:>2}        " + "  ".join(f"{n:>5}" for n in counts))
    lines += ["", "tasks per category:" + "  ".join(f"{s:>5}" for s in task_splits)]
    for cat in sorted({t["category"] for t in tasks}):
        counts = [sum(t["category"] == cat and t["split"] == s for t in tasks) for s in task_splits]
        lines.append(f"  {cat:<15}" + "  ".join(f"{n:>5}" for n in counts))
    return "\n".join(lines)
