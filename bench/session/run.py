#!/usr/bin/env python3
"""
Session benchmark: how long a whole session takes from the agent's Join to
"verified" (inner TLS 1.3 and the SPAKE2 confirmation through a real
gateway), and file transfers through a session in both directions against
the same bytes through a plain paired relay of the same gateway, in one run
with the rounds interleaved.  See README.md in this directory.
"""

import contextlib
import cProfile
import io
import os
import platform
import pstats
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from twisted.internet import defer, reactor  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from bench import entry
from bench import profiles  # noqa: E402
from bench.relay import procstat  # noqa: E402
from bench.relay.errors import BenchError  # noqa: E402
from bench.session import report, transfers  # noqa: E402
from bench.session.harness import Gateway  # noqa: E402
from wire.session_commands import SessionLimits  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1024 * 1024
FULL = dict(starts=50, rounds=5, file_mib=256)
QUICK = dict(starts=20, rounds=3, file_mib=64)
WARMUP_STARTS = 3
WARMUP_MIB = 8
# The transfers of one round, in this order in the first round, then rotated.
KINDS = [
    (transfers.SESSION, transfers.TO_AGENT),
    (transfers.RAW, transfers.TO_AGENT),
    (transfers.SESSION, transfers.TO_CONSOLE),
    (transfers.RAW, transfers.TO_CONSOLE),
]
# Share of a CPU used by other processes during a transfer above which it is flagged.
DISTURBED = 0.1


def parse_args(argv=None):
    """The command line; unset numbers come from the full or the C{--quick} profile."""
    parser = profiles.profile_parser(
        __doc__.strip().split("\n\n")[0],
        FULL,
        QUICK,
        (
            ("starts", "sessions started up to verified, timed"),
            ("rounds", "measured transfer rounds (each: both directions, session and raw relay)"),
            ("file-mib", "MiB of the file sent"),
        ),
        "a shorter run (about 30 s)",
    )
    parser.add_argument("--one-way", action="store_true", help="only console -> agent (no request_file)")
    parser.add_argument(
        "--profile", metavar="FILE",
        help="profile this process (cProfile) during the measured session transfers, save the "
             "statistics to FILE and print the top functions; slows those transfers down",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (gateway log, state)")
    options = profiles.resolve(parser.parse_args(argv), FULL, QUICK)
    for name in FULL:
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return options


class Bench:
    def __init__(self, options, gateway: Gateway, source: str, warmup_source: str):
        self.options = options
        self.gateway = gateway
        self.source = source
        self.warmup_source = warmup_source
        self.pids = {"bench": os.getpid(), "gateway": gateway.process.pid}
        self.kinds = [k for k in KINDS if not (options.one_way and k[1] == transfers.TO_CONSOLE)]
        self.disturbed = 0
        self.profiler = cProfile.Profile() if options.profile else None

    async def starts(self) -> list[dict[str, float]]:
        for _ in range(WARMUP_STARTS):
            await transfers.start_session(self.gateway)
        timings = []
        for number in range(self.options.starts):
            timing = await transfers.start_session(self.gateway)
            timings.append(timing)
            if (number + 1) % 10 == 0 or number + 1 == self.options.starts:
                print(f"  {number + 1}/{self.options.starts} started; last: paired {timing['paired'] * 1000:.1f} ms, "
                      f"inner TLS {timing['inner_tls'] * 1000:.1f} ms, verified {timing['verified'] * 1000:.1f} ms",
                      flush=True)
        return timings

    async def _transfer(self, kind, source: str, size: int, profile: bool = False) -> transfers.Transfer:
        path, direction = kind
        measure = transfers.session_transfer if path == transfers.SESSION else transfers.raw_transfer
        if profile:
            self.profiler.enable()
        try:
            return await measure(self.gateway, direction, source, size, self.pids)
        finally:
            if profile:
                self.profiler.disable()

    async def warm_up(self) -> None:
        for kind in self.kinds:
            await self._transfer(kind, self.warmup_source, WARMUP_MIB * MiB)

    async def rounds(self) -> dict:
        size = self.options.file_mib * MiB
        samples = {kind: [] for kind in self.kinds}
        for number in range(self.options.rounds):
            shift = number % len(self.kinds)
            for kind in self.kinds[shift:] + self.kinds[:shift]:
                others = procstat.OtherLoad(set(self.pids.values()))
                started = time.monotonic()
                profile = self.profiler is not None and kind[0] == transfers.SESSION
                sample = await self._transfer(kind, self.source, size, profile)
                share = others.seconds() / (time.monotonic() - started)
                line = sample.line()
                if share >= DISTURBED:
                    self.disturbed += 1
                    line += f"  [other processes busy: {share:.0%} of a CPU]"
                samples[kind].append(sample)
                print(f"  round {number + 1}/{self.options.rounds} {kind[1]} {kind[0]:<9} {line}", flush=True)
            self.gateway.process.check()
        return samples


async def measure(options, gateway: Gateway, source: str, warmup_source: str):
    try:
        await gateway.log_in()
        bench = Bench(options, gateway, source, warmup_source)
        print(f"session start: {WARMUP_STARTS} unmeasured, then {options.starts} timed "
              "(new code each, the console picks up on the gateway's event)", flush=True)
        starts = await bench.starts()
        print(f"file transfers: warm-up ({WARMUP_MIB} MiB each, unmeasured), then rounds "
              "(MB = 10^6 bytes; CPU s/GB of this process and of the gateway)", flush=True)
        await bench.warm_up()
        samples = await bench.rounds()
        return starts, samples, bench
    finally:
        await gateway.connections.close_all()


def run_reactor(function, *args):
    """
    Run the reactor until C{function(*args)} (a coroutine) finishes; its
    result, or its exception raised here.  L{KeyboardInterrupt} if the
    reactor was stopped first (by a signal).
    """
    outcome = []

    def finished(result):
        outcome.append(result)
        if reactor.running:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(function(*args)).addBoth(finished))
    reactor.run()
    if not outcome:
        raise KeyboardInterrupt()
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def by_module(profiler: cProfile.Profile, count: int = 15) -> str:
    """The profile's internal time summed by module (built-in functions by name)."""
    totals: dict[str, float] = {}
    for (file, _, function), (_, _, internal, _, _) in pstats.Stats(profiler).stats.items():
        name = function if file == "~" else file.split("site-packages/")[-1].replace(REPOSITORY + "/", "")
        totals[name] = totals.get(name, 0.0) + internal
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:count]
    return "\n".join(f"  {seconds:7.3f} s {seconds / whole:6.1%}  {name}" for name, seconds in ranked)


