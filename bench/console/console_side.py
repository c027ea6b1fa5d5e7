#!/usr/bin/env python3
"""
The console's side of the console benchmark, in a process of its own on
its own X display (C{DISPLAY}):

    console_side.py --record-directory DIR [--one-to-one]

It is the real console's session window (L{console.session_window.SessionWindow},
Tk on the main thread, the reactor in its thread, one L{wire.tkbridge.Bridge})
and the real console session core (L{console.session.ConsoleSession}) with the
console's recording tap (L{console.session_tap.SessionTap}, recording on, so a
L{console.recording.Recorder} writes the same frame stream).  The session
protocol runs on a plain TCP connection from the agent side
(C{bench/console/agent.py}) on 127.0.0.1: a L{wire.e2e.SessionChannel} without
the end-to-end TLS and the gateway, made ready at connection and verified at
once (no code confirmation).  From there on everything is the console's own
path: the agent's C{GrantsChanged} reaches the window, which asks for the
monitors and watches the first (credit 2); C{FrameUpdate}s are put together
by the session core, go through the tap (recorder) to the window's decoding
thread, the Tk thread pastes the changed region into the canvas's
PhotoImage, and each frame drawn gives one credit back (C{frame_shown} →
C{RequestFrames}).

The window fills the display (no window manager: placed at +0+0), scaled
to fit (the window's default) or 1:1 with C{--one-to-one}.

Instrumentation only (nothing of the console is changed): the canvas's
C{show}, the tap's C{frame_received} and the recorder's C{frame} are wrapped
to note times, and CPU time is read per thread from C{/proc}.

It prints C{port N} once listening, C{first} once the canvas drew its first
picture, then answers lines on its standard input:

  - C{where}: C{where X Y SCALE} — the screen pixel (root coordinates of its
    display) where the canvas shows the latency marker's centre;
  - C{mark NAME}: notes the CPU times and recording bytes now, under NAME;
  - C{report}: one line of JSON with everything noted;
  - C{quit}: closes the recording and the session and exits.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import tkinter as tk
from tkinter import ttk

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory  # noqa: E402

from bench.screen import marker  # noqa: E402
from console.recording import RecordingSettings, encode_keyframe  # noqa: E402
from console.session import ConsoleSession  # noqa: E402
from console.session_tap import SessionTap  # noqa: E402
from console.session_window import SessionWindow  # noqa: E402
from wire.e2e import SessionChannel  # noqa: E402
from wire.tkbridge import Bridge  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")
_print_lock = threading.Lock()


def say(*words) -> None:
    with _print_lock:
        print(*words, flush=True)


def thread_cpu(tid: int) -> float:
    """CPU seconds (user + system) of one thread of this process."""
    try:
        with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu() -> float:
    with open("/proc/self/stat", encoding="ascii") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class PlainChannel(SessionChannel):
    """The session channel on plain TCP: ready (and the code taken as confirmed) at connection."""

    def connectionMade(self):
        super().connectionMade()
        self.transport.setTcpNoDelay(True)
        self.handshakeCompleted()  # no inner TLS here: the channel is ready at once
        self.core.verified_now()


class Bench:
    def __init__(self, options):
        self.options = options
        self.root = tk.Tk()
        self.root.withdraw()
        ttk.Style(self.root).theme_use("clam")  # as console.app.ConsoleApp
        self.bridge = Bridge(self.root, reactor)
        self.window = SessionWindow(self.root, self.bridge, "benchmark customer")
        width, height = self.root.winfo_screenwidth(), self.root.winfo_screenheight()
        self.window.geometry(f"{width}x{height}+0+0")
        if options.one_to_one:
            self.window.fitting.set(False)
            self.window.screen.set_fitting(False)
        self.tap = SessionTap(self.window.ui, reactor, ended=lambda session: None)
        self.session = ConsoleSession(reactor, self.tap, "BENCH-000", b"", b"", tempfile.gettempdir(),
                                      report_failure=lambda: None)
        self.tap.session = self.session
        self.window.attach(self.session)
        self.channel = None
        # What is noted (lists appended from one thread each).
        self.received = []  # (time, tiles, tile bytes) per frame the session core completed (reactor thread)
        self.drawn = []  # (time, pixels pasted, frames) per PhotoImage update (Tk thread)
        self.counted = []  # (time, frames) per update that only counted frames (out of date or empty)
        self.recorder_cpu = [0.0]  # thread CPU seconds in Recorder.frame (reactor thread)
        # For the latency's stages: (time, marker code) each time the code changed in the decoder's
        # full-size picture (decoder thread) and in a region pasted into the PhotoImage (Tk thread).
        self.decoded = []
        self.pasted = []
        # (time, PhotoImage updates since the last) per redisplay of the canvas after updates (Tk thread):
        # Tk draws the canvas when idle, so updates pasted in one turn of its loop are drawn once.
        self.redraws = []
        self.redrawn = []  # (time, marker code) each time a redisplay showed another code
        self._pending = 0  # updates pasted since the last redisplay
        self._pasted_code = None
        self.marks = {}
        self.first_drawn = False
        self.tids = {"tk": threading.get_native_id(), "decoder": self.window.screen.decoder._thread.native_id}
        self._wrap()

    # -- instrumentation ---------------------------------------------------------------------

    def _wrap(self) -> None:
        canvas = self.window.screen
        show = canvas.show

        def counted_show(update):
            pasted = update.generation == canvas.generation and update.image is not None
            show(update)
            now = time.monotonic()
            if pasted:
                w, h = update.image.size
                self.drawn.append((now, w * h, update.frames))
                mx, my = marker.centre(*update.source_size)
                sx, sy = update.scale
                x, y = int(mx * sx) - update.at[0], int(my * sy) - update.at[1]
                if 0 <= x < w and 0 <= y < h:
                    self._pasted_code = marker.code(update.image.getpixel((x, y)))
                    self._note(self.pasted, now, self._pasted_code)
                self._pending += 1
                if self._pending == 1:
                    # Idle callbacks run in order: this one right after the redisplay Tk has just scheduled.
                    canvas.after_idle(self._redisplayed)
                if not self.first_drawn and update.display_size == update.image.size:
                    self.first_drawn = True
                    say("first")
            elif update.frames:
                self.counted.append((now, update.frames))

        canvas.show = counted_show
        decoder = canvas.decoder
        deliver = decoder.deliver

        def noted_deliver(update):
            picture = decoder.canvas
            if picture is not None and update.frames:
                self._note(self.decoded, time.monotonic(), marker.code(picture.getpixel(marker.centre(*picture.size))))
            deliver(update)

        decoder.deliver = noted_deliver
        received = self.tap.frame_received

        def counted_received(frame):
            if "reactor" not in self.tids:
                self.tids["reactor"] = threading.get_native_id()
            received(frame)
            self.received.append((time.monotonic(), len(frame.tiles), sum(len(t.data) for t in frame.tiles)))

        self.tap.frame_received = counted_received

    @staticmethod
    def _note(changes: list, when: float, code) -> None:
        if code is not None and (not changes or changes[-1][1] != code):
            changes.append((when, code))

    def _redisplayed(self) -> None:
        now = time.monotonic()
        self.redraws.append((now, self._pending))
        self._pending = 0
        self._note(self.redrawn, now, self._pasted_code)

    def _start_recording(self) -> None:
        """Reactor thread: recording on, as the Record button does (SessionTap.start_recording)."""
        self.tap.start_recording(self.options.record_directory, "bench")
        recorder = self.tap.recorder
        frame = recorder.frame

        def timed_frame(*args, **kwargs):
            started = time.thread_time()
            try:
                return frame(*args, **kwargs)
            finally:
                self.recorder_cpu[0] += time.thread_time() - started

        recorder.frame = timed_frame

    # -- the connection ----------------------------------------------------------------------

    def listen(self) -> None:
        bench = self

        class ChannelFactory(Factory):
            def buildProtocol(self, addr):
                if bench.channel is not None:
                    return None  # one agent only
                bench._start_recording()
                bench.channel = PlainChannel(bench.session, bench.session.limits)
                return bench.channel

        port = reactor.listenTCP(0, ChannelFactory(), interface="127.0.0.1")
        say("port", port.getHost().port)

    # -- commands from the benchmark ---------------------------------------------------------

    def _on_tk(self, function):
        """Run C{function} on the Tk thread and return its result (from another thread)."""
        done, box = threading.Event(), []

        def call():
            try:
                box.append(function())
            except Exception as e:  # noqa: BLE001 - reported to the benchmark
                box.append(e)
            done.set()

        self.bridge.to_ui(call)
        if not done.wait(20):
            raise RuntimeError("the Tk thread did not answer")
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def where(self):
        """Tk thread: the marker's centre on the console's screen, and the scale shown."""
        canvas = self.window.screen
        shown = canvas.update_shown
        if shown is None:
            raise RuntimeError("nothing shown yet")
        mx, my = marker.centre(*shown.source_size)
        sx, sy = shown.scale
        c = canvas.canvas
        # Canvas coordinates of the shown pixel, then the widget's, then the screen's.
        x = canvas.origin[0] + int(mx * sx) - c.canvasx(0)
        y = canvas.origin[1] + int(my * sy) - c.canvasy(0)
        if not (0 <= x < c.winfo_width() and 0 <= y < c.winfo_height()):
            raise RuntimeError(f"the marker is outside the canvas's visible area ({x:.0f}, {y:.0f})")
        return int(c.winfo_rootx() + x), int(c.winfo_rooty() + y), sx, shown.display_size

    def mark(self, name: str) -> None:
        recorder = self.tap.recorder
        self.marks[name] = {
            "at": time.monotonic(),
            "process": process_cpu(),
            "threads": {name: thread_cpu(tid) for name, tid in self.tids.items()},
            "recorder_cpu": self.recorder_cpu[0],
            "recording_bytes": recorder.bytes_written if recorder is not None else 0,
            "generation": self.window.screen.generation,
        }

    def report(self) -> dict:
        recorder = self.tap.recorder
        # What a keyframe of the picture as it is now would take (the recorder's own encoding).
        picture = self.window.screen.decoder.canvas if self.window.screen.decoder is not None else None
        keyframe = len(encode_keyframe(picture.copy(), RecordingSettings().png_level)) if picture is not None else 0
        return {
            "received": self.received, "drawn": self.drawn, "decoded": self.decoded, "pasted": self.pasted,
            "redraws": self.redraws, "redrawn": self.redrawn, "counted": self.counted, "marks": self.marks,
            "recording": {"path": recorder.path if recorder else None,
                          "bytes": recorder.bytes_written if recorder else 0,
                          "frames": recorder.frames if recorder else 0,
                          "keyframes": recorder.keyframes if recorder else 0, "keyframe_now": keyframe},
            "problem": self.window.screen.problem,
        }

    def commands(self) -> None:
        """The standard input's thread."""
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                if words[0] == "where":
                    x, y, scale, size = self._on_tk(self.where)
                    say("where", x, y, f"{scale:.4f}", f"{size[0]}x{size[1]}")
                elif words[0] == "mark":
                    self.mark(words[1])
                    say("marked", words[1])
                elif words[0] == "report":
                    say("report", json.dumps(self.report()))
                elif words[0] == "quit":
                    break
                else:
                    say("error", f"unknown command {words[0]!r}")
            except Exception as e:  # noqa: BLE001 - reported to the benchmark
                say("error", f"{type(e).__name__}: {e}")
        self.bridge.to_ui(self.quit)

    def quit(self) -> None:
        """Tk thread: close the recording and the session, then leave Tk's loop."""
        reactor.callFromThread(self.tap.stop_recording)
        if self.channel is not None:
            reactor.callFromThread(self.channel.close)
        self.root.after(200, self.root.quit)

    def run(self) -> None:
        self.bridge.start()
        reactor.callFromThread(self.listen)
        threading.Thread(target=self.commands, name="commands", daemon=True).start()
        self.root.mainloop()
        self.bridge.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--record-directory", required=True, help="where the recording is written")
    parser.add_argument("--one-to-one", action="store_true", help="show the picture 1:1 instead of scaled to fit")
    options = parser.parse_args(argv)
    Bench(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
