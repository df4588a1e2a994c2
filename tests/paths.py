"""Where the tests find the repository, its bundled sample source and the installed CLI."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SRC = REPO / "data" / "sample"
TWIN = str(Path(sys.executable).parent / "twin")
