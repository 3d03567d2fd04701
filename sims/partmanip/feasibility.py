"""Which (category, role, part) units the scripted expert can do, measured in simulation.

Some part-level skills are not physically sensible on our objects even though the part exists:
turning a laptop held by its screen frame fails in every try, pushing a bottle by its
neck tips it over, a scissors' screw offers no side to push. The catalog keeps a task only if
every unit it uses is feasible: the part grasped and carried (`grasp`, measured with class 7:
grasp, two moves), the part held while the object is turned (`rotate`, class 8) and the part
touched to push (`push`, class 6: touch, push, release).

The table is data (`feasibility.json` beside this file), measured by running the expert on a
few episodes per unit (`sims.partmanip.calibration` says which) and regenerated with
`robopolicy dataset calibrate`. This module holds the pure parts the catalog reads: the unit
keys, the threshold, reading and writing the table.
"""

from __future__ import annotations

import json
from pathlib import Path

TABLE = Path(__file__).with_name("feasibility.json")
FEASIBLE_MIN = 0.6  # fraction of calibration episodes the expert must succeed on


def unit_key(category: str, role: str, part: str) -> str:
    """A unit's row in the table: ``category/role/part``."""
    return f"{category}/{role}/{part}"


def make_table(units: dict[str, list[int]], categories: list[str] | None = None,
               episodes: int = 8, seed: int = 0) -> dict:
    """The feasibility table of measured `units` ({unit key: [successes, episodes]}), with the
    object fingerprints of `categories` (default: all) it was measured on."""
    from sims.objects.library import fingerprint, split_manifest

    cats = sorted(categories or split_manifest()["categories"])
    return {"episodes_per_unit": episodes, "seed": seed, "feasible_min": FEASIBLE_MIN,
            "fingerprints": {c: fingerprint(c) for c in cats},
            "units": dict(sorted(units.items()))}


def write_table(table: dict, out: Path = TABLE) -> dict:
    """Merge `table` into the one at `out` (rows of other categories are kept), write it and
    return the merged table."""
    old = load_table(out) if Path(out).is_file() else {"units": {}, "fingerprints": {}}
    merged = {**table,
              "units": dict(sorted({**old["units"], **table["units"]}.items())),
              "fingerprints": dict(sorted({**old["fingerprints"], **table["fingerprints"]}.items()))}
    Path(out).write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def load_table(path: Path = TABLE) -> dict:
    """The measured table; a missing or unreadable one is a one-line error."""
    try:
        table = json.loads(Path(path).read_text())
        table["units"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"feasibility table {path}: {type(e).__name__}: {e}; rebuild it with "
                         "`robopolicy dataset calibrate`") from None
    return table


def infeasible_units(table: dict) -> frozenset[str]:
    """Units measured below FEASIBLE_MIN (units never measured count as feasible)."""
    return frozenset(k for k, (ok, n) in table["units"].items() if n and ok / n < FEASIBLE_MIN)


def infeasible_for(category: str, table: dict) -> frozenset[tuple[str, str]]:
    """The (role, part) units of one category measured below FEASIBLE_MIN."""
    return frozenset(tuple(k.split("/")[1:]) for k in infeasible_units(table)
                     if k.startswith(f"{category}/"))
