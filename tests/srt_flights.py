"""DJI SRT flights over the sample district, written in each family's line format (the
published excerpts in `tests/data/srt/` show the formats), for the import tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pyproj import Geod

GEOD = Geod(ellps="WGS84")
START = (121.4890, 31.2380)  # over the Bund promenade
CLOCK = datetime(2026, 5, 1, 10, 0, 0)  # the drone's clock (local time, no zone)


def flight_path(step_s: float, duration_s: float, bearing: float, speed_mps: float) -> list[tuple]:
    """(video s, lon, lat) every `step_s` along a straight line from START."""
    points = []
    for i in range(round(duration_s / step_s)):
        t = i * step_s
        lon, lat, _ = GEOD.fwd(START[0], START[1], bearing, speed_mps * t)
        points.append((t, lon, lat))
    return points


def _code(t: float, step: float) -> str:
    def fmt(s: float) -> str:
        ms = round(s * 1000)
        return (
            f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
        )

    return f"{fmt(t)} --> {fmt(t + step)}"


def srt_text(points: list[tuple], step: float, body: Callable[..., str]) -> str:
    """An SRT file: for each (t, lon, lat), its number, time code and `body(i, t, lon, lat,
    clock, step)` (``clock``: the drone's local time then)."""
    return (
        "\n\n".join(
            f"{i}\n{_code(t, step)}\n{body(i, t, lon, lat, CLOCK + timedelta(seconds=t), step)}"
            for i, (t, lon, lat) in enumerate(points, start=1)
        )
        + "\n"
    )


def mavic3(i: int, t: float, lon: float, lat: float, clock: datetime, step: float) -> str:
    """Mavic 3 line format with the Avata 360's gimbal angles: looking 45° down, yaw 30°."""
    return (
        f'<font size="28">FrameCnt: {i}, DiffTime: {round(step * 1000)}ms\n'
        f"{clock.isoformat(sep=' ', timespec='milliseconds')}\n[iso: 160] [shutter: 1/1000.0] "
        f"[fnum: 2.8] [ev: 0] [color_md: default] [focal_len: 24.00] [latitude: {lat:.6f}] "
        f"[longitude: {lon:.6f}] [rel_alt: {40 + t:.3f} abs_alt: {50 + t:.3f}] "
        f"[gb_yaw: 30.0 gb_pitch: -45.0 gb_roll: 0.0] [ct: 5574, tint: 8] </font>"
    )


def air2s(i: int, t: float, lon: float, lat: float, clock: datetime, step: float) -> str:
    return (
        f'<font size="36">SrtCnt : {i}, DiffTime : {round(step * 1000)}ms\n'
        f"{clock:%Y-%m-%d %H:%M:%S},{clock.microsecond // 1000:03d},000\n[iso : 100] "
        "[shutter : 1/80.0] [fnum : 280] [ev : 0] [ct : 5744] [color_md : default] "
        f"[focal_len : 240] [latitude: {lat:.6f}] [longitude: {lon:.6f}] "
        f"[altitude: {60 + t:.6f}] </font>"
    )


def mavic_pro(i: int, t: float, lon: float, lat: float, clock: datetime, step: float) -> str:
    return (
        f"HOME({START[0]:.4f},{START[1]:.4f}) {clock:%Y.%m.%d %H:%M:%S}\n"
        f"GPS({lon:.4f},{lat:.4f},14) BAROMETER:{30 + t:.1f}\nISO:100 Shutter:60 EV: Fnum:2.2 "
    )


def m300(i: int, t: float, lon: float, lat: float, clock: datetime, step: float) -> str:
    return f"{clock:%Y.%m.%d %H:%M:%S}\nGPS({lat:.4f},{lon:.4f},0.0M) BAROMETER:{30 + t:.1f}M"
