"""Pre-compressed twins of a tileset's JSON files (``tileset.json.gz`` beside ``tileset.json``),
so a static server (nginx ``gzip_static``) sends them compressed without compressing per
request. Deterministic: the gzip header carries no name and no time."""

from __future__ import annotations

import gzip
from pathlib import Path

SUFFIX = ".gz"
LEVEL = 9


def precompress_json(folder: Path) -> int:
    """Write ``X.json.gz`` for every ``X.json`` under `folder`; how many."""
    count = 0
    for path in sorted(folder.rglob("*.json")):
        data = gzip.compress(path.read_bytes(), compresslevel=LEVEL, mtime=0)
        path.with_name(path.name + SUFFIX).write_bytes(data)
        count += 1
    return count
