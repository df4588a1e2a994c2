"""DJI SRT subtitle telemetry → flight samples, one per subtitle block.

A DJI drone writes beside each video a SubRip file whose blocks cover the video's frames
(video time ``HH:MM:SS,mmm --> HH:MM:SS,mmm``) and hold the aircraft's state at that moment.
The line formats differ by family (published examples, quoted in `tests/data/srt/README.md`):

- ``air2s``: Air 2S — ``SrtCnt : 1, DiffTime : 33ms``, a local time with milliseconds and
  microseconds (``2022-08-07 13:40:40,774,808``), ``[focal_len : 240]`` (mm × 10) and
  ``[latitude: …] [longitude: …] [altitude: …]`` (height above sea level, m).
- ``mavic3``: Mavic 3 / Mini 3 Pro / Mavic 4 Pro / Avata — ``FrameCnt: 1, DiffTime: 16ms``,
  ``2026-08-23 17:22:01.253``, ``[focal_len: 28.00]`` (mm), ``[latitude: …] [longitude: …]
  [rel_alt: … abs_alt: …]`` (above take-off, above sea level, m); the Avata 360 adds
  ``[dzoom_ratio: 1.00]`` and ``[gb_yaw: … gb_pitch: … gb_roll: …]`` (gimbal, deg).
- ``mavic-pro``: Mavic Pro / Phantom 4 (2017 firmware) — ``HOME(lon,lat) 2017.07.29
  15:18:50``, ``GPS(lon,lat,satellites) BAROMETER:h`` (h above take-off, m).
- ``m300``: Matrice 300 RTK — ``2022.06.21 16:06:17``, ``GPS(lat,lon,altM) BAROMETER:hM``.

Focal lengths are 35 mm-equivalent. Times are the drone's local clock without a zone. A
``GPS(a,b,…)`` tuple is read latitude first when its third value carries a unit (``0.0M``,
Matrice 300) and longitude first otherwise (Mavic Pro, Phantom 4); a first value beyond ±90°
is longitude whatever the family.

A block that gives no position (or an impossible one) is *unreadable*: counted, with the line
of the first one, never an exception — DJI writes empty or partial blocks before the GPS fix.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from twin.errors import InputError

FAMILIES = {
    "air2s": "Air 2S",
    "mavic3": "Mavic 3 / Mini 3 Pro / Mavic 4 Pro / Avata",
    "mavic-pro": "Mavic Pro / Phantom 4",
    "m300": "Matrice 300 RTK",
}
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_TIMECODE = re.compile(
    r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{2}):(\d{2})[,.](\d{1,3})"
)
_DATE = re.compile(
    r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})"
    r"(?:[.,](\d{1,3})(?:[,.](\d{1,3}))?)?"
)
_BRACKET = re.compile(r"\[([^\]]*)\]")
_PAIR = re.compile(rf"([A-Za-z_][A-Za-z_ ]*?)\s*:\s*({_NUMBER})")
_GPS = re.compile(rf"GPS\s*\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([A-Za-z]*)\s*\)")
_HOME = re.compile(rf"HOME\s*\(\s*({_NUMBER})\s*,\s*({_NUMBER})")
_BAROMETER = re.compile(rf"BAROMETER\s*[:(]\s*({_NUMBER})")
_TAG = re.compile(r"<[^>]*>")
MAX_DIGITAL_ZOOM = 100.0


@dataclass(frozen=True)
class Gimbal:
    """Gimbal angles from the log (deg): yaw clockwise from north, pitch and roll to the
    horizon (negative pitch looks down)."""

    yaw: float
    pitch: float
    roll: float = 0.0


@dataclass(frozen=True)
class FlightSample:
    """The aircraft's state over one subtitle block.

    ``start_s``/``end_s``: video time (s) the block covers; ``time``: the drone's clock (no
    zone) when it was written; ``lon``/``lat`` deg; ``rel_alt`` height above the take-off
    point and ``abs_alt`` above sea level (m; None when the family does not log it);
    ``focal_mm`` 35 mm-equivalent focal length (digital zoom applied); ``gimbal`` when logged.
    """

    block: int
    line: int
    start_s: float
    end_s: float
    time: datetime | None
    lon: float
    lat: float
    rel_alt: float | None
    abs_alt: float | None
    focal_mm: float | None
    gimbal: Gimbal | None
    family: str


@dataclass
class SrtLog:
    """What a file held: its samples in video-time order, the blocks that could not be read
    (count, and the line and reason of the first) and the families seen (block counts)."""

    samples: list[FlightSample] = field(default_factory=list)
    unreadable: int = 0
    first_unreadable: str | None = None
    families: Counter[str] = field(default_factory=Counter)

    @property
    def family(self) -> str:
        """The family most blocks were written in ('' when none was read)."""
        return self.families.most_common(1)[0][0] if self.families else ""

    def summary(self) -> str:
        """One line: samples read, family, unreadable blocks and the first one's place."""
        names = ", ".join(FAMILIES.get(f, f) for f in self.families) or "no known family"
        line = f"{len(self.samples)} samples ({names})"
        if self.unreadable:
            line += f", {self.unreadable} unreadable block(s) (first: {self.first_unreadable})"
        return line


