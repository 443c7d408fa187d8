"""gRPC over HTTP/2 cleartext for pods that have no grpcio (the testbed's stock python image):
the wire format by hand over h2 from the innerloop agent's zipapp, mounted next to this file
(the agent bundles h2; nothing else is installed). Used by tests/e2e/test_grpc_intercepts.py.

    python3 grpc_pod.py                       serve /demo.Who/Unary and /demo.Who/Stream on 8080
                                              as pod=$POD_NAME (Stream answers N messages, 0.2 s
                                              apart: a server-streaming call)
    python3 grpc_pod.py call HOST PORT CALLS  make every call of the CALLS JSON list
                                              (``{"name", "path", "request", "metadata"}``) at
                                              once, as streams of one connection; print one
                                              JSON line: per call its messages, when each
                                              arrived (s), grpc-status, or the reset
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from typing import Any

for _where in ("/client/agent.pyz", "/pyz/agent.pyz", os.environ.get("AGENT_PYZ", "")):
    if _where and os.path.exists(_where):
        sys.path.insert(0, _where)
        break

import h2.config  # from the zipapp put on the path above
import h2.connection
import h2.events

WHO = os.environ.get("POD_NAME", "pod")
GAP = 0.2


def framed(payload: bytes) -> bytes:
    """One gRPC message: not compressed, its length, the bytes."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def unframed(buffer: bytearray) -> list[bytes]:
    """The whole messages at the start of ``buffer`` (taken out of it)."""
    out = []
    while len(buffer) >= 5 and len(buffer) >= 5 + int.from_bytes(buffer[1:5], "big"):
        size = int.from_bytes(buffer[1:5], "big")
        out.append(bytes(buffer[5:5 + size]))
        del buffer[:5 + size]
    return out


def serve_connection(sock: socket.socket) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                header_encoding="utf-8"))
    lock = threading.Lock()

    def flush() -> None:
        with lock:  # sent in the order h2 wrote it: HPACK blocks depend on the ones before
            data = conn.data_to_send()
            if data:
                sock.sendall(data)

    def answer(stream_id: int, path: str, request: str) -> None:
        replies = ([f"{WHO} {request}"] if path.endswith("/Unary")
                   else [f"{WHO} {i}" for i in range(int(request))])
        with lock:
            conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        for i, reply in enumerate(replies):
            if i:
                time.sleep(GAP)
            with lock:
                conn.send_data(stream_id, framed(reply.encode()))
            flush()
        with lock:
            conn.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        flush()

    with lock:
        conn.initiate_connection()
    flush()
    paths: dict[int, str] = {}
    bodies: dict[int, bytearray] = {}
    try:
        while data := sock.recv(65536):
            with lock:
                events = conn.receive_data(data)
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    paths[event.stream_id] = dict(event.headers)[":path"]
                    bodies[event.stream_id] = bytearray()
                elif isinstance(event, h2.events.DataReceived):
                    bodies[event.stream_id] += event.data
                    with lock:
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    [request] = unframed(bodies.pop(event.stream_id))
                    threading.Thread(target=answer, daemon=True, args=(
                        event.stream_id, paths.pop(event.stream_id), request.decode())).start()
            flush()
    except OSError:
        pass
    finally:
        sock.close()


def serve(port: int) -> None:
    listener = socket.create_server(("0.0.0.0", port))
    print(f"grpc listening on {port}", flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(sock,), daemon=True).start()


def call(host: str, port: int, calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    sock = socket.create_connection((host, port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    names: dict[int, str] = {}
    results: dict[str, dict[str, Any]] = {}
    buffers: dict[int, bytearray] = {}
    start = time.monotonic()
    for c in calls:
        stream_id = conn.get_next_available_stream_id()
        metadata = dict(c.get("metadata") or {})
        conn.send_headers(stream_id, [
            (":method", "POST"), (":scheme", "http"), (":authority", host),
            (":path", str(c["path"])), ("content-type", "application/grpc"), ("te", "trailers"),
            *metadata.items()])
        conn.send_data(stream_id, framed(str(c["request"]).encode()), end_stream=True)
        names[stream_id] = str(c["name"])
        results[str(c["name"])] = {"messages": [], "at": [], "status": None}
        buffers[stream_id] = bytearray()
    sock.sendall(conn.data_to_send())
    pending = set(names)
    while pending:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            result = results.get(names.get(getattr(event, "stream_id", 0), ""), {})
            if isinstance(event, h2.events.DataReceived):
                buffers[event.stream_id] += event.data
                for message in unframed(buffers[event.stream_id]):
                    result["messages"].append(message.decode())
                    result["at"].append(round(time.monotonic() - start, 3))
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                result["status"] = dict(event.headers).get("grpc-status")
            elif isinstance(event, h2.events.StreamEnded):
                pending.discard(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                result["reset"] = int(event.error_code)
                pending.discard(event.stream_id)
        sock.sendall(conn.data_to_send())
    sock.close()
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "call":
        print(json.dumps(call(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))))
    else:
        serve(int(os.environ.get("PORT", "8080")))
