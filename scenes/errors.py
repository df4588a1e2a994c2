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


class ObservationError(SceneError):
    """An observation of a batch that cannot be taken; ``path`` points at the field at fault
    (``("observations", index, field)``) and nothing of the batch is stored."""

    def __init__(self, message: str, *, index: int | None, field: str) -> None:
        where = f"observations[{index}].{field}: " if index is not None else ""
        super().__init__(where + message)
        self.index = index
        self.path: tuple[str | int, ...] = (
            ("observations", index, field) if index is not None else (field,)
        )


class UnknownSourceError(ObservationError):
    """An observation names a source that is not a camera or sensor of the catalog."""

    def __init__(self, source: str, *, index: int | None = None) -> None:
        message = f"unknown source '{source}' (not a camera or sensor element)"
        super().__init__(message, index=index, field="source")
        self.source = source


class ObservationTimeError(ObservationError):
    """An observation's time lies outside what the server accepts (too old, or further in
    the future than the clock skew allowed)."""


class DuplicateObservationError(SceneError):
    """An observation id given twice in one batch, or already stored: nothing is stored."""

    def __init__(self, observation_id: str, *, index: int) -> None:
        super().__init__(
            f"observations[{index}].id: observation id '{observation_id}' is already taken"
        )
        self.observation_id, self.index = observation_id, index


class AppNotFound(SceneError):
    """No scenario app with that id."""


class AppConfigError(SceneError):
    """App settings that cannot apply (an unknown parameter, a value its rules refuse)."""

    path: tuple[str | int, ...] = ("parameters",)


class WatchlistNotFound(SceneError):
    """No watchlist with that name."""


class WatchlistValueError(SceneError):
    """A watchlist entry value that is empty after normalisation."""
