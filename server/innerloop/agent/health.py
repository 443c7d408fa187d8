"""``GET /healthz`` → 200 for the sidecar's readiness probe, spoken with h11.

``GET /arrivals/<listen port>`` → how many caller connections that port has accepted, asked
only from the pod itself (the client, through a DIAL to 127.0.0.1): after a Service takeover, a
probe connection to the ClusterIP that raises it proves kube-proxy sends the Service here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import h11

READ_TIMEOUT = 10.0
ARRIVALS = b"/arrivals/"


async def serve_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       arrivals: Mapping[int, int] | None = None) -> None:
    local = str((writer.get_extra_info("peername") or ("",))[0]) in ("127.0.0.1", "::1")
    conn = h11.Connection(h11.SERVER)
    try:
        while conn.our_state is not h11.MUST_CLOSE:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await asyncio.wait_for(reader.read(4096), READ_TIMEOUT))
            elif isinstance(event, h11.Request):
                status, body = _answer(event, arrivals if local else None)
                _respond(writer, conn, status, body)
                await writer.drain()
            elif isinstance(event, h11.EndOfMessage) and conn.our_state is h11.DONE:
                conn.start_next_cycle()
            elif event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                break
    except h11.RemoteProtocolError:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            _respond(writer, conn, 400, b"bad request\n")
    except (asyncio.TimeoutError, OSError):
        pass
    finally:
        writer.close()


def _answer(request: h11.Request, arrivals: Mapping[int, int] | None) -> tuple[int, bytes]:
    if request.method == b"GET" and request.target == b"/healthz":
        return 200, b"ok\n"
    port = request.target[len(ARRIVALS):]
    if request.method == b"GET" and arrivals is not None and \
            request.target.startswith(ARRIVALS) and port.isdigit():
        return 200, b"%d\n" % arrivals.get(int(port), 0)
    return 404, b"not found\n"


def _respond(writer: asyncio.StreamWriter, conn: h11.Connection, status: int, body: bytes) -> None:
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
