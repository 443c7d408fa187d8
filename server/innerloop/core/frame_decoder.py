"""Reads tunnel frames (`core.frames`) back from a byte stream, trusting nothing.

The decoder checks a frame's length against the maximum before it buffers anything, so a
hostile or confused peer costs at most one frame of memory, and every malformation ends in
``RemoteProtocolError``.
"""

from __future__ import annotations

from innerloop.core.errors import RemoteProtocolError
from innerloop.core.frames import (
    DATA_CODE,
    HEADER,
    INTS,
    MAX_PAYLOAD,
    SPECS_BY_CODE,
    STR_LEN,
    Data,
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

    Frames are parsed where the input lies: a frame whole in one chunk costs one copy, of its
    payload. Only a frame cut by the end of a chunk is kept (``_tail``) until its rest arrives.
    ``next_frame`` hands out one frame at a time, so frames before a malformed one are not lost
    with it.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._max_payload = max_payload
        self._tail = bytearray()  # the start of one frame whose rest has not arrived yet
        self._input = _EMPTY  # the chunk being parsed (after the tail)
        self._pos = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """More input. A writable buffer must stay as it is until ``next_frame`` returned
        None (what the decoder still needs is copied then), or until the next ``feed``."""
        view = memoryview(data)
        if self._pos < len(self._input):  # the reader stopped early (rare): join what is left
            view = memoryview(b"".join((self._tail, self._input[self._pos:], view)))
            self._tail = bytearray()
        self._input, self._pos = view, 0

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive."""
        if self._tail:
            return self._from_tail()
        view, pos = self._input, self._pos
        if len(view) - pos < HEADER.size:
            self._keep_rest()
            return None
        length, code, stream_id = HEADER.unpack_from(view, pos)
        spec = self._check(length, code, stream_id)
        start = pos + HEADER.size
        end = start + length
        if end > len(view):
            self._keep_rest()
            return None
        self._pos = end
        if code == DATA_CODE:  # the common frame: nothing to parse
            return Data(stream_id, bytes(view[start:end]))
        return decode_payload(spec, stream_id, bytes(view[start:end]))

    def _check(self, length: int, code: int, stream_id: int) -> FrameSpec:
        """A header's checks, before any of its payload is buffered."""
        spec = SPECS_BY_CODE.get(code)
        if spec is None:
            raise RemoteProtocolError(f"unknown frame type 0x{code:02x}")
        if length > self._max_payload:
            raise RemoteProtocolError(f"{spec.name} frame of {length} bytes exceeds "
                                      f"the maximum of {self._max_payload}")
        if spec.on_stream != (stream_id != 0):
            where = "needs a stream id" if spec.on_stream else "must use stream 0"
            raise RemoteProtocolError(f"{spec.name} frame {where}")
        return spec

    def _keep_rest(self) -> None:
        """The input ends inside a frame: keep that part (at most one frame) as the tail."""
        if self._pos < len(self._input):
            self._tail += self._input[self._pos:]
        self._input, self._pos = _EMPTY, 0

    def _take(self, size: int) -> bool:
        """Move up to ``size`` bytes of input to the tail; whether there were that many."""
        taken = self._input[self._pos:self._pos + size]
        self._tail += taken
        self._pos += len(taken)
        if len(taken) < size:  # all of the input is in the tail: let go of the caller's buffer
            self._input, self._pos = _EMPTY, 0
            return False
        return True

    def _from_tail(self) -> Frame | None:
        """The frame the tail starts, once the input completes it."""
        tail = self._tail
        if len(tail) < HEADER.size and not self._take(HEADER.size - len(tail)):
            return None
        length, code, stream_id = HEADER.unpack_from(tail)
        spec = self._check(length, code, stream_id)
        if not self._take(HEADER.size + length - len(tail)):
            return None
        with memoryview(tail) as view:
            payload = bytes(view[HEADER.size:])
        self._tail = bytearray()
        return decode_payload(spec, stream_id, payload)


_EMPTY = memoryview(b"")


def decode_all(data: bytes, max_payload: int = MAX_PAYLOAD) -> list[Frame]:
    """Every frame in ``data`` (for tests and tools; a trailing partial frame is dropped)."""
    decoder = FrameDecoder(max_payload)
    decoder.feed(data)
    frames: list[Frame] = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames
