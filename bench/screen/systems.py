"""
The screen sharers under test, each driven the same way on one workload:
start it on the display, read what it sends as a viewer would, as fast as
the viewer's flow control lets it, and measure a window of the run.

  - C{ponte}: the agent side (C{agent_side.py}, its own process:
    C{agent.screen.ScreenSource} and the session protocol's screen
    commands over AMP) and the console side in this process
    (L{bench.screen.amp_viewer}: credit 2, one more per decoded frame).
  - C{zrle}, C{tight}: x11vnc on the same display and a minimal RFB
    client in this process (L{bench.screen.rfb}), one outstanding
    incremental update request at a time.
"""

import os
import socket
import subprocess
import sys
import time

import attrs

from bench.relay import procstat
from bench.screen import marker, rfb
from bench.screen.amp_viewer import AmpViewer

HERE = os.path.dirname(os.path.abspath(__file__))
PONTE, ZRLE, TIGHT = "ponte", "zrle", "tight"
SYSTEMS = (PONTE, ZRLE, TIGHT)
LABELS = {PONTE: "ponte", ZRLE: "x11vnc ZRLE", TIGHT: "x11vnc Tight"}
X11VNC = "/usr/bin/x11vnc"
START_TIMEOUT = 30.0
SEEN_GRACE = 0.5  # seconds after the window in which the marker is still watched


@attrs.define
class Item:
    """One frame (Ponte) or framebuffer update (RFB) read by the viewer."""

    done: float  # time.monotonic() once read (and, for Ponte, decoded)
    size: int  # bytes on the wire
    marker: tuple | None  # the marker's colour when the item painted it
    pixels: int = 0  # pixels painted
    encodings: dict = attrs.Factory(dict)  # Ponte only: tile data bytes per encoding


@attrs.define
class Measured:
    """What one run of one system on one workload measured, over its window."""

    system: str
    seconds: float = 0.0  # length of the window
    items: list = attrs.Factory(list)  # Items completed in the window (with pixels painted)
    empty: int = 0  # items in the window that painted nothing (RFB: updates of the cursor alone)
    wire_bytes: int = 0  # bytes received from the sharer in the window
    frame_bytes: int = 0  # bytes of the items in the window (Ponte: FrameUpdate boxes; RFB: updates)
    cursor_bytes: int = 0  # Ponte: CursorUpdate boxes; RFB: updates of the cursor alone (in the window)
    cpu: float = 0.0  # CPU seconds of the sharer's process (agent side or x11vnc)
    xvfb_cpu: float = 0.0  # CPU seconds of the X server
    viewer_cpu: float = 0.0  # CPU seconds of this process (the viewer)
    seen: list = attrs.Factory(list)  # (marker code, time) each time the viewer saw the marker change
    window: tuple = (0.0, 0.0)  # (start, end) in time.monotonic()
    first_frame: float = 0.0  # seconds from the sharer's start to the first whole picture
    note: str = ""


class _Meter:
    def __init__(self, pids: dict):
        self.pids = pids

    def read(self) -> dict:
        out = {name: procstat.cpu_seconds(pid) for name, pid in self.pids.items()}
        out["viewer"] = procstat.cpu_seconds(os.getpid())
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _measure(system, source, meter: _Meter, warmup: float, seconds: float, started: float) -> Measured:
    """
    Read C{source} (C{next(deadline)} -> Item or None, C{received}, C{cursor}):
    the first item is the whole picture; the window starts C{warmup}
    seconds after it and lasts C{seconds}.
    """
    out = Measured(system)
    deadline = time.monotonic() + START_TIMEOUT
    first = None
    while first is None or not first.pixels:  # (x11vnc may send the cursor's shape first)
        first = source.next(deadline)
        if first is None:
            raise RuntimeError(f"{LABELS[system]}: no first picture within {START_TIMEOUT:.0f} s")
    out.first_frame = first.done - started
    begin = first.done + warmup
    end = begin + seconds
    last_code = marker.code(first.marker) if first.marker is not None else None
    while time.monotonic() < begin:
        item = source.next(begin)
        if item is not None and item.marker is not None:
            last_code = marker.code(item.marker)
    before, bytes_before, cursor_before = meter.read(), source.received, source.cursor
    window_start = time.monotonic()
    while True:
        item = source.next(end)
        if item is None:
            break
        if item.pixels:
            out.items.append(item)
        else:
            out.empty += 1
        out.frame_bytes += item.size
        if item.marker is not None:
            code = marker.code(item.marker)
            if code != last_code:
                out.seen.append((code, item.done))
                last_code = code
    window_end = time.monotonic()
    after = meter.read()
    out.wire_bytes = source.received - bytes_before
    out.cursor_bytes = source.cursor - cursor_before
    # A little longer, only to see the steps drawn in the window arrive (not counted otherwise).
    while True:
        item = source.next(window_end + SEEN_GRACE)
        if item is None:
            break
        if item.marker is not None:
            code = marker.code(item.marker)
            if code != last_code:
                out.seen.append((code, item.done))
                last_code = code
    out.seconds = window_end - window_start
    out.window = (window_start, window_end)
    out.cpu = after["sharer"] - before["sharer"]
    out.xvfb_cpu = after["xvfb"] - before["xvfb"]
    out.viewer_cpu = after["viewer"] - before["viewer"]
    return out


