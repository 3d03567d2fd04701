"""Append-only JSON-lines logs beside a store (collection attempts, augmentation copies)."""

from __future__ import annotations

import json
from pathlib import Path


def read_json_lines(path: Path) -> list[dict]:
    """The records of a JSON-lines file, in order; none if it does not exist. Unreadable
    lines (torn by a kill mid-write) are skipped: the jobs they logged are done again."""
    path = Path(path)
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
