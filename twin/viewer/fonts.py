"""A font that draws Chinese as well as Latin text: Noto Sans CJK (Debian ``fonts-noto-cjk``,
which `make install` adds), found through fontconfig or in the usual folders. Fail soft: with
none, labels fall back on VTK's own font (CJK glyphs then show as boxes) and the viewer says
so once."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei")
KNOWN_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


def _fc_match(family: str) -> Path | None:
    """The file fontconfig gives for `family`, when it really is that family."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "-f", "%{family}\t%{file}", family], capture_output=True, text=True,
            timeout=5, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    families, _, file = found.partition("\t")
    if family.lower() not in families.lower() or not file:
        return None
    path = Path(file)
    return path if path.is_file() else None


@functools.cache
def cjk_font() -> Path | None:
    """A font file with CJK glyphs, or None when this machine has none."""
    for family in FAMILIES:
        found = _fc_match(family)
        if found is not None:
            return found
    return next((Path(p) for p in KNOWN_FILES if Path(p).is_file()), None)
