"""The intercept manager shared by the CLI, the language server and the debug adapter."""

from innerloop.session.controller import SessionController, controller_factory
from innerloop.session.manager import SessionConfig, SessionManager

__all__ = ["SessionConfig", "SessionController", "SessionManager", "controller_factory"]
