"""Error types shared by every layer.

Two splits, as in h11 and telepresence's errcat:
- protocol errors: ours (LocalProtocolError) vs the peer's (RemoteProtocolError);
- user-facing errors by category: only UNKNOWN asks the user to look at the log, the others are
  one line that says what to do.
"""

from __future__ import annotations

import enum

from innerloop.core.advice import Advice, Surface, with_advice


class ProtocolError(Exception):
    """A violation of the tunnel protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class Category(enum.Enum):
    USER = "user"  # bad input: fix the command line or launch config
    CONFIG = "config"  # kubeconfig, settings, environment
    CLUSTER = "cluster"  # the cluster refused or is unreachable
    UNKNOWN = "unknown"  # a bug: see the log


class InnerloopError(Exception):
    """An error with one actionable sentence for the user."""

    category: Category = Category.UNKNOWN

    def __init__(
        self, message: str, category: Category | None = None, advice: Advice | None = None
    ) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category
        self.advice = advice
        """What to do, rendered for the surface that shows the error (core.advice)."""

    def __str__(self) -> str:
        return self.line(Surface.CLI)

    def line(self, surface: Surface) -> str:
        """The fact and what to do about it, as `surface` lets the user do it."""
        return with_advice(str(self.args[0]) if self.args else "", self.advice, surface)

    def user_line(self, surface: Surface = Surface.CLI) -> str:
        msg = self.line(surface)
        if self.category is Category.UNKNOWN:
            return f"{msg} (see the log for details)"
        return msg


class UserError(InnerloopError):
    category = Category.USER


class ConfigError(InnerloopError):
    category = Category.CONFIG


class ClusterError(InnerloopError):
    category = Category.CLUSTER


def is_expected(exc: BaseException) -> bool:
    """An error the user can fix from its one line: log that line, never a traceback."""
    return isinstance(exc, InnerloopError) and exc.category is not Category.UNKNOWN
