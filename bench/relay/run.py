#!/usr/bin/env python3
"""
Relay benchmark: the Ponte gateway against haproxy (TLS on both legs) and a
direct TLS connection, between the same two client processes, in one run
with the paths' rounds interleaved.  See README.md in this directory.
"""

import argparse
import contextlib
import os
import platform
import shutil
import ssl
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench import entry
from bench import profiles  # noqa: E402
from bench.relay import ampsync, endpoints, idle, measure, procstat, relays, report  # noqa: E402
from bench.relay.errors import BenchError  # noqa: E402
from bench.relay.paths import GatewayPath, ServerPath  # noqa: E402
from bench.relay.peer import PeerProcess  # noqa: E402

MiB = 1024 * 1024
FULL = dict(rounds=40, bulk_mib=200, duplex_mib=100, pings=2000, idle_sessions=1000)
QUICK = dict(rounds=12, bulk_mib=100, duplex_mib=50, pings=1000, idle_sessions=500)
WARMUP = measure.Workload(bulk_bytes=8 * MiB, duplex_bytes=2 * MiB, pings=200)
# Share of a CPU used by other processes during a round above which the
# round is flagged as disturbed.
DISTURBED = 0.1


def parse_args(argv=None) -> argparse.Namespace:
    """The command line; unset sizes come from the full or the C{--quick} profile."""
    parser = profiles.profile_parser(
        __doc__.strip().split("\n\n")[0],
        FULL,
        QUICK,
        (
            ("rounds", "measured rounds per path"),
            ("bulk-mib", "MiB one way per round"),
            ("duplex-mib", "MiB each way at once per round, 0 to skip"),
            ("pings", "64-byte round trips per round"),
            ("idle-sessions", "idle paired sessions for the memory test, 0 to skip"),
        ),
        "a shorter run (under a minute)",
    )
    parser.add_argument("--haproxy-threads", type=int, default=1, help="haproxy's nbthread (default 1)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (configurations, logs)"
    )
    options = profiles.resolve(parser.parse_args(argv), FULL, QUICK)
    if options.rounds < 1 or options.bulk_mib < 1 or options.pings < 1:
        parser.error("--rounds, --bulk-mib and --pings must be at least 1")
    if options.duplex_mib < 0 or options.idle_sessions < 0:
        parser.error("--duplex-mib and --idle-sessions cannot be negative")
    return options


