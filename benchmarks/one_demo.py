"""The one-demo experiment (issue 28 section 5): an image policy (agentview + wrist RGB, small
CNN, proprio, instruction-conditioned) trained on (a) 1 demo per task, (b) 1 demo + Gaussian-
splat augmentation, (c) 1 demo + the 2-D baseline, (d) many demos per task, (e) many demos +
augmentation; evaluated on nominal test states and on each perturbation split.

    python benchmarks/one_demo.py --out outputs/one_demo [--demos 100] [--copies 50]
        [--copies-many 10] [--steps 3000] [--per-cell 32] [--rows a,b,c,d,e]
        [--perturb lighting,camera,appearance,pose_wide] [--image-size 96] [--workers 2]
        [--yaw-range -1,1] [--obs-steps 2] [--augmenters pose]
        [--visual lighting,camera [--visual-args 'augment.camera.params.roll_deg=5 ...']]

The tasks: one task pool (`suite=mug_lift`, `suite.tasks.*` from `--classes --categories
--parts --directions --instances`); a task is one (task_id, instance) of that pool, e.g. the
default's grasp / touch / grasp-and-lift of mug 0's handle. Seeds map to tasks by the pool's
pure `task(seed)`, so "N demos per task" picks seeds per task.

Stages, each skipped or resumed when its output is already there (rerun the same command):
1. collect: `one.zarr` (1 demo per task: `robopolicy collect seed=<s> episodes=1` per task,
   the task's next seed until one succeeds) and, for rows d/e, `many.zarr` (seeds 0..M-1, M
   grown until every task has `--demos` successes; tasks drawn more often get more);
2. augment: `aug_one.zarr` (b: pose, lighting, camera, appearance; `--copies` per demo),
   `img2d_one.zarr` (c: image2d, `--copies`), `aug_many.zarr` (e: as b, `--copies-many`);
   `robopolicy augment` resumes by itself. With `keep_source=true` each augmented store holds
   its source demos too, so b, c and e train on the demos and their copies. With `--visual`,
   rows b and e train on `vis_<store>.zarr` instead: their store plus one copy of each of its
   episodes re-rendered by the visual augmenters, so half the training episodes carry them;
3. train: `policy=diffusion_unet policy.text_encoder=minilm` on
   `[proprio,rgb.agentview,rgb.wrist]`, skipped once its last checkpoint is at `--steps`;
4. eval: every row on `--per-cell` held-out episodes (seeds from 100000) of the pool, nominal
   and with each `perturb=<kind>` (`robopolicy eval` resumes by itself);
5. table: `<out>/table.json` and `<out>/table.md`: success % [95% Wilson] (successes/n) per row
   and condition, per-task counts of each store, and the issue's targets checked.

Every command is printed before it runs and appended to `<out>/commands.log` with its output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from stages import cli, run, train_stage  # benchmarks/stages.py, beside this script

ROWS = ("expert", "a", "b", "c", "d", "e")
ROW_NAMES = {"expert": "scripted expert (ceiling)", "a": "(a) 1 demo/task",
             "b": "(b) 1 demo + Gaussian-splat aug", "c": "(c) 1 demo + image2d",
             "d": "(d) N demos/task", "e": "(e) N demos + Gaussian-splat aug"}
SPLAT = "[pose,lighting,camera,appearance]"
OBS = "[proprio,rgb.agentview,rgb.wrist]"
TASK_SEEDS = 4096  # seeds scanned for each task's candidates
# row -> (training store, the store it is augmented from, augmenters, which copies flag)
STORES = {"a": ("one", None, None, None), "b": ("aug_one", "one", SPLAT, "copies"),
          "c": ("img2d_one", "one", "[image2d]", "copies"), "d": ("many", None, None, None),
          "e": ("aug_many", "many", SPLAT, "copies_many")}


def suite_args(a) -> list[str]:
    """The task pool and observations, shared by collect and eval."""
    s = a.image_size
    return ["suite=mug_lift", f"suite.tasks.classes=[{a.classes}]",
            f"suite.tasks.categories=[{a.categories}]", f"suite.tasks.parts=[{a.parts}]",
            f"suite.tasks.directions=[{a.directions}]", f"suite.tasks.instances=[{a.instances}]",
            f"suite.env.obs_keys={OBS}", f"suite.env.image_size=[{s},{s}]",
            *([f"suite.env.yaw_range=[{a.yaw_range}]"] if a.yaw_range else [])]


def task_pool(a):
    """The pool `suite_args` describes (sims' TaskPool: `task(seed)` is pure)."""
    from sims.partmanip.task_source import task_source

    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    return task_source({"source": "pool", "classes": ints(a.classes),
                        "categories": a.categories.split(","), "parts": a.parts.split(","),
                        "directions": a.directions.split(","), "instances": ints(a.instances)})


def task_key(task_id: str, instance_id: int) -> str:
    return f"{task_id}@{instance_id}"


def task_seeds(pool, n: int = TASK_SEEDS) -> dict[str, list[int]]:
    """{task: its seeds in increasing order} over seeds 0..n-1; the tasks sorted by name."""
    out: dict[str, list[int]] = {}
    for s in range(n):
        t = pool.task(s)
        out.setdefault(task_key(t.task_id, t.instance_id), []).append(s)
    return dict(sorted(out.items()))


def attempts(store: Path) -> list[dict]:
    """The collect attempts logged in `store` (none before it exists)."""
    from robopolicy.data.collect import ATTEMPTS_FILE
    from robopolicy.data.jsonl import read_json_lines

    return read_json_lines(store / ATTEMPTS_FILE) if (store / ATTEMPTS_FILE).is_file() else []


def kept_per_task(records: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if r.get("kept"):
            k = task_key(r["task_id"], r["instance_id"])
            out[k] = out.get(k, 0) + 1
    return out


def next_collect(seeds: dict[str, list[int]], records: list[dict], per_task: int) -> list[tuple[int, int]]:
    """The (seed, episodes) collect runs that could bring every task to `per_task` kept demos,
    given the attempts so far: one seed per lacking task when `per_task` is 1 (so no task gets
    a second demo), else one run over seeds 0..M-1 reaching each lacking task's missing count of
    untried seeds. Empty when every task has its demos."""
    kept, tried = kept_per_task(records), {int(r["seed"]) for r in records}
    need = {t: per_task - kept.get(t, 0) for t in seeds if kept.get(t, 0) < per_task}
    untried = {t: [s for s in seeds[t] if s not in tried] for t in need}
    short = [t for t in need if len(untried[t]) < need[t]]
    if short:
        raise SystemExit(f"one_demo: task {short[0]} has too few successful seeds below {TASK_SEEDS}")
    if per_task == 1:
        return [(untried[t][0], 1) for t in need]
    return [(0, max(untried[t][need[t] - 1] for t in need) + 1)] if need else []


def collect_command(a, store: Path, seed: int, episodes: int) -> list[str]:
    return cli("collect", *suite_args(a), f"seed={seed}", f"episodes={episodes}",
               f"workers={a.workers}", f"out={store}")


def fill(a, store: Path, per_task: int, seeds: dict[str, list[int]], log: Path) -> float:
    """Collect into `store` until every task has `per_task` demos; wall seconds."""
    wall = 0.0
    for _ in range(20):  # each round retries the tasks whose seeds failed
        runs = next_collect(seeds, attempts(store), per_task)
        if not runs:
            return wall
        for seed, episodes in runs:
            wall += run(collect_command(a, store, seed, episodes), log)
    raise SystemExit(f"one_demo: {store}: the expert keeps failing; see {log}")


def augment_command(a, src: Path, out: Path, augmenters: str, copies: int) -> list[str]:
    return cli("augment", f"path={src}", f"out={out}", f"augment={augmenters}",
               f"copies={copies}", "keep_source=true", f"workers={a.workers}", f"seed={a.seed}")


def row_augmenters(a, row: str) -> str | None:
    """The augmenters of `row`'s store: `--augmenters` for rows b and e when given."""
    augmenters = STORES[row][2]
    return f"[{a.augmenters}]" if augmenters == SPLAT and a.augmenters else augmenters


def visual_command(a, src: Path, out: Path) -> list[str]:
    """One re-rendered copy of each of `src`'s episodes by `--visual`, `--visual-args` applied."""
    return [*augment_command(a, src, out, f"[{a.visual}]", 1), *a.visual_args.split()]


def train_store(a, row: str) -> str:
    """The store `row` trains on: rows b and e's visual store with `--visual`."""
    name = STORES[row][0]
    return f"vis_{name}" if a.visual and row in ("b", "e") else name


def train_command(a, store: Path, run_dir: Path) -> list[str]:
    return cli("train", "policy=diffusion_unet", "policy.text_encoder=minilm",
               f"dataset.obs_keys={OBS}", f"dataset.path={store}", "dataset.val_ratio=0",
               f"policy.n_obs_steps={a.obs_steps}",
               f"trainer.steps={a.steps}", f"trainer.batch_size={a.batch_size}",
               f"trainer.ckpt_every={max(1, min(500, a.steps))}", f"trainer.seed={a.seed}",
               f"hydra.run.dir={run_dir}")


def eval_command(a, policy: list[str], kind: str | None, out: Path) -> list[str]:
    return cli("eval", *suite_args(a), f"episodes={a.per_cell}", "seed=100000",
               f"executor.workers={a.workers}", "videos=0", "batch_invariant=false",
               f"out={out}", *policy, *([f"perturb={kind}"] if kind else []))


def cell(report: Path) -> dict | None:
    """An eval run's overall success: rate, 95% Wilson interval, successes, episodes; per task."""
    if not report.is_file():
        return None
    r = json.loads(report.read_text())
    o = r["overall"]
    return {"success_rate": o["success_rate"], "ci95": o["ci95"], "episodes": o["episodes"],
            "successes": o["successes"],
            "by_task": {k: [v["successes"], v["episodes"]] for k, v in r.get("by_task", {}).items()}}


def evaluated(report: Path, n: int) -> bool:
    c = cell(report)
    return c is not None and c["episodes"] >= n


def targets(rows: dict[str, dict], conditions: list[str]) -> list[dict]:
    """The issue's targets on point estimates: met (bool) or None when a cell is missing; a
    ratio to (d) at 0% is not met (nothing was shown)."""
    def rate(row, cond):
        c = rows.get(row, {}).get(cond)
        return None if c is None else c["success_rate"]

    def check(text, *pairs, test):
        vals = [(rate(r, c), rate(s, c)) for r, s, c in pairs]
        met = None if any(x is None or y is None for x, y in vals) else all(test(x, y) for x, y in vals)
        return {"target": text, "met": met, "values": [[x, y] for x, y in vals]}

    out = [check("(b) >= 80% of (d) on nominal", ("b", "d", "nominal"), test=lambda b, d: d > 0 and b >= 0.8 * d)]
    for kind in ("camera", "lighting"):
        out.append(check(f"(b) beats (d) on {kind}", ("b", "d", kind), test=lambda b, d: b > d))
    out.append(check("(e) beats (d) on every condition", *[("e", "d", c) for c in conditions],
                     test=lambda e, d: e > d))
    return out


def table(out: Path, rows: list[str], conditions: list[str]) -> dict:
    cells = {r: {c: cell(out / "eval" / r / c / "report.json") for c in conditions} for r in rows}
    return {"rows": cells, "targets": targets(cells, conditions)}


def markdown(result: dict, conditions: list[str], demos: dict[str, dict], augmenters: str = "",
             visual: str = "", store_names: dict[str, str] | None = None) -> str:
    """The table in markdown; `augmenters` and `visual` (rows b and e's, when given) name them;
    `store_names` maps a row to the store it trained on (default: `STORES`)."""
    store_names = store_names or {}
    def fmt(c):
        if c is None:
            return ""
        lo, hi = c["ci95"]
        return f"{100 * c['success_rate']:.0f} [{100 * lo:.0f}, {100 * hi:.0f}] ({c['successes']}/{c['episodes']})"

    lines = ["| row | training episodes | " + " | ".join(conditions) + " |",
             "|---|---|" + "---|" * len(conditions)]
    for row, cells in result["rows"].items():
        n = demos.get(store_names.get(row, STORES[row][0]), {}).get("episodes", "") if row in STORES else ""
        name = ROW_NAMES[row]
        if augmenters and row in ("b", "e"):
            name = name.replace("Gaussian-splat aug", f"[{augmenters}]")
        if visual and row in ("b", "e"):
            name += f", half re-rendered [{visual}]"
        lines.append(f"| {name} | {n} | " + " | ".join(fmt(cells[c]) for c in conditions) + " |")
    lines.append("")
    word = {True: "met", False: "NOT met", None: "not measured"}
    for t in result["targets"]:
        vals = "; ".join(f"{100 * x:.0f}% vs {100 * y:.0f}%" for x, y in t["values"]
                         if x is not None and y is not None)
        lines.append(f"- {t['target']}: {word[t['met']]}" + (f" ({vals})" if vals else ""))
    return "\n".join(lines)


def store_summary(store: Path) -> dict | None:
    """Episodes in a training store and, for a collected one, kept demos per task."""
    if not store.is_dir():
        return None
    from robopolicy.data.store import EpisodeStore

    s = EpisodeStore.open(store)
    counts: dict[str, int] = {}
    for e in s.episodes():
        k = task_key(e.get("task_id"), e.get("instance_id"))
        counts[k] = counts.get(k, 0) + 1
    return {"episodes": s.n_episodes, "steps": s.n_steps, "per_task": dict(sorted(counts.items()))}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/one_demo"))
    p.add_argument("--classes", default="1,2,3", help="task classes of the pool")
    p.add_argument("--categories", default="mug")
    p.add_argument("--parts", default="handle")
    p.add_argument("--directions", default="top")
    p.add_argument("--instances", default="0")
    p.add_argument("--yaw-range", default="", help="object yaw range, radians, e.g. -1,1 (the "
                   "quickstart's); '' for the env's full circle")
    p.add_argument("--demos", type=int, default=100, help="demos per task of rows d and e")
    p.add_argument("--copies", type=int, default=50, help="copies per demo of rows b and c")
    p.add_argument("--augmenters", default="", help="rows b and e's augmenters, e.g. pose "
                   f"(default: {SPLAT[1:-1]})")
    p.add_argument("--visual", default="", help="rows b and e: one more copy of each training "
                   "episode re-rendered by these augmenters, e.g. lighting,camera (half the "
                   "episodes then carry them)")
    p.add_argument("--visual-args", default="", help="space-separated overrides of the --visual "
                   "augment command, e.g. 'augment.camera.params.roll_deg=5'")
    p.add_argument("--copies-many", type=int, default=10, help="copies per demo of row e")
    p.add_argument("--steps", type=int, default=3000, help="training steps of every row")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--obs-steps", type=int, default=2, help="observation frames the policy "
                   "conditions on (1 trains about 1.7x faster on a CPU)")
    p.add_argument("--per-cell", type=int, default=32, help="eval episodes per row x condition")
    p.add_argument("--rows", default="a,b,c,d,e", help=f"comma-separated, from {', '.join(ROWS)}")
    p.add_argument("--perturb", default="lighting,camera,appearance,pose_wide",
                   help="perturbation splits evaluated besides nominal ('' for none)")
    p.add_argument("--image-size", type=int, default=96, help="camera images, square, pixels")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stage", choices=("all", "collect", "augment", "train", "eval", "table"),
                   default="all")
    a = p.parse_args(argv)
    unknown = sorted(set(a.rows.split(",")) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown} (known: {', '.join(ROWS)})")
    return a


