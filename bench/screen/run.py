#!/usr/bin/env python3
"""
Screen benchmark: Ponte's screen sharing (agent.screen.ScreenSource and
the session protocol's frames, decoded as the console decodes them)
against x11vnc with ZRLE and with Tight, on the same scripted workloads on
private Xvfb displays, in one run.  See README.md in this directory.
"""

import argparse
import contextlib
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import mss  # noqa: E402
import PIL  # noqa: E402

from agent.screen import ScreenSettings  # noqa: E402
from bench import entry  # noqa: E402
from bench.relay import procstat  # noqa: E402
from bench.screen import quality, report, systems, workload  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZES = ((1280, 800), (1920, 1080))
# The warm-up outlasts x11vnc's start: after its first whole picture it sends nothing for
# about 3 s (it sets up the cursor), then runs at its own pace.
FULL = dict(seconds=10.0, warmup=4.0)
QUICK = dict(seconds=3.0, warmup=3.5)
READY_TIMEOUT = 60.0
DISTURBED = 0.1  # share of a CPU used by other processes above which a run is flagged


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s windows instead of 10 (about 4 minutes)")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (default 10, --quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds after the first picture before measuring "
                                                     "(default 4, --quick 3.5)")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                        help="screen sizes, e.g. 1280x800,1920x1080 (the default)")
    parser.add_argument("--workloads", default=",".join(report.WORKLOADS),
                        help=f"some of {','.join(report.WORKLOADS)} (default all)")
    parser.add_argument("--systems", default=",".join(systems.SYSTEMS),
                        help=f"some of {','.join(systems.SYSTEMS)} (default all)")
    parser.add_argument("--tight-quality", type=int, default=5, choices=range(10),
                        help="Tight JPEG quality level 0-9 (default 5: JPEG 77, 4:2:2)")
    parser.add_argument("--tight-compression", type=int, default=2, choices=range(10),
                        help="Tight compression level 0-9 (default 2)")
    parser.add_argument("--profile", action="store_true",
                        help="run the agent side under cProfile and print its hot spots per run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, profiles)")
    options = parser.parse_args(argv)
    for name, default in (QUICK if options.quick else FULL).items():
        if getattr(options, name) is None:
            setattr(options, name, default)
    try:
        options.sizes = [tuple(int(v) for v in s.lower().split("x")) for s in options.sizes.split(",")]
    except ValueError:
        parser.error("--sizes: WIDTHxHEIGHT,...")
    options.workloads = options.workloads.split(",")
    options.systems = options.systems.split(",")
    if not set(options.workloads) <= set(report.WORKLOADS) or not set(options.systems) <= set(systems.SYSTEMS):
        parser.error("unknown workload or system")
    if options.seconds <= 0 or options.warmup < 0:
        parser.error("--seconds must be positive, --warmup not negative")
    return options


