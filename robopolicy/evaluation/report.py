"""Evaluation reports: success rates with Wilson intervals, written as JSON and Markdown."""

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


def summarize(records: list[dict], meta: dict | None = None) -> dict:
    """Overall and per-task-class / per-task results of finished episode records."""
    by_class, by_task = defaultdict(list), defaultdict(list)
    for r in records:
        by_class[str(r["task_class"])].append(r)
        by_task[r["task_id"]].append(r)
    return {
        **(meta or {}),
        "overall": _cell(records),
        "by_task_class": {k: _cell(v) for k, v in sorted(by_class.items())},
        "by_task": {k: _cell(v) for k, v in sorted(by_task.items())},
    }


def _row(name: str, c: dict) -> str:
    lo, hi = c["ci95"]
    return (f"| {name} | {c['episodes']} | {c['success_rate']:.1%} | [{lo:.1%}, {hi:.1%}] | "
            f"{c['completion']:.2f} | {c['mean_steps']:.1f} |")


def to_markdown(report: dict) -> str:
    """A human-readable report with one table per grouping."""
    head = "| | episodes | success | 95% CI (Wilson) | completion | mean steps |\n|---|---|---|---|---|---|"
    lines = ["# Evaluation report", ""]
    for key in ("policy", "episodes_requested", "seed", "workers", "envs_per_worker", "wall_s"):
        if key in report:
            lines.append(f"- {key}: {report[key]}")
    lines += ["", "## Overall", "", head, _row("all", report["overall"]), "",
              "## By task class", "", head]
    lines += [_row(k, c) for k, c in report["by_task_class"].items()]
    lines += ["", "## By task", "", head]
    lines += [_row(k, c) for k, c in report["by_task"].items()]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, records: list[dict], meta: dict | None = None) -> dict:
    """Write report.json and report.md into `out_dir`; returns the report."""
    report = summarize(records, meta)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(to_markdown(report))
    return report
