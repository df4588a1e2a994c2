"""Worker of test_history's kill -9 test: saves observations (printing each batch's ids once
its save returned, i.e. once acknowledged) and runs the history mover with tiny delete chunks
and eager merges, until it is killed. Usage: history_crash_worker.py WS ROUND."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from scenes.history import HistoryMover, HistoryPolicy
from scenes.models import Observation
from scenes.store import LiveStore

POLICY = HistoryPolicy(hot_s=3600.0, batch_rows=300, delete_chunk=20, compact_delay_s=0.3,
                       compact_after_files=4)  # fmt: skip


def main(ws: Path, round_: int) -> None:
    store = LiveStore(ws / "live.sqlite")
    mover = HistoryMover(store, ws / "history", ws, POLICY)
    assert mover.acquire()  # recovers what the previous round left
    print("ready", flush=True)
    start = time.time() - 3 * 3600.0
    n = 0
    while True:
        batch = []
        for _ in range(150):
            n += 1
            batch.append(Observation.model_validate({
                "id": f"r{round_}-{n:08d}", "kind": "person", "source": "camera:c",
                "track_id": str(n % 13), "lon": 121.49 + (n % 97) * 1e-5, "lat": 31.24,
                "time": datetime.fromtimestamp(start + n * 0.05, UTC).isoformat(),
            }))  # fmt: skip
        store.save(batch, [], received_s=time.time())
        print(" ".join(o.id or "" for o in batch), flush=True)
        mover.run_once(time.time())


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
