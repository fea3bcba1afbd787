"""Errors of the dialplan engine, each pointing at the file and line it came from.

Introduced in notebook 07. Configuration problems carry ``file:line`` like a compiler's, so
``python -m labkit.dialplan check`` output can be clicked through in an editor.
"""
from __future__ import annotations


class DialplanError(Exception):
    """A problem in a dialplan: syntax, a bad reference, or a failure while running it.

    ``str(err)`` is ``"extensions.conf:12: message"`` when the location is known.
    """

    def __init__(self, message: str, filename: str | None = None, line: int | None = None):
        self.message = message
        self.filename = filename
        self.line = line
        super().__init__(self.__str__())

    @property
    def location(self) -> str | None:
        """``file:line`` (or just ``file``), or None when unknown."""
        if self.filename is None:
            return None
        return f"{self.filename}:{self.line}" if self.line is not None else self.filename

    def __str__(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message


class DialplanErrors(DialplanError):
    """Every error found while loading a dialplan (``load`` raises this; ``check`` lists them)."""

    def __init__(self, errors: list[DialplanError]):
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(
            (first.message if first else "dialplan has errors") + more,
            first.filename if first else None,
            first.line if first else None,
        )

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class PatternError(DialplanError):
    """An extension pattern that cannot be compiled (e.g. ``_1[23``)."""


class ExpressionError(DialplanError):
    """A ``$[...]`` expression or ``${...}`` reference that cannot be evaluated."""


class ApplicationError(DialplanError):
    """A dialplan application called with arguments it cannot use, or an unknown application."""


class DialplanLoopError(DialplanError):
    """The engine ran more steps than allowed: almost always a Goto loop without a way out."""
