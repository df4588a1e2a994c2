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
