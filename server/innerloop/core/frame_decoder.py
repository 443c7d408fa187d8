"""Reads tunnel frames (`core.frames`) back from a byte stream, trusting nothing.

The decoder checks a frame's length against the maximum before it buffers anything, so a
hostile or confused peer costs at most one frame of memory, and every malformation ends in
``RemoteProtocolError``.
"""

from __future__ import annotations

from innerloop.core.errors import RemoteProtocolError
from innerloop.core.frames import (
    HEADER,
    INTS,
    MAX_PAYLOAD,
    SPECS_BY_CODE,
    STR_LEN,
    Frame,
    FrameSpec,
)


def decode_payload(spec: FrameSpec, stream_id: int, payload: bytes) -> Frame:
    name = spec.name
    values: list[object] = [stream_id] if spec.on_stream else []
    pos = 0
    for kind in spec.layout:
        if kind == "b":
            values.append(payload[pos:] if pos else payload)
            pos = len(payload)
        elif kind == "s":
            if pos + 2 > len(payload):
                raise RemoteProtocolError(f"{name} frame truncated")
            (size,) = STR_LEN.unpack_from(payload, pos)
            raw = payload[pos + 2:pos + 2 + size]
            if len(raw) != size:
                raise RemoteProtocolError(f"{name} frame truncated")
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise RemoteProtocolError(f"{name} frame has a string that is not UTF-8") from None
            pos += 2 + size
        else:
            codec = INTS[kind]
            if pos + codec.size > len(payload):
                raise RemoteProtocolError(f"{name} frame truncated")
            values.append(codec.unpack_from(payload, pos)[0])
            pos += codec.size
    if pos != len(payload):
        raise RemoteProtocolError(f"{name} frame has {len(payload) - pos} trailing bytes")
    try:
        return spec.make(*values)
    except ValueError as exc:  # an enum field out of range
        raise RemoteProtocolError(f"{name} frame: {exc}") from None


class FrameDecoder:
    """Turns a byte stream into frames, however the stream is chunked.

    ``next_frame`` hands out one frame at a time, so frames before a malformed one are not lost
    with it.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._max_payload = max_payload
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive."""
        available = len(self._buffer) - self._pos
        if available < HEADER.size:
            self._compact()
            return None
        length, code, stream_id = HEADER.unpack_from(self._buffer, self._pos)
        spec = SPECS_BY_CODE.get(code)
        if spec is None:
            raise RemoteProtocolError(f"unknown frame type 0x{code:02x}")
        if length > self._max_payload:
            raise RemoteProtocolError(f"{spec.name} frame of {length} bytes exceeds "
                                      f"the maximum of {self._max_payload}")
        if spec.on_stream != (stream_id != 0):
            where = "needs a stream id" if spec.on_stream else "must use stream 0"
            raise RemoteProtocolError(f"{spec.name} frame {where}")
        if available < HEADER.size + length:
            self._compact()
            return None
        start = self._pos + HEADER.size
        self._pos = start + length
        payload = bytes(memoryview(self._buffer)[start:self._pos])  # one copy, the view is freed
        return decode_payload(spec, stream_id, payload)

    def _compact(self) -> None:
        del self._buffer[:self._pos]
        self._pos = 0


def decode_all(data: bytes, max_payload: int = MAX_PAYLOAD) -> list[Frame]:
    """Every frame in ``data`` (for tests and tools; a trailing partial frame is dropped)."""
    decoder = FrameDecoder(max_payload)
    decoder.feed(data)
    frames: list[Frame] = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames
