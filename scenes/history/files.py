"""Writing archive files so that a crash at any moment leaves either the whole file or none:
each is written under a hidden name (".tmp-…", skipped by GeoParquet readers), flushed to disk,
renamed into place and its folder synced. Partitions are merged ("compacted") by DuckDB into
one file sorted by track and time, with duplicates of an id dropped."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from scenes.history.layout import FLOAT_COLUMNS, geo_metadata

ZSTD_LEVEL = 6
ROW_GROUP_ROWS = 65_536
DICTIONARY_COLUMNS = ("kind", "cls", "source", "track_id", "entity_id", "rule", "app", "board",
                      "status", "severity", "unit")  # fmt: skip
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class WrittenFile:
    """A file in place: its path, rows, bytes, time span (µs since the epoch, UTC) and lon/lat
    box (deg)."""

    path: Path
    rows: int
    bytes: int
    min_us: int
    max_us: int
    bbox: tuple[float, float, float, float]


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(tmp: Path, final: Path) -> None:
    """Make the written and synced `tmp` the file `final`, durably."""
    os.replace(tmp, final)
    _sync_dir(final.parent)


def _bbox(table: pa.Table) -> tuple[float, float, float, float]:
    lon, lat = table.column("lon"), table.column("lat")
    return (
        float(pa.compute.min(lon).as_py()),
        float(pa.compute.min(lat).as_py()),
        float(pa.compute.max(lon).as_py()),
        float(pa.compute.max(lat).as_py()),
    )


def _span_us(table: pa.Table, time_column: str) -> tuple[int, int]:
    times = table.column(time_column).cast(pa.int64())
    return int(pa.compute.min(times).as_py()), int(pa.compute.max(times).as_py())


def write_table(table: pa.Table, final: Path, *, time_column: str) -> WrittenFile:
    """Write non-empty `table` as GeoParquet file `final` (atomically, synced)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    bbox = _bbox(table)
    table = table.replace_schema_metadata({b"geo": geo_metadata(bbox)})
    tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet")
    names = set(table.column_names)
    try:
        with open(tmp, "wb") as sink:
            pq.write_table(
                table,
                sink,
                compression="zstd",
                compression_level=ZSTD_LEVEL,
                row_group_size=ROW_GROUP_ROWS,
                use_dictionary=[c for c in DICTIONARY_COLUMNS if c in names],
                use_byte_stream_split=[c for c in FLOAT_COLUMNS if c in names],
                write_statistics=True,
            )
            sink.flush()
            os.fsync(sink.fileno())
        _place(tmp, final)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    min_us, max_us = _span_us(table, time_column)
    return WrittenFile(final, table.num_rows, final.stat().st_size, min_us, max_us, bbox)


def compact(
    sources: Sequence[Path],
    final: Path,
    *,
    order: str,
    time_column: str,
    con: duckdb.DuckDBPyConnection,
) -> WrittenFile:
    """Merge `sources` (files of one partition) into `final`, sorted by `order` (an ORDER BY
    list), keeping one row per ``id``; DuckDB sorts within its memory limit, spilling to its
    temporary folder. Atomic like `write_table`; the sources are left for the caller."""
    files = [str(p) for p in sources]
    merged = (
        "SELECT * FROM read_parquet($files, hive_partitioning = false) QUALIFY"
        " row_number() OVER"
        f" (PARTITION BY id ORDER BY {time_column}) = 1"
    )
    span = con.execute(
        f"SELECT count(*), min(lon), min(lat), max(lon), max(lat), epoch_us(min({time_column})),"
        f" epoch_us(max({time_column})) FROM ({merged})",
        {"files": files},
    ).fetchone()
    assert span is not None
    rows, minlon, minlat, maxlon, maxlat, min_us, max_us = span
    bbox = (float(minlon), float(minlat), float(maxlon), float(maxlat))
    tmp = final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet")
    geo = geo_metadata(bbox).decode().replace("'", "''")
    try:
        con.execute(
            f"COPY ({merged} ORDER BY {order}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd,"
            f" COMPRESSION_LEVEL {ZSTD_LEVEL}, ROW_GROUP_SIZE {ROW_GROUP_ROWS},"
            f" KV_METADATA {{geo: '{geo}'}})",
            {"files": files},
        )
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        _place(tmp, final)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return WrittenFile(final, int(rows), final.stat().st_size, int(min_us), int(max_us), bbox)


def remove_tree_if_empty(folder: Path, stop: Path) -> None:
    """Remove `folder` and its empty parents up to (not including) `stop`."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def clear_temporary(root: Path) -> int:
    """Delete half-written files (".tmp-…") under `root`; how many."""
    found = list(root.rglob(f"{TMP_PREFIX}*")) if root.exists() else []
    for path in found:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                path.unlink()
    return len(found)
