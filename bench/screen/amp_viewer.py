"""
The console's side of the screen for the benchmark, blocking and in the
benchmark's process: it accepts the agent side's connection, gives frame
credit as the console does (C{RequestFrames} of 2, then 1 more after each
frame is decoded), answers C{FrameUpdate}s, puts each frame's tiles
together and decodes them onto a canvas with C{wire.tiles.decode}.

AMP boxes are read and written by hand (a box is key/value pairs, each
prefixed by a 16-bit length, ended by an empty key); the arguments are
parsed and made by the session protocol's own command classes.
"""

import select
import socket
import struct
import time

from twisted.protocols import amp

from wire import session_commands as sc
from wire import tiles as wt
from wire.screen import Frame, Tile


class ViewerError(Exception):
    """The agent side sent an error or something unexpected."""


class Received:
    """One frame as the viewer got it."""

    __slots__ = ("done", "size", "tiles", "tile_bytes", "encodings", "marker", "pixels")

    def __init__(self):
        self.done = 0.0  # time.monotonic() once decoded
        self.size = 0  # bytes of its FrameUpdate boxes on the wire
        self.tiles = 0
        self.tile_bytes = 0  # bytes of tile data
        self.encodings: dict[str, int] = {}  # encoding -> tile data bytes
        self.marker = None
        self.pixels = 0  # pixels its tiles cover


class AmpViewer:
    """Listens on 127.0.0.1 for the agent side; L{accept} waits for it."""

    def __init__(self, marker: tuple[int, int] | None):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.marker = marker
        self.sock = None
        self.buffer = bytearray()
        self.received = 0  # bytes read from the socket so far
        self.cursor_bytes = 0  # bytes of CursorUpdate boxes
        self.cursor_updates = 0
        self.other_bytes = 0  # answers to RequestFrames
        self.canvas = None
        self._tag = 0
        self._parts: dict[int, list] = {}
        self._sizes: dict[int, int] = {}

    def accept(self, timeout: float) -> None:
        self.listener.settimeout(timeout)
        self.sock, _ = self.listener.accept()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.listener.close()

    def close(self) -> None:
        for s in (self.sock, self.listener):
            if s is not None:
                s.close()

    def _send(self, command, **arguments) -> None:
        self._tag += 1
        box = command.makeArguments(arguments, None)
        box[b"_command"] = command.commandName
        box[b"_ask"] = str(self._tag).encode()
        self.sock.sendall(box.serialize())

    def credit(self, n: int, monitor: int = 0) -> None:
        self._send(sc.RequestFrames, monitor=monitor, credit=n)

    def _boxes(self):
        """The whole boxes in the buffer, with their sizes on the wire; the rest stays."""
        out, i, data = [], 0, self.buffer
        while True:
            start, box = i, {}
            while True:
                if i + 2 > len(data):
                    del data[:start]
                    return out
                (n,) = struct.unpack_from("!H", data, i)
                if n == 0:
                    i += 2
                    break
                if i + 2 + n + 2 > len(data):
                    del data[:start]
                    return out
                key = bytes(data[i + 2 : i + 2 + n])
                i += 2 + n
                (m,) = struct.unpack_from("!H", data, i)
                if i + 2 + m > len(data):
                    del data[:start]
                    return out
                box[key] = bytes(data[i + 2 : i + 2 + m])
                i += 2 + m
            out.append((box, i - start))

    def next_frame(self, deadline: float) -> Received | None:
        """Read until a frame is complete and decoded (returned) or C{deadline} passes (C{None})."""
        while True:
            for box, size in self._boxes_pending():
                frame = self._handle(box, size)
                if frame is not None:
                    return frame
            ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ViewerError("the agent side closed the connection")
            self.received += len(chunk)
            self.buffer += chunk

    def _boxes_pending(self):
        pending = getattr(self, "_pending", None)
        if not pending:
            pending = self._pending = self._boxes()
        while pending:
            yield pending.pop(0)

    def _handle(self, box: dict, size: int) -> Received | None:
        command = box.get(b"_command")
        if command is None:
            if b"_error" in box:
                raise ViewerError(f"the agent side answered with an error: {box!r}")
            self.other_bytes += size
            return None
        if command == sc.CursorUpdate.commandName:
            self.cursor_bytes += size
            self.cursor_updates += 1
            return None
        if command != sc.FrameUpdate.commandName:
            raise ViewerError(f"unexpected command {command!r}")
        arguments = sc.FrameUpdate.parseArguments(box, None)
        answer = amp.AmpBox(_answer=box[b"_ask"])
        self.sock.sendall(answer.serialize())
        number = arguments["frame"]
        self._parts.setdefault(number, []).extend(Tile(**t) for t in arguments["tiles"])
        self._sizes[number] = self._sizes.get(number, 0) + size
        if not arguments["last"]:
            return None
        tiles = tuple(self._parts.pop(number))
        frame = Frame(arguments["monitor"], arguments["width"], arguments["height"], tiles)
        self.canvas = wt.decode(frame, self.canvas)
        out = Received()
        out.done = time.monotonic()
        out.size = self._sizes.pop(number)
        out.tiles = len(tiles)
        for t in tiles:
            out.tile_bytes += len(t.data)
            out.encodings[t.encoding] = out.encodings.get(t.encoding, 0) + len(t.data)
            out.pixels += t.width * t.height
        if self.marker is not None and tiles:
            out.marker = self.canvas.getpixel(self.marker)
        return out