def git_commit() -> str:
    """The commit the working tree is at, and whether it has local changes."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        return f"unknown ({e})"
    return commit + (f" with local changes to {len(changed.splitlines())} tracked file(s)" if changed else "")


def filesystem(path: str) -> str:
    """The type of the filesystem holding C{path} (from /proc/mounts)."""
    best, kind = "", "unknown"
    with open("/proc/mounts", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            mount = fields[1]
            if path.startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                best, kind = mount, f"{fields[2]} ({fields[0]} on {mount})"
    return kind


def _header(options, gateway: Gateway, directory: str) -> str:
    limits = SessionLimits()
    return "\n".join([
        "Ponte session benchmark",
        f"  commit: {git_commit()}",
        f"  machine: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
        f"  agent, console and raw legs: this process (pid {os.getpid()}), Python {platform.python_version()}, "
        f"{ssl.OPENSSL_VERSION}",
        f"  gateway: twistd ponte, pid {gateway.process.pid}, raw TLS port {gateway.setup.port} on 127.0.0.1",
        f"  files: {directory} on {filesystem(directory)}",
        f"  session protocol: chunks of {limits.max_chunk // 1024} KiB, window {limits.file_window}",
        f"  {options.starts} timed session starts; {options.rounds} rounds of a {options.file_mib} MiB "
        f"pseudo-random file, {'console -> agent only' if options.one_way else 'both directions'}, "
        "session and raw relay (fresh session / relay each)",
    ])


def run(options) -> int:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        directory = tempfile.mkdtemp(prefix="ponte-bench-session-")
        if options.keep:
            stack.callback(print, f"kept {directory}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
        source = os.path.join(directory, "bench.bin")
        warmup_source = os.path.join(directory, "warm-up.bin")
        transfers.make_file(source, options.file_mib * MiB)
        transfers.make_file(warmup_source, WARMUP_MIB * MiB)
        gateway = Gateway(directory)
        stack.callback(gateway.stop)
        print(_header(options, gateway, directory), flush=True)
        try:
            starts, samples, bench = run_reactor(measure, options, gateway, source, warmup_source)
        except Exception:
            print(f"--- last output of the gateway ---\n{gateway.process.log_tail()}", file=sys.stderr)
            raise
    print("\nsummary\n" + report.starts(starts))
    print("\n" + report.transfers(samples, options.file_mib * MiB))
    print("\n  to offer: from send_file / request_file until the receiver has the offer (the sender's "
          "SHA-256 of the\n  whole file first); stream: offer to the last chunk written; finish: the "
          "file checked, fsync'd, linked")
    if bench.disturbed:
        print(f"\nwarning: other processes used the CPU during {bench.disturbed} transfers (flagged above): "
              "these numbers are less reliable")
    if bench.profiler is not None:
        bench.profiler.dump_stats(options.profile)
        text = io.StringIO()
        pstats.Stats(bench.profiler, stream=text).sort_stats("tottime").print_stats(30)
        print(f"\nprofile of this process during the session transfers (saved to {options.profile}):\n"
              + text.getvalue())
        print("the same, internal time by module:\n" + by_module(bench.profiler))
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 0


def main(argv=None) -> int:
    """Entry point: errors are reported in one message and exit 1."""
    options = parse_args(argv)
    return entry.run_main("session", run, options, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
