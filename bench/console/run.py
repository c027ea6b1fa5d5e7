#!/usr/bin/env python3
"""
Console benchmark: the operator console's session window (the real
C{console.session_window.SessionWindow} and its C{console.screen_canvas})
showing the agent's screen on the screen benchmark's workloads, on private
Xvfb displays, everything on 127.0.0.1.  Frames per second the canvas
draws, the console's CPU, the latency from a change on the agent's display
to its appearance on the console's display, recording bytes per minute.
See README.md in this directory.
"""

import argparse
import contextlib
import inspect
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import attrs  # noqa: E402
import mss  # noqa: E402
import PIL  # noqa: E402

from bench.relay import procstat  # noqa: E402
from bench.relay.measure import percentile  # noqa: E402
from bench.screen import marker, workload  # noqa: E402
from bench.screen.report import DESCRIPTIONS, WORKLOADS  # noqa: E402
from bench.screen.run import Workload  # noqa: E402
from wire.tkbridge import Bridge  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZES = ((1920, 1080), (1280, 800))
FULL = dict(seconds=10.0, warmup=3.0)
QUICK = dict(seconds=4.0, warmup=2.0)
START_TIMEOUT = 60.0
SETTLE = 1.0  # seconds after the first whole picture before the marker's place is asked (the window settles)
GRACE = 0.5  # seconds after the window in which the marker is still watched (for the window's last steps)
POLL = 0.002  # seconds between two reads of the marker on the console's display
DISTURBED = 0.1  # share of a CPU used by other processes above which a run is flagged
# The marker's way on the console side: the decoder's full-size picture, a region pasted into the
# PhotoImage, the canvas redrawn by Tk (then the console's X server, read by the watcher).
STAGES = ("decoded", "pasted", "redrawn")
FIT, ONE_TO_ONE = "fit", "1:1"
# The console's bridge's pace while updates arrive (console.app uses the defaults).
BRIDGE_MS = inspect.signature(Bridge).parameters["busy_interval_ms"].default
VIEWS = (FIT, ONE_TO_ONE)
# The console's display in 1:1 mode: room round the picture for the window's own rows.
ONE_TO_ONE_MARGIN = (40, 240)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s windows instead of 10")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (default 10, --quick 4)")
    parser.add_argument("--warmup", type=float, help="seconds after the first picture before measuring "
                                                     "(default 3, --quick 2)")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                        help="screen sizes (default 1920x1080,1280x800)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"some of {','.join(WORKLOADS)}")
    parser.add_argument("--views", default=",".join(VIEWS),
                        help="fit: scaled to fit (the window's default) on a console display of the agent's size; "
                             "1:1: shown 1:1 on a console display larger than the agent's (default fit,1:1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (log, recordings)")
    options = parser.parse_args(argv)
    for name, default in (QUICK if options.quick else FULL).items():
        if getattr(options, name) is None:
            setattr(options, name, default)
    try:
        options.sizes = [tuple(int(v) for v in s.lower().split("x")) for s in options.sizes.split(",")]
    except ValueError:
        parser.error("--sizes: WIDTHxHEIGHT,...")
    options.workloads = options.workloads.split(",")
    options.views = options.views.split(",")
    if not set(options.workloads) <= set(WORKLOADS) or not set(options.views) <= set(VIEWS):
        parser.error("unknown workload or view")
    if options.seconds <= 0 or options.warmup < 0:
        parser.error("--seconds must be positive, --warmup not negative")
    return options