class _Unreadable(ValueError):
    """A block without a usable position or time code; the message says why."""


def read_srt(path: Path) -> SrtLog:
    """Parse the DJI SRT file at `path` (UTF-8, with or without BOM; undecodable bytes are
    replaced). Raises `InputError` only when the file cannot be read at all or holds no
    readable block."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read flight log ({exc.strerror})", file=str(path)) from exc
    log = parse_srt(text.splitlines())
    if not log.samples:
        raise InputError(
            f"no telemetry read ({log.unreadable} unreadable block(s); first: "
            f"{log.first_unreadable})", file=str(path),
            hint="expected a DJI SRT subtitle file written beside the video",
        )  # fmt: skip
    return log


def parse_srt(lines: Iterable[str]) -> SrtLog:
    """Parse SRT `lines` (see the module docstring); blocks sorted by video time."""
    log = SrtLog()
    for block, (first_line, text) in enumerate(_blocks(lines), start=1):
        try:
            sample = _sample(block, first_line, text)
        except _Unreadable as why:
            log.unreadable += 1
            if log.first_unreadable is None:
                log.first_unreadable = f"line {first_line}: {why}"
            continue
        log.samples.append(sample)
        log.families[sample.family] += 1
    log.samples.sort(key=lambda s: s.start_s)
    return log


def _blocks(lines: Iterable[str]) -> Iterable[tuple[int, list[str]]]:
    """(first line number, lines) of each blank-line separated block."""
    current: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line:
            if not current:
                start = number
            current.append(line)
        elif current:
            yield start, current
            current = []
    if current:
        yield start, current


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def _sample(block: int, first_line: int, lines: list[str]) -> FlightSample:
    joined = " ".join(lines)
    code = _TIMECODE.search(joined)
    if code is None:
        raise _Unreadable("no time code 'HH:MM:SS,mmm --> HH:MM:SS,mmm'")
    start_s, end_s = _seconds(*code.groups()[:4]), _seconds(*code.groups()[4:])
    body = _TAG.sub(" ", joined[code.end() :])
    pairs = _pairs(body)
    time = _time(body)
    gps = _GPS.search(body)
    if "latitude" in pairs and "longitude" in pairs:
        lat, lon = pairs["latitude"], pairs["longitude"]
        family = "air2s" if "altitude" in pairs else "mavic3"
        rel_alt, abs_alt = pairs.get("rel_alt"), pairs.get("abs_alt", pairs.get("altitude"))
    elif gps is not None:
        a, b, third, unit = float(gps[1]), float(gps[2]), float(gps[3]), gps[4]
        lat_first = (bool(unit) and abs(a) <= 90.0) or abs(b) > 90.0
        lat, lon = (a, b) if lat_first else (b, a)
        family = "m300" if unit else "mavic-pro"
        barometer = _BAROMETER.search(body)
        rel_alt = float(barometer[1]) if barometer else None
        abs_alt = third if unit else None
    else:
        raise _Unreadable("no position (latitude/longitude or GPS(...))")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
        raise _Unreadable(f"no GPS fix (lat {lat}, lon {lon})")
    return FlightSample(
        block=block, line=first_line, start_s=start_s, end_s=max(end_s, start_s), time=time,
        lon=lon, lat=lat, rel_alt=rel_alt, abs_alt=abs_alt, focal_mm=_focal(pairs),
        gimbal=_gimbal(pairs), family=family,
    )  # fmt: skip


def _pairs(body: str) -> dict[str, float]:
    """Every ``key: number`` inside square brackets, keys lower-cased without spaces."""
    found: dict[str, float] = {}
    for bracket in _BRACKET.findall(body):
        for key, value in _PAIR.findall(bracket):
            found[key.strip().lower().replace(" ", "_")] = float(value)
    return found


def _time(body: str) -> datetime | None:
    match = _DATE.search(body)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    ms, us = match[7] or "0", match[8] or "0"
    micro = int(ms.ljust(3, "0")) * 1000 + int(us.ljust(3, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        return None


def _focal(pairs: dict[str, float]) -> float | None:
    """35 mm-equivalent focal length (mm): ``focal_len`` (× 10 when written as an integer
    of 100 or more, as the Air 2S does), times ``dzoom_ratio`` when logged as a plain factor
    (other encodings of it are ignored)."""
    focal = pairs.get("focal_len")
    if focal is None or focal <= 0:
        return None
    if focal >= 100 and focal.is_integer():
        focal /= 10.0
    zoom = pairs.get("dzoom_ratio", 1.0)
    return focal * (zoom if 0 < zoom <= MAX_DIGITAL_ZOOM else 1.0)


def _gimbal(pairs: dict[str, float]) -> Gimbal | None:
    if "gb_yaw" not in pairs or "gb_pitch" not in pairs:
        return None
    return Gimbal(pairs["gb_yaw"], pairs["gb_pitch"], pairs.get("gb_roll", 0.0))