def git_commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        changed = git("status", "--porcelain", "--", "agent", "wire")
        return commit + (" (with uncommitted changes in agent/ or wire/)" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _program_version(command) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        lines = (out.stdout + out.stderr).strip().splitlines()
        return lines[0] if lines else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def header(options, commit: str) -> str:
    s = ScreenSettings()
    return "\n".join([
        "Ponte screen benchmark",
        f"  commit: {commit}",
        f"  machine: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
        f"  Python {platform.python_version()}, Pillow {PIL.__version__}, mss {mss.__version__}",
        f"  agent: ScreenSettings() defaults: tiles {s.tile_size} px, at most {s.max_fps:g} grabs/s, "
        f"lossy {s.lossy_encoding} q{s.lossy_quality} {s.lossy_subsampling} above {s.text_colours} colours, PNG level {s.png_level}",
        f"  x11vnc: {systems.x11vnc_version()}, defaults plus {' '.join(systems.x11vnc_command(':N', 0)[5:])}; "
        f"Tight quality level {options.tight_quality}, compression level {options.tight_compression}",
        f"  X server: Xvfb {_program_version(['dpkg-query', '-W', '-f', '${Version}', 'xvfb'])} (Debian package)",
        f"  per run: {options.warmup:g} s after the first whole picture, then a window of {options.seconds:g} s; "
        f"the systems' order rotates from workload to workload",
    ])


class Workload:
    """The workload program on one display."""

    def __init__(self, kind: str, display: str, directory: str, log):
        self.stamps_path = os.path.join(directory, f"stamps-{kind}")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "workload.py"), kind, "--stamps", self.stamps_path],
            env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=log, text=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        line = self.process.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"the {kind} workload did not start (see its log)")

    def stop(self) -> list[tuple[int, float]]:
        """Stop it; the steps it drew, (step, time)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        stamps = []
        if os.path.exists(self.stamps_path):
            with open(self.stamps_path, encoding="ascii") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2:
                        stamps.append((int(parts[0]), float(parts[1])))
            os.unlink(self.stamps_path)
        return stamps


def run_one(options, system, kind, size, xvfb, directory, log) -> report.Run:
    """One system on one workload: start the workload, measure, stop both."""
    job = Workload(kind, xvfb.display, directory, log)
    ours = {os.getpid(), xvfb.process.pid, job.process.pid}
    others = procstat.OtherLoad(ours)
    started = time.monotonic()
    profile = None
    try:
        if system == systems.PONTE:
            if options.profile:
                profile = os.path.join(directory, f"agent-{kind}-{size[0]}x{size[1]}.prof")
            measured = systems.run_ponte(xvfb.display, xvfb.process.pid, size, options.warmup, options.seconds,
                                         log, profile)
        else:
            measured = systems.run_x11vnc(system, xvfb.display, xvfb.process.pid, size, options.warmup,
                                          options.seconds, log, options.tight_quality, options.tight_compression)
    finally:
        stamps = job.stop()
    # (The sharer and the workload have exited by now: only processes still running count.)
    other = others.seconds() / (time.monotonic() - started)
    return report.Run(measured, stamps, other, profile)


# Where a thread waits rather than works (not CPU time).
WAITING = ("acquire' of '_thread.lock", "select.select", "poll' of 'select.epoll", "'sleep'")


def hot_spots(path: str, count: int = 10) -> str:
    """The functions with the most own time in a cProfile file, waiting left out; and their total."""
    stats = pstats.Stats(path).stats
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.items():
        where = f"{os.path.relpath(filename, ROOT) if filename.startswith('/') else filename}:{line}({name})"
        if any(w in where for w in WAITING):
            continue
        rows.append((own, cumulative, calls, where))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    lines = [f"    {'own s':>7} {'cum s':>7} {'calls':>8}  function   (total own time {total:.2f} s)"]
    lines += [f"    {own:7.3f} {cumulative:7.3f} {calls:8d}  {where}" for own, cumulative, calls, where in rows[:count]]
    return "\n".join(lines)


def run(options) -> int:
    started = time.monotonic()
    from tests.xvfb import Xvfb  # needs Xvfb installed (make bench-screen installs it)

    commit = git_commit()
    print(header(options, commit), flush=True)
    directory = tempfile.mkdtemp(prefix="ponte-bench-screen-")
    with contextlib.ExitStack() as stack:
        if options.keep:
            stack.callback(print, f"kept {directory}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
        log = stack.enter_context(open(os.path.join(directory, "log"), "w"))
        all_results = {}
        turn = 0
        for size in options.sizes:
            xvfb = Xvfb(*size)
            stack.callback(xvfb.stop)
            results = all_results[size] = {}
            for kind in options.workloads:
                order = options.systems[turn % len(options.systems):] + options.systems[:turn % len(options.systems)]
                turn += 1
                runs = results[kind] = {}
                for system in order:
                    try:
                        runs[system] = run_one(options, system, kind, size, xvfb, directory, log)
                    except Exception:
                        log.flush()
                        with open(os.path.join(directory, "log"), encoding="utf-8", errors="replace") as f:
                            tail = f.read()[-3000:]
                        print(f"--- last output of the programs ---\n{tail}", file=sys.stderr)
                        raise
                    r = runs[system]
                    print(f"  {size[0]}x{size[1]} {kind:<6} {systems.LABELS[system]:<13} {r.fps():5.1f} fps "
                          f"{r.bytes_per_second() / 1e3:8.1f} KB/s  CPU {100 * r.cpu_share():5.1f} %", flush=True)
                print("\n" + report.table(kind, size, workload.RATES[kind], runs) + "\n", flush=True)
                if options.profile and systems.PONTE in runs:
                    path = runs[systems.PONTE].profile
                    for title, file in (("capture thread", path), ("reactor thread", path + ".reactor")):
                        if os.path.exists(file):
                            print(f"  agent side's {title} under cProfile ({kind}, {size[0]}x{size[1]}, whole run):")
                            print(hot_spots(file) + "\n", flush=True)
            xvfb.stop()
        if report.PHOTO in options.workloads:
            print("quality of the photographic content: one step of the photo workload, Ponte's tiles "
                  "against the JPEG of x11vnc's Tight")
            for size in options.sizes:
                print(quality.compare(size[0] // 2, size[1] // 2, options.tight_quality))
        for size, results in all_results.items():
            print(f"\ntargets at {size[0]}x{size[1]}")
            print(report.verdicts(size, results))
        disturbed = [(size, kind, s) for size, res in all_results.items() for kind, runs in res.items()
                     for s, r in runs.items() if r.other_cpu >= DISTURBED]
        if disturbed:
            print(f"\nwarning: other processes used {DISTURBED:.0%} of a CPU or more during {len(disturbed)} runs; "
                  "re-run on a quiet machine")
        now = git_commit()
        print(f"\nran at commit {commit}" + ("" if now == commit else f" (HEAD is now {now})"))
        print(f"total time {time.monotonic() - started:.0f} s")
    return 0


def main(argv=None) -> int:
    """Entry point: errors are reported in one message and exit 1."""
    options = parse_args(argv)
    needed = ["Xvfb", "xdotool"] + (["x11vnc"] if set(options.systems) - {systems.PONTE} else [])
    missing = [p for p in needed if shutil.which(p) is None]
    if missing:
        print(f"screen benchmark: {', '.join(missing)} needed (make bench-screen installs them)", file=sys.stderr)
        return 1
    return entry.run_main("screen", run, options, (Exception,), show_type=True)


if __name__ == "__main__":
    sys.exit(main())
