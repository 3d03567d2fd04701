"""`robopolicy <verb> [hydra overrides]`: dispatches to one hydra app per verb.

Kept import-light: a verb's module (and torch, mujoco) is imported only when that verb runs.
"""

from __future__ import annotations

import importlib
import sys

VERBS: dict[str, str] = {
    "assets": "Build, list (--json) or preview the procedural object library: assets <build|list|preview>.",
    "collect": "Run the scripted expert in parallel sim workers and write demos to a zarr store.",
    "train": "Train a policy on a demo store; saves policy directories (weights + config + meta).",
    "eval": "Roll a policy out headlessly in parallel workers; writes episodes.jsonl, reports, videos.",
    "dataset": "dataset info PATH: summarize a demo store; dataset catalog: build the task catalog (--json).",
    "view": "Show an episode of a store (dataset or rollouts) as an mp4 video.",
    "quickstart": "Collect demos, train a diffusion policy, evaluate it on held-out seeds (small, CPU).",
}

USAGE = """usage: robopolicy <verb> [key=value ...] [--help]

Learn part-level manipulation policies in simulation.

verbs:
{verbs}

Each verb is a hydra app: `robopolicy <verb> --help` shows its configuration, and any config
value can be overridden as key=value (e.g. `robopolicy train dataset.path=demos.zarr
trainer.steps=2000`). Outputs go to outputs/<verb>/<date>/<time>_<name>/.
"""


def usage() -> str:
    width = max(map(len, VERBS))
    return USAGE.format(verbs="\n".join(f"  {v:<{width}}  {h}" for v, h in VERBS.items()))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `robopolicy` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"robopolicy: unknown verb {verb!r}; known: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"robopolicy.commands.{verb}")
    sys.argv = [f"robopolicy {verb}", *rest]  # hydra reads sys.argv
    module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