def main(argv=None) -> None:
    a = parse(argv)
    rows = a.rows.split(",")
    conditions = ["nominal", *[k for k in a.perturb.split(",") if k]]
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    log, walls, t_start = out / "commands.log", {}, time.time()
    store = {name: out / f"{name}.zarr" for name in ("one", "aug_one", "img2d_one", "many", "aug_many",
                                                     "vis_aug_one", "vis_aug_many")}
    used = {STORES[r][0] for r in rows if r in STORES} | {train_store(a, r) for r in rows if r in STORES}
    used |= {STORES[r][1] for r in rows if r in STORES and STORES[r][1]}
    if a.stage in ("all", "collect"):
        seeds = task_seeds(task_pool(a))
        print(f"tasks: {', '.join(seeds)}", flush=True)
        if "one" in used:
            walls["collect_one"] = fill(a, store["one"], 1, seeds, log)
        if "many" in used:
            walls["collect_many"] = fill(a, store["many"], a.demos, seeds, log)
    if a.stage in ("all", "augment"):
        for r in rows:
            if r in STORES and STORES[r][1]:
                name, src, _, copies = STORES[r]
                walls[f"augment_{name}"] = run(augment_command(a, store[src], store[name], row_augmenters(a, r),
                                                               getattr(a, copies)), log)
                if train_store(a, r) != name:
                    vis = train_store(a, r)
                    walls[f"augment_{vis}"] = run(visual_command(a, store[name], store[vis]), log)
    if a.stage in ("all", "train"):
        for r in rows:
            if r in STORES:
                run_dir = out / "train" / r
                wall = train_stage(train_command(a, store[train_store(a, r)], run_dir), run_dir, a.steps, log)
                if wall is not None:
                    walls[f"train_{r}"] = wall
    if a.stage in ("all", "eval"):
        for r in rows:
            policy = (["policy=expert"] if r == "expert"
                      else [f"policy.path={out / 'train' / r / 'checkpoints' / 'latest'}"])
            for c in conditions:
                dest = out / "eval" / r / c
                if not evaluated(dest / "report.json", a.per_cell):
                    walls[f"eval_{r}_{c}"] = run(eval_command(a, policy, None if c == "nominal" else c, dest), log)
    walls["total"] = time.time() - t_start
    demos = {name: s for name in sorted(used) if (s := store_summary(store[name])) is not None}
    result = table(out, rows, conditions)
    (out / "table.json").write_text(json.dumps({**result, "stores": demos, "walls_s": walls,
                                                "args": vars(a)}, indent=2, default=str) + "\n")
    text = markdown(result, conditions, demos, a.augmenters, a.visual,
                    {r: train_store(a, r) for r in rows if r in STORES})
    (out / "table.md").write_text(text + "\n")
    print(json.dumps(walls))
    print(text)


if __name__ == "__main__":
    main()
