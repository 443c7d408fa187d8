"""DAP messages for the unit tests of innerloop.core.dap_*: short builders, framed by hand."""

from __future__ import annotations

import json
from typing import Any

from innerloop.core.dap_wire import Message


def frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def req(seq: int, command: str, **arguments: Any) -> Message:
    return {"type": "request", "seq": seq, "command": command, "arguments": arguments}


def resp(request_seq: int, command: str, success: bool = True, **body: Any) -> Message:
    msg: Message = {
        "type": "response",
        "seq": 99,
        "request_seq": request_seq,
        "command": command,
        "success": success,
    }
    if body:
        msg["body"] = body
    return msg


def ev(name: str, **body: Any) -> Message:
    return {"type": "event", "seq": 7, "event": name, "body": body}