def git_commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        changed = git("status", "--porcelain", "--", "agent", "wire", "console")
        return commit + (" (with uncommitted changes in agent/, wire/ or console/)" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- the programs --------------------------------------------------------------------------


class ConsoleSide:
    """C{console_side.py} on the console's display: its lines come through a queue."""

    def __init__(self, display: str, record_directory: str, one_to_one: bool, log):
        command = [sys.executable, os.path.join(HERE, "console_side.py"), "--record-directory", record_directory]
        if one_to_one:
            command.append("--one-to-one")
        self.process = subprocess.Popen(command, env={**os.environ, "DISPLAY": display}, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=log, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, word: str, timeout: float = START_TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"the console side did not say {word!r} within {timeout:.0f} s") from None
            if line is None:
                raise RuntimeError(f"the console side exited (status {self.process.wait()}) before {word!r}")
            first, _, rest = line.partition(" ")
            if first == "error":
                raise RuntimeError(f"the console side: {rest}")
            if first == word:
                return rest.split(" ") if word != "report" else [rest]

    def ask(self, command: str, answer: str, timeout: float = 20.0) -> list[str]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.expect(answer, timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
            except OSError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Watcher:
    """
    Reads the marker's pixel on the console's display with mss every
    L{POLL} seconds (in a thread of this process) and notes each change
    of its code, with the time it was read.
    """

    def __init__(self, display: str, x: int, y: int):
        self.display, self.region = display, {"left": x, "top": y, "width": 1, "height": 1}
        self.seen: list[tuple[int, float]] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = None
        with mss.MSS(display=self.display) as grabber:
            while not self._stop.is_set():
                pixel = grabber.grab(self.region).pixel(0, 0)
                now = time.monotonic()
                self.reads += 1
                code = marker.code(pixel)
                if code != last:
                    self.seen.append((code, now))
                    last = code
                time.sleep(POLL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def uniform_around(display: str, x: int, y: int, radius: int = 2) -> bool:
    """Whether the pixels round (x, y) on C{display} are of one marker code (the marker is there)."""
    with mss.MSS(display=display) as grabber:
        shot = grabber.grab({"left": x - radius, "top": y - radius, "width": 2 * radius + 1, "height": 2 * radius + 1})
    codes = {marker.code(shot.pixel(i, j)) for i in range(shot.width) for j in range(shot.height)}
    return len(codes) == 1


# -- one run -------------------------------------------------------------------------------


@attrs.define
class Result:
    kind: str
    size: tuple
    view: str  # FIT or ONE_TO_ONE
    seconds: float  # the window's length
    received: int  # frames the session core completed in the window
    pasted: int  # updates pasted into the canvas's PhotoImage in the window
    redraws: int  # redisplays of the canvas (Tk, when idle) after pasted updates, in the window
    frames_shown: int  # frames the canvas credited back (drawn or only counted) in the window
    pixels: int  # pixels pasted into the PhotoImage in the window
    tile_bytes: int  # bytes of tile data received in the window
    cpu: float  # console process CPU seconds in the window
    threads: dict  # CPU seconds per console thread (tk, decoder, reactor) in the window
    recorder_cpu: float  # of the reactor thread's, in Recorder.frame
    console_x: float  # CPU seconds of the console's X server in the window
    agent_cpu: float  # CPU seconds of the agent side in the window
    watcher_cpu: float  # CPU seconds of this process (the marker's watcher) in the window
    other: float  # share of a CPU other processes used during the run
    recording_bytes: int  # bytes the recorder wrote in the window
    recording: dict  # the whole recording: path, bytes, frames, keyframes
    latencies: list  # seconds, for the steps drawn in the window that the console's display showed
    steps_drawn: int
    scale: float
    shown_size: str
    reads: int  # reads of the marker by the watcher in the window
    stages: dict  # stage -> latencies (seconds) of the steps in L{latencies}, in the same order
    stage_counts: dict  # stage -> steps drawn in the window that reached that stage
    notes: list = attrs.Factory(list)

    def per_second(self, n: float) -> float:
        return n / self.seconds

    def latency_ms(self, fraction: float):
        value = percentile(self.latencies, fraction)
        return None if value is None else 1000 * value


def _in(window, events):
    start, end = window
    return [e for e in events if start <= e[0] < end]


def run_one(options, kind, size, view, agent_x, console_x, directory, log) -> Result:
    """One workload at one size: the workload, the console side, the agent side; measure; stop them."""
    job = Workload(kind, agent_x.display, directory, log)
    recordings = os.path.join(directory, f"recordings-{kind}-{size[0]}x{size[1]}-{'fit' if view == FIT else '1to1'}")
    console = agent = watcher = None
    pids = {os.getpid(), agent_x.process.pid, console_x.process.pid, job.process.pid}
    others = procstat.OtherLoad(pids)
    started = time.monotonic()
    notes = []
    try:
        console = ConsoleSide(console_x.display, recordings, view == ONE_TO_ONE, log)
        pids.add(console.process.pid)
        port = int(console.expect("port")[0])
        agent = subprocess.Popen([sys.executable, os.path.join(HERE, "agent.py"), str(port),
                                  "--display", agent_x.display],
                                 env={**os.environ, "DISPLAY": agent_x.display}, stdout=log, stderr=log)
        pids.add(agent.pid)
        console.expect("first")
        first = time.monotonic()
        time.sleep(SETTLE)
        x, y, scale, shown = console.ask("where", "where")
        x, y, scale = int(x), int(y), float(scale)
        if not uniform_around(console_x.display, x, y):
            notes.append(f"the pixels round ({x}, {y}) on the console's display are not one marker colour")
        watcher = Watcher(console_x.display, x, y)
        time.sleep(max(0.0, first + options.warmup - time.monotonic()))

        def cpu():
            return {"console_x": procstat.cpu_seconds(console_x.process.pid),
                    "agent": procstat.cpu_seconds(agent.pid), "me": procstat.cpu_seconds(os.getpid()),
                    "reads": watcher.reads}

        before = cpu()
        console.ask("mark begin", "marked")
        time.sleep(options.seconds)
        console.ask("mark end", "marked")
        after = cpu()
        time.sleep(GRACE)
        watcher.stop()
        again = console.ask("where", "where")
        if [int(again[0]), int(again[1])] != [x, y]:
            notes.append(f"the marker moved on the console's display during the run: ({x}, {y}) → "
                         f"({again[0]}, {again[1]})")
        report = json.loads(console.ask("report", "report")[0])
    finally:
        if watcher is not None:
            watcher.stop()
        if console is not None:
            console.stop()  # closes the session: the agent side exits when its connection ends
        if agent is not None:
            try:
                agent.wait(10)
            except subprocess.TimeoutExpired:
                stop_process(agent)
        stamps = job.stop()
    other = others.seconds() / (time.monotonic() - started)
    begin, end = report["marks"]["begin"], report["marks"]["end"]
    window = (begin["at"], end["at"])
    seconds = window[1] - window[0]
    if end["generation"] != begin["generation"]:
        notes.append("the canvas redrew the whole picture during the window (its size changed)")
    if report["problem"]:
        notes.append(f"the canvas reported a problem: {report['problem']}")
    received = _in(window, report["received"])
    drawn = _in(window, report["drawn"])
    redraws = _in(window, report["redraws"])
    counted = _in(window, report["counted"])

    def latencies_to(seen):
        return {drawn_at: lat for drawn_at, lat in marker.match(stamps, seen) if window[0] <= drawn_at < window[1]}

    on_screen = latencies_to(watcher.seen)
    latencies = list(on_screen.values())
    stages, stage_counts = {}, {}
    for stage in STAGES:
        reached = latencies_to([(code, when) for when, code in report[stage]])
        stage_counts[stage] = len(reached)
        # The same steps as on the screen (a step overwritten before Tk drew it never got there).
        stages[stage] = [reached[drawn_at] for drawn_at in on_screen if drawn_at in reached]
    return Result(
        kind=kind, size=size, view=view, seconds=seconds,
        received=len(received), pasted=len(drawn), redraws=len(redraws),
        frames_shown=sum(f for _, _, f in drawn) + sum(f for _, f in counted),
        pixels=sum(p for _, p, _ in drawn), tile_bytes=sum(b for _, _, b in received),
        cpu=end["process"] - begin["process"],
        threads={name: end["threads"][name] - begin["threads"].get(name, 0.0) for name in end["threads"]},
        recorder_cpu=end["recorder_cpu"] - begin["recorder_cpu"],
        console_x=after["console_x"] - before["console_x"], agent_cpu=after["agent"] - before["agent"],
        watcher_cpu=after["me"] - before["me"], other=other,
        recording_bytes=end["recording_bytes"] - begin["recording_bytes"], recording=report["recording"],
        latencies=latencies, steps_drawn=sum(1 for _, t in stamps if window[0] <= t < window[1]),
        scale=scale, shown_size=shown, reads=after["reads"] - before["reads"], stages=stages,
        stage_counts=stage_counts, notes=notes,
    )


# -- the output ----------------------------------------------------------------------------


def _cell(fmt: str, value, width: int) -> str:
    return f"{'-' if value is None else fmt.format(value):>{width}}"


COLUMNS = (
    ("agent fps", 10, "{:.1f}", lambda r: r.per_second(r.received)),
    ("pasted/s", 9, "{:.1f}", lambda r: r.per_second(r.pasted)),
    ("canvas fps", 11, "{:.1f}", lambda r: r.per_second(r.redraws)),
    ("steps seen", 11, "{}", lambda r: f"{len(r.latencies)}/{r.steps_drawn}" if r.steps_drawn else None),
    ("CPU %", 7, "{:.1f}", lambda r: 100 * r.per_second(r.cpu)),
    ("Tk %", 6, "{:.1f}", lambda r: 100 * r.per_second(r.threads.get("tk", 0.0))),
    ("dec %", 7, "{:.1f}", lambda r: 100 * r.per_second(r.threads.get("decoder", 0.0))),
    ("net %", 7, "{:.1f}", lambda r: 100 * r.per_second(r.threads.get("reactor", 0.0))),
    ("rec %", 7, "{:.1f}", lambda r: 100 * r.per_second(r.recorder_cpu)),
    ("X %", 6, "{:.1f}", lambda r: 100 * r.per_second(r.console_x)),
    ("lat p50", 9, "{:.1f}", lambda r: r.latency_ms(0.5)),
    ("lat p99", 9, "{:.1f}", lambda r: r.latency_ms(0.99)),
    ("rec KB/min", 11, "{:.1f}", lambda r: 60 * r.per_second(r.recording_bytes) / 1e3),
)


def table(results: list, label=lambda r: r.kind) -> str:
    header = f"  {'':<22}" + "".join(f"{title:>{width}}" for title, width, _, _ in COLUMNS)
    lines = [header, "  " + "-" * (len(header) - 2)]
    for r in results:
        lines.append(f"  {label(r):<22}" + "".join(_cell(fmt, get(r), width) for _, width, fmt, get in COLUMNS))
    return "\n".join(lines)


def _ms(values, fraction) -> str:
    value = percentile(values, fraction)
    return "-" if value is None else f"{1000 * value:.1f}"


def block(r: Result) -> str:
    """The table of one workload at one size and view, and what goes with it."""
    w, h = r.size
    rate = workload.RATES[r.kind]
    pace = f"{rate:g} steps/s" if rate else "no steps"
    view = "scaled to fit" if r.view == FIT else "1:1"
    lines = [f"{r.kind} at {w}x{h}, {view}: {DESCRIPTIONS[r.kind]} ({pace}; window {r.seconds:.1f} s; "
             f"shown {r.shown_size}, scale {r.scale:.3f})", table([r], lambda r: "console")]
    fps, pasted, redraws = (r.per_second(n) for n in (r.received, r.pasted, r.redraws))
    lines.append(f"  canvas: {redraws:.1f} redraws/s of {pasted:.1f} PhotoImage updates/s for {fps:.1f} frames/s from "
                 f"the agent ({r.per_second(r.frames_shown):.1f} frames/s credited back); "
                 f"{r.per_second(r.pixels) / 1e6:.2f} Mpx/s pasted; "
                 f"tile data {r.per_second(r.tile_bytes) / 1e3:.1f} KB/s")
    per_frame = f"console CPU {1000 * r.cpu / r.received:.1f} ms per frame; " if r.received else ""
    lines.append(f"  {per_frame}agent side {100 * r.per_second(r.agent_cpu):.1f} % CPU; marker watcher (mss, the "
                 f"benchmark's process) {100 * r.per_second(r.watcher_cpu):.1f} % CPU, "
                 f"{r.per_second(r.reads):.0f} reads/s")
    if r.latencies:
        parts = [f"{what} {_ms(r.stages[stage], 0.5)} / {_ms(r.stages[stage], 0.99)}"
                 for stage, what in (("decoded", "decoded"), ("pasted", "pasted"), ("redrawn", "Tk redrew"))]
        lines.append(f"  latency p50 / p99 ms of the {len(r.latencies)} steps seen, from the step drawn on the "
                     f"agent's display to: " + ", ".join(parts) +
                     f", on the console's display {_ms(r.latencies, 0.5)} / {_ms(r.latencies, 0.99)}")
        lines.append("  steps of the window that reached each stage: " + ", ".join(
            f"{stage} {r.stage_counts[stage]}" for stage in STAGES) +
                     f", the console's display {len(r.latencies)} (of {r.steps_drawn} drawn)")
    rec = r.recording
    lines.append(f"  recording: {r.recording_bytes} B in the window → "
                 f"{60 * r.per_second(r.recording_bytes) / 1e3:.1f} "
                 f"KB/min (frames and pointer); whole file {rec['bytes'] / 1e3:.1f} KB ({rec['frames']} frames, "
                 f"{rec['keyframes']} keyframes, with the first whole picture); a keyframe of the picture now would be "
                 f"{rec['keyframe_now'] / 1e3:.1f} KB")
    if r.received and redraws < 0.9 * fps:
        lines.append(f"  note: the canvas was redrawn {redraws:.1f} times/s for {fps:.1f} frames/s from the agent")
    if r.other >= DISTURBED:
        lines.append(f"  [other processes used {100 * r.other:.0f} % of a CPU during the run]")
    lines += [f"  note: {n}" for n in r.notes]
    return "\n".join(lines)


def header(options, commit: str) -> str:
    views = {FIT: "fit = scaled to fit (the window's default), the window filling a console display of the "
                  "agent's size",
             ONE_TO_ONE: f"1:1 = shown 1:1, the window filling a console display {ONE_TO_ONE_MARGIN[0]} x "
                         f"{ONE_TO_ONE_MARGIN[1]} px larger than the agent's"}
    return "\n".join([
        "Ponte console benchmark",
        f"  commit: {commit}",
        f"  machine: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
        f"  Python {platform.python_version()}, Tk {_tk_version()}, Pillow {PIL.__version__}, mss {mss.__version__}",
        "  agent: bench/screen's agent side (agent.screen.ScreenSource, default ScreenSettings) on its own Xvfb",
        "  console: the real SessionWindow + ConsoleSession + SessionTap (recording on) on its own Xvfb, its own "
        "process; session protocol over plain TCP on 127.0.0.1 (no e2e TLS, no gateway)",
        *(f"  view {views[v]}" for v in options.views),
        f"  per run: {options.warmup:g} s after the first whole picture, then a window of {options.seconds:g} s; "
        f"marker read on the console's display every {1000 * POLL:g} ms",
    ])


def _tk_version() -> str:
    try:
        import tkinter

        return str(tkinter.TkVersion)
    except ImportError:
        return "missing"


def run(options) -> int:
    started = time.monotonic()
    from tests.xvfb import Xvfb  # needs Xvfb installed (make bench-console installs it)

    commit = git_commit()
    print(header(options, commit), flush=True)
    directory = tempfile.mkdtemp(prefix="ponte-bench-console-")
    results = []
    with contextlib.ExitStack() as stack:
        if options.keep:
            stack.callback(print, f"kept {directory}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
        log = stack.enter_context(open(os.path.join(directory, "log"), "w"))
        for size in options.sizes:
            agent_x = Xvfb(*size)
            stack.callback(agent_x.stop)
            for view in options.views:
                console_size = (size[0] + ONE_TO_ONE_MARGIN[0], size[1] + ONE_TO_ONE_MARGIN[1]) \
                    if view == ONE_TO_ONE else size
                console_x = Xvfb(*console_size)
                stack.callback(console_x.stop)
                for kind in options.workloads:
                    try:
                        r = run_one(options, kind, size, view, agent_x, console_x, directory, log)
                    except Exception:
                        log.flush()
                        with open(os.path.join(directory, "log"), encoding="utf-8", errors="replace") as f:
                            tail = f.read()[-3000:]
                        print(f"--- last output of the programs ---\n{tail}", file=sys.stderr)
                        raise
                    results.append(r)
                    print("\n" + block(r), flush=True)
                console_x.stop()
            agent_x.stop()
        print("\nsummary (agent fps: frames/s the agent sent; pasted/s: updates pasted into the canvas's PhotoImage; "
              "canvas fps: redraws of the canvas after them; CPU: the console process, 100 % = one core, and its Tk, "
              "decoder and reactor (net) threads, rec: the recorder's share of net; X: the console's X server; "
              "lat: a change on the agent's display → seen on the console's display, ms; rec KB/min: the "
              "recording in the window, KB = 1000 B)")
        print(table(results, lambda r: f"{r.kind} {r.size[0]}x{r.size[1]} {r.view}"))
        moving = [r for r in results if r.received]
        behind = [r for r in moving if r.redraws < 0.95 * r.received]
        if behind:
            print(f"note: in {len(behind)} of {len(moving)} runs with frames the canvas was redrawn less often than "
                  "the agent sent frames: updates pasted in the same turn of Tk's loop are drawn once (the bridge "
                  f"brings the decoder's updates to the Tk thread every {BRIDGE_MS} ms while they arrive)")
        flagged = [r for r in results if r.other >= DISTURBED]
        if flagged:
            print(f"warning: other processes used {DISTURBED:.0%} of a CPU or more during {len(flagged)} runs; "
                  "re-run on a quiet machine")
        now = git_commit()
        print(f"\nran at commit {commit}" + ("" if now == commit else f" (HEAD is now {now})"))
        print(f"total time {time.monotonic() - started:.0f} s")
    return 0


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    missing = [p for p in ("Xvfb", "xdotool") if shutil.which(p) is None]
    if missing:
        print(f"console benchmark: {', '.join(missing)} needed (make bench-console installs them)", file=sys.stderr)
        return 1
    try:
        return run(options)
    except KeyboardInterrupt:
        print("console benchmark: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        print(f"console benchmark: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
