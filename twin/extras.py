"""The project's optional parts (``[project.optional-dependencies]`` in pyproject.toml): the
modules each one brings, and the one-line error of a command whose part is not installed.

``twin serve`` and ``twin build`` need none of them; ``twin detect`` and ``twin demo`` need
``detect`` (PyTorch, Ultralytics, LiteRT, the tracker's solver, PP-OCR), ``twin view`` needs
``viewer`` (PyVista, VTK, Qt).
"""

from __future__ import annotations

import importlib.util

from twin.errors import TwinError

DISTRIBUTION = "district-twin"
EXTRAS: dict[str, tuple[str, ...]] = {
    "detect": (
        "torch",
        "torchvision",
        "ultralytics",
        "ai_edge_litert",
        "lap",
        "rapidocr_onnxruntime",
    ),
    "viewer": ("pyvista", "vtk", "pyvistaqt", "PySide6"),
}


class MissingExtraError(TwinError):
    """A command needs an optional part of the project that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this command needs the '{extra}' extra ({module} is not installed)",
            hint=f"pip install '{DISTRIBUTION}[{extra}]'",
        )
        self.extra, self.module = extra, module


def _installed(module: str) -> bool:
    """Whether top-level `module` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module set to None
        return False


def require(extra: str) -> None:
    """Raise `MissingExtraError` naming `extra` when one of its modules is not installed."""
    for module in EXTRAS[extra]:
        if not _installed(module):
            raise MissingExtraError(extra, module)