class _PonteSource:
    def __init__(self, viewer: AmpViewer):
        self.viewer = viewer

    @property
    def received(self):
        return self.viewer.received

    @property
    def cursor(self):
        return self.viewer.cursor_bytes

    def next(self, deadline):
        frame = self.viewer.next_frame(deadline)
        if frame is None:
            return None
        self.viewer.credit(1)  # the console's frame_shown
        return Item(frame.done, frame.size, frame.marker, frame.pixels, frame.encodings)


class _RfbSource:
    def __init__(self, client: rfb.RFBClient):
        self.client = client
        self.cursor = 0

    @property
    def received(self):
        return self.client.received

    def next(self, deadline):
        update = self.client.next_update(deadline)
        if update is None:
            return None
        self.client.request(incremental=True)
        if update.cursor and update.pixels <= 1:
            # The cursor's shape or place, with at most a 1x1 rectangle (libvncserver adds one
            # to such updates): counted as cursor bytes, as Ponte's CursorUpdates are.
            self.cursor += update.size
            return Item(update.done, 0, update.marker, 0)
        return Item(update.done, update.size, update.marker, update.pixels)


def run_ponte(display: str, xvfb_pid: int, size, warmup: float, seconds: float, log, profile=None) -> Measured:
    """The agent side and the console side on C{display}."""
    viewer = AmpViewer(marker.centre(*size))
    command = [sys.executable, os.path.join(HERE, "agent_side.py"), str(viewer.port), "--display", display]
    if profile:
        command += ["--profile", profile]
    started = time.monotonic()
    agent = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ, "DISPLAY": display})
    try:
        viewer.accept(START_TIMEOUT)
        viewer.credit(2)  # the console's watch()
        meter = _Meter({"sharer": agent.pid, "xvfb": xvfb_pid})
        return _measure(PONTE, _PonteSource(viewer), meter, warmup, seconds, started)
    finally:
        viewer.close()  # the agent side exits when its connection ends
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def x11vnc_command(display: str, port: int) -> list[str]:
    """x11vnc with its defaults, but: no password, local only, no client-side cache, no rc file."""
    return [X11VNC, "-display", display, "-rfbport", str(port), "-localhost", "-nopw", "-forever", "-shared",
            "-nonc", "-norc", "-noipv6"]


def run_x11vnc(system: str, display: str, xvfb_pid: int, size, warmup: float, seconds: float, log,
               tight_quality: int, tight_compression: int) -> Measured:
    """x11vnc on C{display} and the RFB client with ZRLE or Tight."""
    port = _free_port()
    started = time.monotonic()
    server = subprocess.Popen(x11vnc_command(display, port), stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError(f"x11vnc exited before listening (status {server.wait()})")
            if line.startswith("PORT="):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("x11vnc did not start listening")
        cursor = list(rfb.CURSOR_PSEUDO)
        pseudo = [rfb.LAST_RECT, rfb.DESKTOP_SIZE]
        if system == ZRLE:
            encodings = [rfb.ZRLE, rfb.COPYRECT, *cursor, *pseudo]
        else:
            encodings = [rfb.TIGHT, rfb.COPYRECT, *cursor, *pseudo,
                         rfb.tight_quality(tight_quality), rfb.tight_compression(tight_compression)]
        client = rfb.RFBClient(port, encodings, marker.centre(*size))
        try:
            if (client.width, client.height) != tuple(size):
                raise RuntimeError(f"x11vnc serves {client.width}×{client.height}, not {size[0]}×{size[1]}")
            client.request(incremental=False)
            meter = _Meter({"sharer": server.pid, "xvfb": xvfb_pid})
            return _measure(system, _RfbSource(client), meter, warmup, seconds, started)
        finally:
            client.close()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def x11vnc_version() -> str:
    try:
        out = subprocess.run([X11VNC, "-version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"
