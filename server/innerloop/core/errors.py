"""Error types shared by every layer.

Two splits, as in h11 and telepresence's errcat:
- protocol errors: ours (LocalProtocolError) vs the peer's (RemoteProtocolError);
- user-facing errors by category: only UNKNOWN asks the user to look at the log, the others are
  one line that says what to do.
"""

from __future__ import annotations

import enum


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

    def __init__(self, message: str, category: Category | None = None) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category

    def user_line(self) -> str:
        msg = str(self)
        if self.category is Category.UNKNOWN:
            return f"{msg} (see the log for details)"
        return msg


class UserError(InnerloopError):
    category = Category.USER


class ConfigError(InnerloopError):
    category = Category.CONFIG


class ClusterError(InnerloopError):
    category = Category.CLUSTER
