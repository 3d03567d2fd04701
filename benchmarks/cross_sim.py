"""The cross-simulator split (issue 29): a state diffusion policy trained on one simulator's
demos, evaluated in both, for MuJoCo and PyBullet; the 2x2 success table and the transfer gap.

    python benchmarks/cross_sim.py --out outputs/cross_sim [--episodes 150] [--steps 2000]
        [--batch-size 256] [--per-cell 3] [--classes 1,2,3] [--backends mujoco,pybullet] [--workers 2]

Stages, each skipped or resumed when its output is already there (rerun the same command to
resume):
1. collect: per backend, a class-stratified store of the train split's episodes of `--classes`
   (`suite.tasks.classes`, `suite.tasks.stratify=class`) with proprio and state, collected by
   the scripted expert in that simulator (`robopolicy collect` resumes a store by itself);
2. train: per backend, the end-to-end state DP (`policy=diffusion_unet`, instruction-
   conditioned with `policy.text_encoder=minilm`), skipped once its last checkpoint is at
   `--steps`;
3. eval: every (trained on, evaluated in) pair on test1's episodes of the same classes,
   `--per-cell` episodes per category, plus the expert in each simulator (the ceiling)
   (`robopolicy eval` resumes by itself);
4. table: `<out>/table.json` and `<out>/table.md`: success with 95% Wilson intervals, and per
   training simulator the gap (in its own simulator minus in the other).

Every command is printed before it runs and appended to `<out>/commands.log` with its output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from stages import cli, run, train_stage  # benchmarks/stages.py, beside this script

STORE_OBS = "[proprio,state]"


def tasks_args(a) -> list[str]:
    return ["suite=partmanip", "suite.tasks.source=catalog", f"suite.tasks.classes=[{a.classes}]"]


def collect_command(a, backend: str, store: Path) -> list[str]:
    return cli("collect", *tasks_args(a), "suite.tasks.stratify=class", f"episodes={a.episodes}",
               f"workers={a.workers}", f"suite.env.backend={backend}",
               f"suite.env.obs_keys={STORE_OBS}", f"out={store}")


def train_command(a, store: Path, run_dir: Path) -> list[str]:
    return cli("train", "policy=diffusion_unet", "policy.text_encoder=minilm",
               "dataset.obs_keys=[proprio,state]", f"dataset.path={store}",
               f"trainer.steps={a.steps}", f"trainer.batch_size={a.batch_size}",
               "trainer.ckpt_every=500", "dataset.val_ratio=0.02",
               f"trainer.seed={a.seed}", f"hydra.run.dir={run_dir}")


def eval_command(a, policy: list[str], backend: str, out: Path) -> list[str]:
    return cli("eval", *tasks_args(a), f"suite.env.backend={backend}", "splits=[test1]",
               f"episodes_per_cell={a.per_cell}", f"executor.workers={a.workers}", "videos=0",
               "batch_invariant=false", f"out={out}", *policy)


def cell(report: Path) -> dict | None:
    """The overall success of an eval run: rate, 95% Wilson interval, episodes."""
    if not report.is_file():
        return None
    r = json.loads(report.read_text())["overall"]
    return {"success_rate": r["success_rate"], "ci95": r["ci95"], "episodes": r["episodes"],
            "successes": round(r["success_rate"] * r["episodes"])}


def table(out: Path, backends: list[str]) -> dict:
    """{row: {evaluated in: cell}} for the expert and each training simulator, and the gaps."""
    rows = {"expert": {e: cell(out / "eval" / f"expert_in_{e}" / "report.json") for e in backends}}
    for t in backends:
        rows[f"dp_trained_in_{t}"] = {e: cell(out / "eval" / f"dp_{t}_in_{e}" / "report.json")
                                      for e in backends}
    gaps = {}
    for t in backends:
        own = rows[f"dp_trained_in_{t}"][t]
        for e in backends:
            other = rows[f"dp_trained_in_{t}"][e]
            if e != t and own and other:
                gaps[f"{t}->{e}"] = own["success_rate"] - other["success_rate"]
    return {"rows": rows, "gap": gaps}


def markdown(result: dict, backends: list[str]) -> str:
    def fmt(c):
        if c is None:
            return ""
        lo, hi = c["ci95"]
        return f"{100 * c['success_rate']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}] ({c['successes']}/{c['episodes']})"

    lines = ["| policy | " + " | ".join(f"in {e}" for e in backends) + " | gap (own - other) |",
             "|---|" + "---|" * (len(backends) + 1)]
    for row, cells in result["rows"].items():
        t = row.removeprefix("dp_trained_in_")
        gap = " / ".join(f"{100 * v:+.1f} pts ({k})" for k, v in result["gap"].items()
                         if k.startswith(f"{t}->"))
        lines.append(f"| {row} | " + " | ".join(fmt(cells[e]) for e in backends) + f" | {gap} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/cross_sim"))
    p.add_argument("--episodes", type=int, default=150, help="collected episodes per backend")
    p.add_argument("--steps", type=int, default=2000, help="DP training steps")
    p.add_argument("--batch-size", type=int, default=256, help="DP training batch")
    p.add_argument("--per-cell", type=int, default=3,
                   help="test1 episodes per category (3: one per class of 1-3 in each)")
    p.add_argument("--classes", default="1,2,3", help="task classes, comma-separated")
    p.add_argument("--backends", default="mujoco,pybullet")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-expert", action="store_true", help="leave out the expert's row")
    p.add_argument("--stage", choices=("all", "collect", "train", "eval", "table"), default="all")
    a = p.parse_args()
    backends = a.backends.split(",")
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    log, walls = out / "commands.log", {}
    t_start = time.time()
    stores = {b: out / f"demos_{b}.zarr" for b in backends}
    runs = {b: out / "train" / b for b in backends}
    if a.stage in ("all", "collect"):
        for b in backends:
            walls[f"collect_{b}"] = run(collect_command(a, b, stores[b]), log)
    if a.stage in ("all", "train"):
        for b in backends:
            wall = train_stage(train_command(a, stores[b], runs[b]), runs[b], a.steps, log)
            if wall is not None:
                walls[f"train_{b}"] = wall
    if a.stage in ("all", "eval"):
        for e in backends:
            if not a.no_expert:
                walls[f"eval_expert_in_{e}"] = run(
                    eval_command(a, ["policy=expert"], e, out / "eval" / f"expert_in_{e}"), log)
            for t in backends:
                ckpt = runs[t] / "checkpoints" / "latest"
                walls[f"eval_dp_{t}_in_{e}"] = run(
                    eval_command(a, [f"policy.path={ckpt}"], e, out / "eval" / f"dp_{t}_in_{e}"), log)
    walls["total"] = time.time() - t_start
    result = table(out, backends)
    if a.no_expert:
        del result["rows"]["expert"]
    (out / "table.json").write_text(json.dumps({**result, "walls_s": walls, "args": vars(a)},
                                               indent=2, default=str) + "\n")
    text = markdown(result, backends)
    (out / "table.md").write_text(text + "\n")
    print(json.dumps({**result, "walls_s": walls}))
    print(text)


if __name__ == "__main__":
    main()
