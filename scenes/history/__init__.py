"""The twin's history: the live store's hot window, an archive of GeoParquet files beyond it
(read with DuckDB), the mover between them, and the questions asked of both as one."""

from scenes.history.cursor import Cursor, CursorError
from scenes.history.mover import HistoryMover, MoverStatus
from scenes.history.policy import HistoryPolicy
from scenes.history.process import MoverProcess
from scenes.history.reader import AlertQuery, HistoryReader, ObservationQuery, Page, ReplayTrack

__all__ = [
    "AlertQuery",
    "Cursor",
    "CursorError",
    "HistoryMover",
    "HistoryPolicy",
    "HistoryReader",
    "MoverProcess",
    "MoverStatus",
    "ObservationQuery",
    "Page",
    "ReplayTrack",
]
