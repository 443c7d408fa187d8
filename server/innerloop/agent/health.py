"""``GET /healthz`` → 200 for the sidecar's readiness probe, spoken with h11."""

from __future__ import annotations

import asyncio

import h11

READ_TIMEOUT = 10.0


async def serve_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while conn.our_state is not h11.MUST_CLOSE:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await asyncio.wait_for(reader.read(4096), READ_TIMEOUT))
            elif isinstance(event, h11.Request):
                ok = event.target == b"/healthz" and event.method == b"GET"
                _respond(writer, conn, 200 if ok else 404, b"ok\n" if ok else b"not found\n")
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


def _respond(writer: asyncio.StreamWriter, conn: h11.Connection, status: int, body: bytes) -> None:
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
