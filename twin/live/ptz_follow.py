"""Keep the twin server's idea of a PTZ camera's pose in step with the head: read the head's
status from an adapter (`twin.cameras.ptz`: ONVIF, Hikvision ISAPI, or the simulator) every few
seconds and send it with ``PUT /api/cameras/{id}/ptz`` (operator token), so the AR labels and
the detector's rays follow the camera as it turns.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

import httpx

from twin.cameras.ptz import PtzAdapter
from twin.errors import TwinError

log = logging.getLogger(__name__)

PERIOD_S = 3.0


def follow_ptz(
    server: str,
    token: str,
    camera_id: str,
    adapter: PtzAdapter,
    *,
    stop: threading.Event,
    period_s: float = PERIOD_S,
) -> int:
    """Every `period_s` seconds until `stop` is set, send `adapter`'s status (pan, tilt deg,
    zoom 0–1) as the live pose of `camera_id`; returns the moves the server accepted. A server
    or head that does not answer is retried on the next period; a refused token ends it."""
    url = f"{server.rstrip('/')}/api/cameras/{quote(camera_id, safe=':')}/ptz"
    moves = 0
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5.0) as client:
        while not stop.is_set():
            try:
                status = adapter.status()
                response = client.put(url, json=status.to_dict())
            except (TwinError, httpx.HTTPError) as exc:
                log.warning("PTZ %s: %s; retrying in %.1f s", camera_id, exc, period_s)
            else:
                if response.status_code in (401, 403):
                    raise TwinError(
                        f"the server refused to move {camera_id} ({response.status_code})",
                        hint="use a token of role operator",
                    )
                if response.status_code == 200:
                    moves += 1
                else:
                    log.warning("PTZ %s: HTTP %d", camera_id, response.status_code)
            stop.wait(period_s)
    return moves
