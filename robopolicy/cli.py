"""`robopolicy <verb> [hydra overrides]`: dispatches to one hydra app per verb.

Kept import-light: a verb's module (and torch, mujoco) is imported only when that verb runs.
"""

from __future__ import annotations

import importlib
import re
import sys

VERBS: dict[str, str] = {
    "assets": "Build, list (--json) or preview the procedural object library: assets <build|list|preview>.",
    "collect": "Run the scripted expert in parallel sim workers and write demos to a zarr store.",
    "augment": "New demos from a demo store (augment=pose|lighting|camera: placements, light, views).",
    "train": "Train a policy on a demo store; saves policy directories (weights + config + meta).",
    "eval": "Roll a policy out headlessly in parallel workers; writes episodes.jsonl, reports, videos.",
    "dataset": "dataset info|verify|export|catalog|calibrate: summarize or check a demo store, export it, build the task catalog.",
    "view": "Show an episode of a dataset or eval run: rerun viewer, --save X.rrd, --web, --video X.mp4, --native.",
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


# Flags a verb takes besides key=value: `--flag VALUE` -> `key=VALUE`, `--switch` -> `key=true`.
FLAGS: dict[str, dict[str, str]] = {"view": {"--save": "save", "--video": "video"}}
SWITCHES: dict[str, dict[str, str]] = {"view": {"--web": "web", "--native": "native"}}


def flags_to_overrides(verb: str, args: list[str]) -> list[str]:
    """`args` with the verb's flags (`--save out.rrd`, `--save=out.rrd`, `--web`) turned into
    hydra overrides (`save=out.rrd`, `web=true`); anything else (`--help`, key=value) as is."""
    flags, switches = FLAGS.get(verb, {}), SWITCHES.get(verb, {})
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in switches and not eq:
            out.append(f"{switches[name]}=true")
        elif name in flags and eq:
            out.append(f"{flags[name]}={_hydra_value(value)}")
        elif name in flags:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ValueError(f"{verb} {arg} needs a value (e.g. {arg} out)")
            out.append(f"{flags[name]}={_hydra_value(args[i + 1])}")
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


def _hydra_value(value: str) -> str:
    """A path as a hydra override value: quoted unless plainly safe (commas, spaces...)."""
    if re.fullmatch(r"[\w./~+-]+", value):
        return value
    # hydra reads a backslash as an escape only before a quote or the closing quote
    escaped = re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\" + m[2] if m[2] else ""), value)
    return f"'{escaped}'"


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
    try:
        rest = flags_to_overrides(verb, rest)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"robopolicy.commands.{verb}")
    bad = getattr(module, "check_args", lambda _: None)(rest)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    sys.argv = [f"robopolicy {verb}", *rest]  # hydra reads sys.argv
    module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
