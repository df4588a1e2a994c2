"""How long the twin keeps what, and how the history mover paces itself."""

from __future__ import annotations

from dataclasses import dataclass

DAY_S = 86_400.0


@dataclass(frozen=True)
class HistoryPolicy:
    """Windows in seconds, sizes in rows and bytes.

    hot_s: observations younger than this stay in the live store; older ones (and alerts
        closed longer ago) move to the archive.
    entity_ttl_s: a live entity not seen for this long is removed.
    retention_s / alert_retention_s: archived observations, and alerts with their evidence
        crops and the watchlist hit log, are deleted after this long.
    disk_budget_bytes: when the workspace grows past it, the oldest observation partitions
        go first; a warning from `WARN_RATIO` of it.
    interval_s: the mover's pause between passes when it has caught up.
    batch_rows: most observations one move reads and writes to files.
    delete_chunk: most rows one transaction deletes (ingest waits for it: a few ms).
    compact_delay_s: a partition is merged once no file has come into it for this long.
    compact_after_files: a partition with more files is merged even while still filling.
    """

    hot_s: float = 3600.0
    entity_ttl_s: float = 600.0
    retention_s: float = 90 * DAY_S
    alert_retention_s: float = 365 * DAY_S
    disk_budget_bytes: int | None = None
    interval_s: float = 5.0
    batch_rows: int = 100_000
    delete_chunk: int = 500
    compact_delay_s: float = 120.0
    compact_after_files: int = 64


WARN_RATIO = 0.9
