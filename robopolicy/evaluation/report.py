"""Evaluation reports: success rates with Wilson intervals, written as JSON and Markdown, and a
success-rate bar chart per split."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default); (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _cell(records: list[dict]) -> dict:
    n = len(records)
    k = sum(bool(r["success"]) for r in records)
    lo, hi = wilson_interval(k, n)
    return {
        "episodes": n, "successes": k, "success_rate": k / n if n else 0.0, "ci95": [lo, hi],
        "completion": sum(r["completion"] for r in records) / n if n else 0.0,
        "mean_steps": sum(r["steps"] for r in records) / n if n else 0.0,
    }


def planner_summary(records: list[dict]) -> dict | None:
    """What the bi-level policy's planner did (None for other policies): the share of episodes
    whose every answer was valid, the share of executed skills equal to the ground-truth chain's
    at the same position (`skill_accuracy`, over the longer of the two; an execution failure
    lowers it too), the share of answers given after a correct history that name the chain's
    next skill (`next_skill_accuracy`: the planner alone), planner calls and seconds, and every
    failure by reason (`horizon`: the episode ran out of steps)."""
    planned = [r for r in records if "planner_calls" in r]
    if not planned:
        return None
    n = len(planned)
    calls = sum(r["planner_calls"] for r in planned)
    slots = sum(max(r["chain_length"], len(r["skills"])) for r in planned)
    failures: dict[str, int] = defaultdict(int)
    for r in planned:
        if not r["success"]:
            failures[r.get("failure") or "horizon"] += 1
    return {"episodes": n, "plan_valid": sum(r["plan_valid"] for r in planned) / n,
            "skill_accuracy": sum(r["skills_correct"] for r in planned) / slots if slots else 0.0,
            "next_skill_accuracy": _next_skill_accuracy(planned),
            "planner_calls_per_episode": calls / n,
            "planner_s_per_call": sum(r["planner_s"] for r in planned) / calls if calls else 0.0,
            "failures": dict(sorted(failures.items()))}


def _next_skill_accuracy(records: list[dict]) -> float | None:
    answered = sum(r.get("next_skill_answers", 0) for r in records)
    if not answered:  # records of an older run do not have it
        return None
    return sum(r["next_skill_correct"] for r in records) / answered


def summarize(records: list[dict], meta: dict | None = None) -> dict:
    """Overall, per-task-class, per-category, per class x category and per-task results of
    finished episode records."""
    groups: dict[str, dict] = {"by_task_class": defaultdict(list), "by_category": defaultdict(list),
                               "by_class_category": defaultdict(list), "by_task": defaultdict(list)}
    for r in records:
        groups["by_task_class"][str(r["task_class"])].append(r)
        groups["by_category"][r["category"]].append(r)
        groups["by_class_category"][f"{r['task_class']}/{r['category']}"].append(r)
        groups["by_task"][r["task_id"]].append(r)
    order = {"by_task_class": lambda k: int(k),
             "by_class_category": lambda k: (int(k.split("/")[0]), k)}
    out = {**(meta or {}), "overall": _cell(records)}
    for name, g in groups.items():
        out[name] = {k: _cell(g[k]) for k in sorted(g, key=order.get(name))}
    planner = planner_summary(records)
    if planner is not None:
        out["planner"] = planner
    return out


def _row(name: str, c: dict) -> str:
    lo, hi = c["ci95"]
    return (f"| {name} | {c['episodes']} | {c['success_rate']:.1%} | [{lo:.1%}, {hi:.1%}] | "
            f"{c['completion']:.2f} | {c['mean_steps']:.1f} |")


HEAD = ("| | episodes | success | 95% CI (Wilson) | completion | mean steps |\n"
        "|---|---|---|---|---|---|")
META_KEYS = ("policy", "perturb", "splits", "episodes_per_cell", "episodes_requested", "seed", "executor",
             "workers", "envs_per_worker", "wall_s")


def _title(report: dict) -> str:
    p = report.get("perturb")
    return "# Evaluation report" + (f" (perturbation: {p})" if p else "")


def _meta_lines(report: dict) -> list[str]:
    lines = [f"- {k}: {report[k]}" for k in META_KEYS if k in report]
    t = report.get("timing")
    if t:
        share = ", ".join(f"{k} {v:.0%}" for k, v in t["share"].items())
        resumed = t.get("episodes_resumed", 0)
        if not t["env_steps"]:
            lines.append(f"- throughput: nothing left to run ({resumed} episodes were finished)")
        else:
            lines.append(f"- throughput: {t['episodes_per_hour']:.0f} episodes/h, "
                         f"{t['env_steps_per_s']:.0f} env steps/s; wall time in {share}"
                         + (f" (this invocation, which resumed a run with {resumed} episodes "
                            "finished: its wall_s counts only itself)" if resumed else ""))
        lines.append(f"- worker restarts: {t['worker_restarts']} "
                     f"(episodes rerun: {t['episodes_rerun']})")
    return lines


def _matrix(report: dict) -> list[str]:
    """Successes / episodes per task class (rows) x category (columns)."""
    cells = report["by_class_category"]
    cats = sorted(report["by_category"])
    lines = ["| class | " + " | ".join(cats) + " |", "|---|" + "---|" * len(cats)]
    for c in report["by_task_class"]:
        row = [cells.get(f"{c}/{cat}") for cat in cats]
        lines.append(f"| {c} | " + " | ".join(
            f"{x['successes']}/{x['episodes']}" if x else "" for x in row) + " |")
    return lines


def _planner_lines(report: dict, level: str) -> list[str]:
    p = report.get("planner")
    if p is None:
        return []
    failures = ", ".join(f"{k} {v}" for k, v in p["failures"].items()) or "none"
    return [f"{level} Planner", "",
            f"- valid plans: {p['plan_valid']:.1%} of {p['episodes']} episodes; skills equal to "
            f"the ground-truth chain's: {p['skill_accuracy']:.1%}"
            + (f"; next skill right after a correct history: {p['next_skill_accuracy']:.1%}"
               if p.get("next_skill_accuracy") is not None else ""),
            f"- planner calls per episode: {p['planner_calls_per_episode']:.2f}, "
            f"{p['planner_s_per_call'] * 1000:.1f} ms per call",
            f"- failures: {failures}", ""]


def _tables(report: dict, level: str) -> list[str]:
    lines = [*_planner_lines(report, level), f"{level} By task class", "", HEAD]
    lines += [_row(k, c) for k, c in report["by_task_class"].items()]
    lines += ["", f"{level} By category", "", HEAD]
    lines += [_row(k, c) for k, c in report["by_category"].items()]
    lines += ["", f"{level} Successes per task class x category", "", *_matrix(report)]
    return lines


def to_markdown(report: dict) -> str:
    """A human-readable report of one episode list, one table per grouping."""
    lines = [_title(report), "", *_meta_lines(report), "", "## Overall", "", HEAD,
             _row("all", report["overall"]), "", *_tables(report, "##"), "", "## By task", "", HEAD]
    lines += [_row(k, c) for k, c in report["by_task"].items()]
    return "\n".join(lines) + "\n"


def split_markdown(report: dict) -> str:
    """The report of a multi-split evaluation: one overview row per split, then each split."""
    lines = [_title(report), "", *_meta_lines(report), "", "## Overview", "", HEAD]
    lines += [_row(s, r["overall"]) for s, r in report["by_split"].items()]
    for split, r in report["by_split"].items():
        lines += ["", f"## {split}", "", f"![success by task class]({split}/success.png)", "",
                  *_tables(r, "###")]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, records: list[dict], meta: dict | None = None) -> dict:
    """Write report.json and report.md into `out_dir`; returns the report."""
    report = summarize(records, meta)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(to_markdown(report))
    return report


def write_split_report(out_dir: Path, records: list[dict], meta: dict) -> dict:
    """Write report.json / report.md over all splits and <group>/success.png; returns the
    report ({**meta, "overall", "by_split": {group: summary}}); a group is the split, or
    `<split>-<perturb>` with `meta["perturb"]` (`split_group`)."""
    from robopolicy.evaluation.episodes import split_group

    by_split: dict[str, list] = defaultdict(list)
    for r in records:
        by_split[split_group(r["split"], meta.get("perturb"))].append(r)
    groups = [split_group(s, meta.get("perturb")) for s in meta["splits"]]
    report = {**meta, "overall": _cell(records),
              "by_split": {g: summarize(by_split[g]) for g in groups if g in by_split}}
    for split, r in report["by_split"].items():
        success_chart(r, f"{split}: success by task class", out_dir / split / "success.png")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(split_markdown(report))
    return report


def success_chart(report: dict, title: str, path: Path) -> Path:
    """A bar chart of success rate per task class with 95% Wilson error bars."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    cells = report["by_task_class"]
    names = list(cells)
    rates = [cells[k]["success_rate"] for k in names]
    # clipped at 0: a Wilson bound can sit a rounding error past the rate itself
    lo = [max(0.0, r - cells[k]["ci95"][0]) for k, r in zip(names, rates, strict=True)]
    hi = [max(0.0, cells[k]["ci95"][1] - r) for k, r in zip(names, rates, strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(names) + 2), 3.2), dpi=100)
    x = list(range(len(names)))
    ax.bar(x, rates, yerr=[lo, hi], capsize=3, color="#4c72b0")
    ax.set_xticks(x, names)
    for i, k in enumerate(names):
        ax.text(i, 0.02, f"{cells[k]['successes']}/{cells[k]['episodes']}", ha="center",
                fontsize=7, color="white" if rates[i] > 0.1 else "black")
    o = report["overall"]
    ax.axhline(o["success_rate"], color="#c44e52", lw=1, ls="--",
               label=f"all: {o['success_rate']:.0%} ({o['successes']}/{o['episodes']})")
    ax.set(ylim=(0, 1.15), yticks=[0, 0.25, 0.5, 0.75, 1], xlabel="task class", ylabel="success rate", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
