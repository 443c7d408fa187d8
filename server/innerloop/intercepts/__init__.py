"""The intercept manager shared by the CLI, the language server and the debug adapter."""

from innerloop.intercepts.debug_controller import DebugInterceptController, controller_factory
from innerloop.intercepts.manager import InterceptManager, ManagerConfig

__all__ = ["DebugInterceptController", "InterceptManager", "ManagerConfig", "controller_factory"]
