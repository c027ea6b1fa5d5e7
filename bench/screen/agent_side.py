#!/usr/bin/env python3
"""
The Ponte agent's screen sharing for the benchmark, in a process of its own
(so that its CPU time is the agent's alone):

    agent_side.py PORT [--display :N] [--profile FILE]

It connects to 127.0.0.1:PORT (the benchmark's viewer) and speaks the
session protocol's screen commands over AMP (C{wire.session_commands}):
it answers C{RequestFrames} by sending frames of L{agent.screen.ScreenSource}
as C{FrameUpdate}s while it has credit, each followed by a C{CursorUpdate}
when the pointer changed — the same loop as the agent's session core
(C{agent.session.AgentSession._send_frames}, C{_send_frame},
C{_send_cursor}), without the grants, the end-to-end TLS and the gateway
relay around it.  It exits when the viewer closes the connection.

One difference: the agent's C{_send_frame} puts up to 64 tiles or 4 chunks
(240 KiB) of tile data into one C{FrameUpdate}, but the tiles travel as one
AMP value and AMP refuses values over 64 KiB (C{amp.TooLong}: "local value
b'tiles' too long"), which stops screen sharing at the first whole picture
of a real screen.  Here a batch is closed before its serialized tiles would
pass 64 KiB.

With C{--profile FILE} the capture thread runs under cProfile and its
statistics are written to FILE (and the reactor thread's to FILE.reactor).
The profiler counts each thread's CPU time (C{time.thread_time}), not the
wall clock: waiting for the X server, the GIL or the network costs nothing.
"""

import argparse
import cProfile
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from twisted.internet import defer, protocol, reactor  # noqa: E402
from twisted.protocols import amp  # noqa: E402

from agent import screen  # noqa: E402
from wire import session_commands as sc  # noqa: E402


class ScreenAgent(amp.AMP):
    """The screen part of the agent's session core, on a plain AMP connection."""

    def __init__(self, source: screen.ScreenSource, limits: sc.SessionLimits = sc.SessionLimits()):
        super().__init__()
        self.source = source
        self.limits = limits
        self._screen = None  # (monitor, credit) while sharing
        self._screen_running = False
        self._frame_number = 0
        self._cursor = None
        self._ended = False

    @sc.RequestFrames.responder
    def request_frames(self, monitor, credit):
        if monitor not in {m.index for m in self.source.monitors()}:
            raise sc.BadRequest(f"no monitor {monitor}")
        if not 0 < credit <= 64:
            raise sc.BadRequest("credit is 1 to 64 frames")
        current = self._screen[1] if self._screen is not None and self._screen[0] == monitor else 0
        self._screen = (monitor, min(current + credit, 64))
        if not self._screen_running:
            defer.ensureDeferred(self._send_frames())
        return {}

    async def _send_frames(self) -> None:
        self._screen_running = True
        try:
            while self._screen is not None and self._screen[1] > 0 and not self._ended:
                monitor, credit = self._screen
                frame = await self.source.next_frame(monitor)
                if frame is None or self._screen is None or self._ended:
                    break
                self._screen = (self._screen[0], self._screen[1] - 1)
                await self._send_frame(frame)
                self._send_cursor(monitor)
        except Exception as e:
            if not self._ended:
                print(f"agent side: screen sharing stopped: {e!r}", file=sys.stderr, flush=True)
                self.transport.loseConnection()
        finally:
            self._screen_running = False

    async def _send_frame(self, frame) -> None:
        self._frame_number += 1
        batch, size, sent = [], 0, []
        tiles = list(frame.tiles)
        for index, tile in enumerate(tiles):
            if len(tile.data) > self.limits.max_chunk:
                raise ValueError(f"a tile of {len(tile.data)} bytes is larger than a chunk")
            entry = {"x": tile.x, "y": tile.y, "width": tile.width, "height": tile.height,
                     "encoding": tile.encoding, "data": tile.data}
            # Unlike agent.session (see the module's docstring): an update's tiles are one
            # AMP value, which AMP limits to 64 KiB; close the batch before it would pass that.
            if batch and size + _listed_size(entry) > amp.MAX_VALUE_LENGTH:
                sent.append(self.callRemote(
                    sc.FrameUpdate, frame=self._frame_number, monitor=frame.monitor,
                    width=frame.width, height=frame.height, tiles=batch, last=False))
                batch, size = [], 0
            batch.append(entry)
            size += _listed_size(entry)
            last = index == len(tiles) - 1
            if last or len(batch) >= self.limits.max_tiles_per_update:
                sent.append(self.callRemote(
                    sc.FrameUpdate, frame=self._frame_number, monitor=frame.monitor,
                    width=frame.width, height=frame.height, tiles=batch, last=last))
                batch, size = [], 0
        if not tiles:
            sent.append(self.callRemote(
                sc.FrameUpdate, frame=self._frame_number, monitor=frame.monitor,
                width=frame.width, height=frame.height, tiles=[], last=True))
        await defer.gatherResults(sent, consumeErrors=True)

    def _send_cursor(self, monitor: int) -> None:
        cursor = self.source.cursor(monitor)
        if cursor == self._cursor or self._ended:
            return
        shape = {"shape": cursor.shape} if self._cursor is None or cursor.shape != self._cursor.shape else {}
        self._cursor = cursor
        self.callRemote(sc.CursorUpdate, x=cursor.x, y=cursor.y, visible=cursor.visible, **shape)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self._ended = True
        self._screen = None
        self.source.stop()
        self.source.ended().addBoth(lambda _: reactor.stop())


def _listed_size(entry: dict) -> int:
    """The bytes C{entry} takes in a serialized AmpList of tiles (keys, values, lengths, end)."""
    size = 2
    for key, value in entry.items():
        value = value if isinstance(value, bytes) else str(value).encode("utf-8")
        size += 2 + len(key) + 2 + len(value)
    return size


class Factory(protocol.ClientFactory):
    def __init__(self, source):
        self.source = source

    def buildProtocol(self, addr):
        return ScreenAgent(self.source)

    def clientConnectionFailed(self, connector, reason):
        print(f"agent side: cannot connect: {reason.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()


def profile_capture_thread(path: str) -> list:
    """
    Run every capture thread of L{agent.screen} under cProfile, statistics
    to C{path}; returns the list of the threads started, to be joined
    before the process exits (they are daemon threads).
    """
    run = screen._Capture.run
    threads = []

    def profiled(self):
        threads.append(self)
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        try:
            run(self)
        finally:
            profiler.disable()
            profiler.dump_stats(path)

    screen._Capture.run = profiled
    return threads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--display", default=os.environ.get("DISPLAY"))
    parser.add_argument("--profile", help="cProfile statistics of the capture thread to this file")
    options = parser.parse_args(argv)
    threads = profile_capture_thread(options.profile) if options.profile else []
    source = screen.ScreenSource(screen.ScreenSettings(), reactor, options.display)
    reactor.connectTCP("127.0.0.1", options.port, Factory(source))
    if options.profile:
        profiler = cProfile.Profile(time.thread_time)
        profiler.runcall(reactor.run)
        profiler.dump_stats(options.profile + ".reactor")
        for thread in threads:
            thread.join(10)
    else:
        reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