class Bench:
    """The relays, the two peers and the paths between them, for one run."""

    def __init__(self, options, stack: contextlib.ExitStack):
        self.options = options
        self.disturbed = 0  # rounds during which other processes were busy
        self.directory = tempfile.mkdtemp(prefix="ponte-bench-")
        if options.keep:
            stack.callback(print, f"kept {self.directory}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, self.directory, ignore_errors=True)
        self.setup = relays.make_gateway_state(self.directory)
        files = self.setup.files
        self.client, self.server = endpoints.client_context(files), endpoints.server_context(files)
        self.a = self._peer(stack, "A")
        self.b = self._peer(stack, "B")
        backend = self.b.call("listen")
        self.idle_listener = stack.enter_context(endpoints.listen())
        self.haproxy, ports = relays.start_haproxy(
            files,
            {"bench": backend, "idle": self.idle_listener.getsockname()[1]},
            self.directory,
            options.haproxy_threads,
            maxconn=4 * options.idle_sessions + 100,
        )
        stack.callback(self.haproxy.stop)
        self.haproxy_idle_port = ports["idle"]
        self.gateway = relays.start_gateway(self.setup, self.directory)
        stack.callback(self.gateway.stop)
        self.control = ampsync.operator_control(
            self.setup.port, self.client, relays.OPERATOR, self.setup.password
        )
        stack.callback(self.control.sock.close)
        self.paths = [
            GatewayPath(self.setup.port, self.gateway.pid, self.control),
            ServerPath(report.HAPROXY, ports["bench"], self.haproxy.pid),
            ServerPath(report.DIRECT, backend, None),
        ]

    def _peer(self, stack, name: str) -> PeerProcess:
        peer = PeerProcess(name, self.setup.files)
        stack.callback(peer.stop)
        return peer

    def check_relays(self) -> None:
        """@raise BenchError: if a relay has died."""
        self.gateway.check()
        self.haproxy.check()

    def diagnostics(self) -> str:
        """The relays' last output, for an error report."""
        return "\n".join(
            f"--- last output of {r.name} ---\n{r.log_tail()}" for r in (self.gateway, self.haproxy)
        )

    # -- phases ----------------------------------------------------------------

    def warm_up(self) -> None:
        """One small unmeasured round per path (imports, first allocations)."""
        for path in self.paths:
            measure.run_round(path, self.a, self.b, WARMUP, measure.Samples())

    def idle_memory(self) -> dict[str, idle.IdleMemory]:
        """RSS growth of each relay with many idle paired sessions."""
        count = self.options.idle_sessions
        if not count:
            return {}
        results = {
            report.GATEWAY: idle.gateway(self.setup.port, self.client, self.control, self.gateway.pid, count),
            report.HAPROXY: idle.haproxy(
                self.haproxy_idle_port, self.idle_listener, self.client, self.server, self.haproxy.pid, count
            ),
        }
        for name, memory in results.items():
            print(
                f"  {name:<8} RSS {memory.before_kib} KiB -> {memory.after_kib} KiB with {count} idle "
                f"paired sessions: {memory.per_session_kib:.1f} KiB each ({memory.seconds:.1f} s)",
                flush=True,
            )
        time.sleep(idle.SETTLE_SECONDS)  # let the relays finish closing them
        return results

    def rounds(self) -> dict[str, measure.Samples]:
        """The measured rounds, the paths taking turns (order rotated each round)."""
        work = measure.Workload(
            bulk_bytes=self.options.bulk_mib * MiB,
            duplex_bytes=self.options.duplex_mib * MiB,
            pings=self.options.pings,
        )
        samples = {path.name: measure.Samples() for path in self.paths}
        for number in range(self.options.rounds):
            shift = number % len(self.paths)
            for path in self.paths[shift:] + self.paths[:shift]:
                line = self._round(path, work, samples[path.name])
                print(f"  round {number + 1}/{self.options.rounds} {path.name:<8} {line}", flush=True)
            self.check_relays()
        return samples

    def _round(self, path, work: measure.Workload, samples: measure.Samples) -> str:
        """One path's round, watching for other work on the machine."""
        ours = {os.getpid(), self.a.pid, self.b.pid, self.gateway.pid, self.haproxy.pid}
        others, started = procstat.OtherLoad(ours), time.monotonic()
        line = measure.run_round(path, self.a, self.b, work, samples)
        share = others.seconds() / (time.monotonic() - started)
        if share >= DISTURBED:
            self.disturbed += 1
            line += f"  [other processes busy: {share:.0%} of a CPU]"
        return line


def _header(options, bench: Bench) -> str:
    return "\n".join(
        [
            "Ponte relay benchmark",
            f"  machine: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
            f"  clients: Python {platform.python_version()}, {ssl.OPENSSL_VERSION}",
            f"  haproxy: {relays.version(['haproxy', '-v'])} (nbthread {options.haproxy_threads})",
            f"  gateway: pid {bench.gateway.pid}, port {bench.setup.port}; haproxy pid {bench.haproxy.pid}",
            f"  per round and path: {options.bulk_mib} MiB one way (B->A), "
            f"{options.duplex_mib} MiB each way at once, {options.pings} x 64 B round trips; "
            f"{options.rounds} rounds; {options.idle_sessions} idle sessions for memory",
        ]
    )


def run(options) -> int:
    """The whole benchmark; returns the exit status."""
    started = time.monotonic()
    procstat.raise_nofile(4 * options.idle_sessions + 1024)
    with contextlib.ExitStack() as stack:
        bench = Bench(options, stack)
        try:
            print(_header(options, bench), flush=True)
            bench.warm_up()
            print("idle paired sessions:", flush=True)
            memory = bench.idle_memory()
            print("rounds (MB = 10^6 bytes):", flush=True)
            samples = bench.rounds()
        except Exception:
            print(bench.diagnostics(), file=sys.stderr)
            raise
    print("\nnegotiated TLS (client A's view):")
    for name, path_samples in samples.items():
        print(f"  {name:<8} {path_samples.cipher}")
    rows = report.rows(samples, memory)
    print("\nsummary\n" + report.table(rows))
    print("\ntargets\n" + report.verdicts(rows))
    if bench.disturbed:
        total = options.rounds * len(bench.paths)
        print(
            f"\nwarning: other processes used the CPU during {bench.disturbed} of {total} rounds "
            "(flagged above): these numbers are less reliable"
        )
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 0


def main(argv=None) -> int:
    """Entry point: errors are reported in one message and exit 1."""
    options = parse_args(argv)
    return entry.run_main("relay", run, options, (BenchError, ampsync.GatewayRefused))


if __name__ == "__main__":
    sys.exit(main())
