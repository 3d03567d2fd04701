"""The bi-level experiment (issue 27's table): end-to-end against bi-level policies on the same
all-class demos, per test split, with 95% Wilson intervals, in one run directory.

    python benchmarks/bilevel_table.py --out outputs/bilevel [--episodes 2100] [--steps 3000]
        [--planner-steps 4000] [--down-dims 256,512,1024] [--obs-noise 0.01]
        [--next-skill] [--skill-delta] [--skill-geom] [--generic-text] [--splits test1,test5] [--per-cell 8]
        [--rows all]

Stages, each skipped when its output is already complete and continued when it was
interrupted (rerun the same command to resume):
1. collect: a class-stratified store of the train split (`suite.tasks.stratify=class`) with
   proprio, state, skill_state, skill_geom, pcd (256 points) and a 64x64 agentview;
2. train: the end-to-end state DP (task-level obs + the instruction), the skill DP (the
   current skill's instruction, skill_state, a skill-done head; with `--next-skill` also the
   (type, direction) vectors of its skill and the next one) and the learned planner;
3. eval: every row on the splits (`robopolicy eval`, which resumes by itself);
4. table: markdown and JSON (`<out>/table.md`, `<out>/table.json`).

Every command is printed before it runs, so the table's numbers come with their commands.
The rows:

| row | what |
|---|---|
| expert | the scripted expert: the ceiling |
| e2e_state | end-to-end DP on task-level state, instruction-conditioned |
| e2e_pcd | end-to-end DP on the object point cloud (xyz), as PartInstruct's DP3 |
| oracle_predicate | oracle planner + skill DP, skills advance on their goal predicates |
| oracle_learned | oracle planner + skill DP, skills advance on the skill-done head |
| learned_learned | learned planner + skill DP + skill-done head: nothing privileged at test time |
| learned_expert | learned planner + the expert executing each skill: the planner's own quality |
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stages import cli, run, train_stage  # benchmarks/stages.py, beside this script

ROWS = ("expert", "e2e_state", "e2e_pcd", "oracle_predicate", "oracle_learned",
        "learned_learned", "learned_expert")
STORE_OBS = "[proprio,state,skill_state,skill_geom,pcd,rgb.agentview]"


def train_commands(a, store: Path) -> dict[str, list[str]]:
    common = [f"dataset.path={store}", f"trainer.steps={a.steps}", "trainer.ckpt_every=500",
              "dataset.val_ratio=0.02", f"trainer.seed={a.seed}"]
    if a.down_dims:
        common.append(f"policy.unet.down_dims=[{a.down_dims}]")
    if a.obs_noise:
        common.append(f"policy.obs_noise_std={a.obs_noise}")
    skill = ",".join(["skill_state", *(["skill_delta"] if a.skill_delta else []),
                      *(["skill_geom"] if a.skill_geom else [])])
    return {
        "e2e_state": cli("train", "policy=diffusion_unet", "policy.text_encoder=minilm",
                         "dataset.obs_keys=[proprio,state]", *common),
        "e2e_pcd": cli("train", "policy=diffusion_unet", "policy.text_encoder=minilm",
                       "dataset.obs_keys=[proprio,pcd]", *common),
        "skill_dp": cli("train", "policy=skill_diffusion", f"dataset.obs_keys=[proprio,state,{skill}]",
                        f"policy.skill_obs_keys=[{skill}]",
                        *(["policy.skill_params=true", "policy.next_skill=true"] if a.next_skill else []),
                        *(["policy.skill_text=generic"] if a.generic_text else []),
                        *common),
        "planner": cli("train", "policy=skill_planner", f"dataset.path={store}",
                       f"trainer.steps={a.planner_steps}", "trainer.batch_size=64", "trainer.lr=3e-4",
                       "trainer.warmup_steps=100", "trainer.val_every=250", "trainer.ckpt_every=500",
                       "dataset.val_ratio=0.05", f"trainer.seed={a.seed}"),
    }


NEEDS = {"e2e_state": ("e2e_state",), "e2e_pcd": ("e2e_pcd",), "oracle_predicate": ("skill_dp",),
         "oracle_learned": ("skill_dp",), "learned_learned": ("skill_dp", "planner"),
         "learned_expert": ("planner",), "expert": ()}


def eval_command(row: str, a, out: Path) -> list[str]:
    ckpt = {k: out / "train" / k / "checkpoints" / "latest" for k in ("e2e_state", "e2e_pcd", "skill_dp", "planner")}
    common = ["suite=partmanip", f"splits=[{a.splits}]", f"episodes_per_cell={a.per_cell}",
              f"executor.workers={a.workers}", f"videos={a.videos}", f"out={out / 'eval' / row}",
              f"batch_invariant={str(a.batch_invariant).lower()}"]
    policy = {
        "expert": ["policy=expert"],
        "e2e_state": [f"policy.path={ckpt['e2e_state']}"],
        "e2e_pcd": [f"policy.path={ckpt['e2e_pcd']}"],
        "oracle_predicate": ["policy=bilevel", "planner=oracle", f"policy.low_level={ckpt['skill_dp']}",
                             "policy.advance=predicate"],
        "oracle_learned": ["policy=bilevel", "planner=oracle", f"policy.low_level={ckpt['skill_dp']}",
                           "policy.advance=learned"],
        "learned_learned": ["policy=bilevel", "planner=learned", f"planner.path={ckpt['planner']}",
                            f"policy.low_level={ckpt['skill_dp']}", "policy.advance=learned"],
        "learned_expert": ["policy=bilevel", "planner=learned", f"planner.path={ckpt['planner']}",
                           "policy.low_level=expert", "policy.advance=predicate"],
    }[row]
    return cli("eval", *common, *policy)


def table(out: Path, rows: list[str], splits: list[str]) -> dict:
    """Per row: success per split and overall with 95% intervals, and the planner's accuracy."""
    result = {}
    for row in rows:
        report = out / "eval" / row / "report.json"
        if not report.is_file():
            continue
        r = json.loads(report.read_text())
        cells = {s: r["by_split"][s]["overall"] for s in splits if s in r["by_split"]}
        cells["all"] = r["overall"]
        planner = {s: r["by_split"][s].get("planner") for s in splits if s in r["by_split"]}
        result[row] = {"success": cells, "planner": planner, "wall_s": r.get("wall_s")}
    return result


