"""The archive's manifest and the moves out of the live store, as SQL over the store's tables.

``archive_files`` lists every archive file readers may use (path relative to the archive root).
A file written but not listed is an orphan of a crash, deleted at the next start. Moving
observations is two-phased so that no transaction holds ingest for long:

1. the due rows are read, written to files, and the files listed together with a pending
   move in ``archive_moves`` (one short transaction);
2. the rows are deleted from the live store a few hundred at a time (short transactions);
3. the move is finished (one short transaction).

A pending move is a predicate: the rows with ``sec < below_sec AND rid < below_rid`` are the
rows of its files still in the live store. Readers leave such rows out, so each observation is
read exactly once, from the live store or from a file, whatever the mover is doing. Rows are
deleted by their own rids (or, when a move found pending at start-up is finished, by the ids in
its files), never by the predicate: on SQLite no later row can match it (one writer, rids only
grow), but on PostgreSQL a late observation committed by another process just after the move
read the store can, and is then only hidden until the move is done, never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenes.db import Connection, begin_read
from scenes.history.files import WrittenFile
from scenes.models import Alert
from scenes.rows import OBSERVATION_COLUMNS


@dataclass(frozen=True)
class ArchiveFile:
    """A listed archive file: path (relative to the archive root), kind, partition hour (epoch
    s), rows, bytes, time span (µs), lon/lat box (deg), whether it is a compacted partition,
    when it was listed (epoch s) and the pending move it belongs to (None once done)."""

    path: str
    kind: str
    hour_s: int
    rows: int
    bytes: int
    min_us: int
    max_us: int
    bbox: tuple[float, float, float, float]
    compacted: bool
    created_s: float
    move_id: str | None = None


_FILE_COLUMNS = (
    "path", "kind", "hour_s", "rows", "bytes", "min_us", "max_us", "minlon", "minlat",
    "maxlon", "maxlat", "compacted", "created_s", "move_id",
)  # fmt: skip


def listing(
    written: WrittenFile, root: Path, kind: str, hour_s: int, *, now: float, compacted: bool,
    move_id: str | None = None,
) -> ArchiveFile:  # fmt: skip
    """The manifest entry of a file just written under `root`."""
    return ArchiveFile(
        written.path.relative_to(root).as_posix(), kind, hour_s, written.rows, written.bytes,
        written.min_us, written.max_us, written.bbox, compacted, now, move_id,
    )  # fmt: skip


def _from_row(row: Sequence[object]) -> ArchiveFile:
    path, kind, hour, rows, size, lo, hi, x0, y0, x1, y1, compacted, created, move = row
    return ArchiveFile(
        str(path), str(kind), int(str(hour)), int(str(rows)), int(str(size)), int(str(lo)),
        int(str(hi)), (float(str(x0)), float(str(y0)), float(str(x1)), float(str(y1))),
        bool(compacted), float(str(created)), None if move is None else str(move),
    )  # fmt: skip


def add_files(db: Connection, files: Sequence[ArchiveFile]) -> None:
    """List `files` (inside the caller's write transaction)."""
    db.executemany(
        f"INSERT INTO archive_files ({', '.join(_FILE_COLUMNS)})"
        f" VALUES ({','.join('?' * len(_FILE_COLUMNS))})",
        [
            (f.path, f.kind, f.hour_s, f.rows, f.bytes, f.min_us, f.max_us, *f.bbox,
             int(f.compacted), f.created_s, f.move_id)
            for f in files
        ],
    )  # fmt: skip


def remove_files(db: Connection, paths: Sequence[str]) -> None:
    """Unlist `paths` (inside the caller's write transaction; the caller deletes the files
    after the commit)."""
    db.executemany("DELETE FROM archive_files WHERE path = ?", [(p,) for p in paths])


def files(
    db: Connection,
    kind: str,
    *,
    from_us: int | None = None,
    to_us: int | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[ArchiveFile]:
    """Listed files of `kind` (pending moves' included) that may hold rows in [from_us, to_us)
    and `bbox`, oldest partition first."""
    sql = f"SELECT {', '.join(_FILE_COLUMNS)} FROM archive_files WHERE kind = ?"
    args: list[object] = [kind]
    if from_us is not None:
        sql += " AND max_us >= ?"
        args.append(from_us)
    if to_us is not None:
        sql += " AND min_us < ?"
        args.append(to_us)
    if bbox is not None:
        sql += " AND maxlon >= ? AND minlon <= ? AND maxlat >= ? AND minlat <= ?"
        args += [bbox[0], bbox[2], bbox[1], bbox[3]]
    return [_from_row(r) for r in db.execute(sql + " ORDER BY hour_s, path", args)]


def totals(db: Connection) -> tuple[int, int]:
    """How many files are listed, and their bytes."""
    count, size = db.execute(
        "SELECT count(*), coalesce(sum(bytes), 0) FROM archive_files"
    ).fetchone()
    return int(count), int(size)


def all_paths(db: Connection) -> set[str]:
    return {str(r[0]) for r in db.execute("SELECT path FROM archive_files")}


# -- moving observations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """A move's predicate: rows with ``sec < below_sec AND rid < below_rid``."""

    id: str
    below_sec: int
    below_rid: int

    def sql(self) -> tuple[str, tuple[int, int]]:
        """The predicate as SQL over the observations table, with its arguments."""
        return "(sec < ? AND rid < ?)", (self.below_sec, self.below_rid)


@dataclass(frozen=True)
class DueRows:
    """Observations due to move (values of `OBSERVATION_COLUMNS`, oldest second first), their
    rids, and the predicate that selects them."""

    rows: list[tuple[Any, ...]]
    rids: list[int]
    below_sec: int
    below_rid: int


_SELECT_DUE = f"SELECT {', '.join(OBSERVATION_COLUMNS)}, rid FROM observations"
_SEC = OBSERVATION_COLUMNS.index("sec")


def due_observations(db: Connection, before_sec: int, limit: int) -> DueRows | None:
    """The oldest observations with ``sec < before_sec``, about `limit` of them in whole
    seconds (more when one second holds more), read in one transaction on `db` (a connection
    of the caller's own); None when there are none."""
    begin_read(db)
    try:
        top = db.execute("SELECT max(rid) FROM observations").fetchone()[0]
        if top is None:
            return None
        below_rid = int(top) + 1
        rows = db.execute(
            f"{_SELECT_DUE} WHERE sec < ? AND rid < ? ORDER BY sec LIMIT ?",
            (before_sec, below_rid, limit + 1),
        ).fetchall()
        if not rows:
            return None
        below_sec = before_sec
        if len(rows) > limit:
            below_sec = int(rows[limit][_SEC])
            rows = [r for r in rows if int(r[_SEC]) < below_sec]
            if not rows:  # one second holds more than `limit`: take that whole second
                below_sec += 1
                rows = db.execute(
                    f"{_SELECT_DUE} WHERE sec = ? AND rid < ?", (below_sec - 1, below_rid)
                ).fetchall()
        width = len(OBSERVATION_COLUMNS)
        return DueRows([r[:width] for r in rows], [int(r[width]) for r in rows], below_sec,
                       below_rid)  # fmt: skip
    finally:
        db.execute("COMMIT")


def begin_move(db: Connection, move: Move, listed: Sequence[ArchiveFile]) -> None:
    """Record pending `move` and list its files (inside the caller's write transaction)."""
    db.execute(
        "INSERT INTO archive_moves (id, below_sec, below_rid) VALUES (?,?,?)",
        (move.id, move.below_sec, move.below_rid),
    )
    add_files(db, listed)


def delete_rows(db: Connection, column: str, values: Sequence[object]) -> int:
    """Delete the observations whose `column` (``rid`` or ``id``) is one of `values` (a few
    hundred: one short transaction of the caller's); how many."""
    marks = ",".join("?" * len(values))
    return db.execute(f"DELETE FROM observations WHERE {column} IN ({marks})", values).rowcount


def finish_move(db: Connection, move: Move) -> None:
    """Mark `move` done (inside the caller's write transaction): its rows are all gone."""
    db.execute("UPDATE archive_files SET move_id = NULL WHERE move_id = ?", (move.id,))
    db.execute("DELETE FROM archive_moves WHERE id = ?", (move.id,))


def pending_moves(db: Connection) -> list[Move]:
    return [
        Move(str(i), int(s), int(r))
        for i, s, r in db.execute("SELECT id, below_sec, below_rid FROM archive_moves ORDER BY id")
    ]


def move_files(db: Connection, move: Move) -> list[ArchiveFile]:
    rows = db.execute(
        f"SELECT {', '.join(_FILE_COLUMNS)} FROM archive_files WHERE move_id = ?", (move.id,)
    )
    return [_from_row(r) for r in rows]


# -- moving alerts ---------------------------------------------------------------------------


def due_alerts(db: Connection, closed_before_s: float, limit: int) -> list[Alert]:
    """Up to `limit` alerts closed before epoch seconds `closed_before_s`, oldest first."""
    rows = db.execute(
        "SELECT record FROM alerts WHERE closed_s < ? ORDER BY closed_s LIMIT ?",
        (closed_before_s, limit),
    )
    return [Alert.model_validate_json(str(r[0])) for r in rows]


def archive_alerts(db: Connection, listed: Sequence[ArchiveFile], alert_ids: Sequence[str]) -> None:
    """List the files holding `alert_ids` and delete those alerts from the live store (their
    crops stay until the alert retention ends); inside the caller's write transaction."""
    add_files(db, listed)
    db.executemany("DELETE FROM alerts WHERE id = ?", [(i,) for i in alert_ids])


# -- expiry ----------------------------------------------------------------------------------

_EXPIRE = {
    "entities": "DELETE FROM entities WHERE id IN"
    " (SELECT id FROM entities WHERE received_s < ? LIMIT ?)",
    "crops": "DELETE FROM alert_crops WHERE alert_id IN"
    " (SELECT alert_id FROM alert_crops WHERE created_s < ? LIMIT ?)",
    "hits": "DELETE FROM watchlist_hits WHERE rid IN"
    " (SELECT rid FROM watchlist_hits WHERE time_s < ? LIMIT ?)",
    "evaluated": "DELETE FROM rules_done WHERE key IN"
    " (SELECT key FROM rules_done WHERE at_s < ? LIMIT ?)",
}


def expire(db: Connection, what: str, before_s: float, limit: int) -> int:
    """Delete up to `limit` rows of `what` (entities unseen, alert crops, watchlist hits)
    older than epoch seconds `before_s`, inside the caller's write transaction; how many."""
    return db.execute(_EXPIRE[what], (before_s, limit)).rowcount
