"""pygls' protocol with a `$/cancelRequest` that reaches a running command.

pygls runs `workspace/executeCommand` as a generator whose request future is not the command's
task: cancelling the request answers at once and leaves the command running (an intercept start
would go on to take over the Service). Commands that can be undone register here instead
(features.progress); a cancel of their request cancels their work, and they answer once it has
been undone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId


class InnerloopProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cancel_hooks: dict[MsgId, Callable[[], None]] = {}

    def on_cancel_request(self, cancel: Callable[[], None]) -> Callable[[], None]:
        """Calls `cancel` when the client cancels the request being handled; returns the undo."""
        msg_id = self.msg_id
        if msg_id is None:
            return lambda: None
        self._cancel_hooks[msg_id] = cancel

        def forget() -> None:
            self._cancel_hooks.pop(msg_id, None)

        return forget

    def _handle_cancel_notification(self, msg_id: MsgId) -> None:
        hook = self._cancel_hooks.pop(msg_id, None)
        if hook is None:
            super()._handle_cancel_notification(msg_id)
        else:
            hook()
