"""The one root exception of the `scenes` package."""

from __future__ import annotations


class SceneError(Exception):
    """Root of every error raised by `scenes`; ``str(err)`` is one line."""


class RuleError(SceneError):
    """A rule file is malformed: names the file and the key at fault."""


class AlertNotFound(SceneError):
    """No alert with that id."""


class AlertTransitionError(SceneError):
    """The alert cannot move to that status from its current one (e.g. resolve twice)."""


class UnknownSourceError(SceneError):
    """An observation names a source that is not a camera or sensor of the catalog."""

    def __init__(self, source: str, *, index: int | None = None) -> None:
        where = f"observations[{index}].source: " if index is not None else ""
        super().__init__(f"{where}unknown source '{source}' (not a camera or sensor element)")
        self.source, self.index = source, index


class AppNotFound(SceneError):
    """No scenario app with that id."""


class AppConfigError(SceneError):
    """App settings that cannot apply (an unknown parameter, a value its rules refuse)."""


class WatchlistNotFound(SceneError):
    """No watchlist with that name."""


class WatchlistValueError(SceneError):
    """A watchlist entry value that is empty after normalisation."""