def markdown(result: dict, splits: list[str]) -> str:
    def cell(c):
        lo, hi = c["ci95"]
        return f"{100 * c['success_rate']:.1f} [{100 * lo:.0f}, {100 * hi:.0f}] ({c['episodes']})"

    def per_split(v, key):
        acc = [p.get(key) for p in v["planner"].values() if p]
        return " / ".join(f"{100 * x:.1f}" for x in acc if x is not None)

    lines = ["| row | " + " | ".join(splits) + " | all | chain skills as planned | next skill right |",
             "|---|" + "---|" * (len(splits) + 3)]
    for row, v in result.items():
        lines.append(f"| {row} | " + " | ".join(cell(v["success"][s]) if s in v["success"] else ""
                                              for s in splits)
                     + f" | {cell(v['success']['all'])} | {per_split(v, 'skill_accuracy')}"
                     + f" | {per_split(v, 'next_skill_accuracy')} |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/bilevel"))
    p.add_argument("--store", type=Path, default=None, help="default: <out>/demos.zarr")
    p.add_argument("--episodes", type=int, default=2100, help="collected episodes (attempts)")
    p.add_argument("--steps", type=int, default=3000, help="DP training steps (batch 256)")
    p.add_argument("--planner-steps", type=int, default=4000)
    p.add_argument("--down-dims", default=None,
                   help="U-Net channels per level of every DP, e.g. 256,512,1024 (Chi et al.'s, for "
                        "a GPU; default: configs/policy/diffusion_unet.yaml's 64,128,256)")
    p.add_argument("--obs-noise", type=float, default=0.0,
                   help="every DP's training noise on its normalized low-dim obs "
                        "(policy.obs_noise_std; default 0: none)")
    p.add_argument("--next-skill", action="store_true",
                   help="condition the skill DP on the (type, direction) vectors of its skill and "
                        "the next one too (policy.skill_params, policy.next_skill)")
    p.add_argument("--skill-delta", action="store_true",
                   help="give the skill DP skill_delta too (the goal minus the object position, the "
                        "target part minus the TCP), derived from the store's recorded keys")
    p.add_argument("--skill-geom", action="store_true",
                   help="give the skill DP skill_geom too (the target part's extent and the way "
                        "from the TCP to its nearest surface point); the store must record it")
    p.add_argument("--generic-text", action="store_true",
                   help="name the object only \"object\" in the skill DP's skill texts "
                        "(policy.skill_text=generic): unseen categories' names never reach it")
    p.add_argument("--splits", default="test1,test2,test3,test4,test5")
    p.add_argument("--per-cell", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--videos", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-invariant", action="store_true",
                   help="one policy call per episode (bit-exact whatever the batching; slower)")
    p.add_argument("--rows", default="all", help=f"comma-separated, from {', '.join(ROWS)}")
    p.add_argument("--stage", choices=("all", "collect", "train", "eval", "table"), default="all")
    a = p.parse_args(argv)
    a.row_list = list(ROWS) if a.rows == "all" else a.rows.split(",")
    unknown = sorted(set(a.row_list) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown} (known: {', '.join(ROWS)})")
    return a


def main() -> None:
    a = parse()
    rows = a.row_list
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    store = a.store or out / "demos.zarr"
    walls = {}
    if a.stage in ("all", "collect"):
        walls["collect"] = run(cli("collect", "suite=partmanip", "suite.tasks.source=catalog",
                                   "suite.tasks.stratify=class", f"episodes={a.episodes}",
                                   f"workers={a.workers}", f"suite.env.obs_keys={STORE_OBS}",
                                   "suite.env.pcd_points=256", "suite.env.image_size=[64,64]",
                                   f"out={store}"), log)
    if a.stage in ("all", "train"):
        commands = train_commands(a, store)
        for name in sorted({n for r in rows for n in NEEDS[r]}):
            run_dir = out / "train" / name
            steps = a.planner_steps if name == "planner" else a.steps
            wall = train_stage([*commands[name], f"hydra.run.dir={run_dir}"], run_dir, steps, log)
            if wall is not None:
                walls[f"train_{name}"] = wall
    if a.stage in ("all", "eval"):
        for row in rows:
            walls[f"eval_{row}"] = run(eval_command(row, a, out), log)
    splits = a.splits.split(",")
    result = table(out, rows, splits)
    (out / "table.json").write_text(json.dumps({"rows": result, "walls_s": walls}, indent=2) + "\n")
    text = markdown(result, splits)
    (out / "table.md").write_text(text + "\n")
    print(json.dumps(walls))
    print(text)


if __name__ == "__main__":
    main()
