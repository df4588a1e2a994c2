"""The one root exception of the `twin` package and the subclasses callers catch."""

from __future__ import annotations


class TwinError(Exception):
    """Root of every error raised by `twin`. ``str(err)`` is one line, fit for a terminal."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def one_line(self) -> str:
        """The message plus its hint, on one line."""
        text = " ".join(str(self).split())
        return f"{text} (hint: {self.hint})" if self.hint else text


class InputError(TwinError):
    """A source file, layer or field cannot be used; names the file, layer, field, row."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        layer: str | None = None,
        field: str | None = None,
        row: int | None = None,
        hint: str = "",
    ) -> None:
        where = [
            f"{label} {value!s}"
            for label, value in (("file", file), ("layer", layer), ("field", field), ("row", row))
            if value is not None
        ]
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        self.file, self.layer, self.field, self.row = file, layer, field, row


class ConfigError(InputError):
    """`twin.yaml` is missing, malformed or has an unknown key."""


class WorkspaceError(TwinError):
    """A workspace folder is missing, incomplete or from an incompatible version."""


class NotFoundError(TwinError):
    """An element, camera or other named thing does not exist."""
