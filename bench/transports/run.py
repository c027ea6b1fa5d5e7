#!/usr/bin/env python3
"""
Transports benchmark: throughput and round trip of a paired session whose
agent reaches the gateway by each way of the ladder (raw TLS, the HTTPS
port, CONNECT through squid or tinyproxy, the request tunnel streaming and
long-polling), as ratios to raw TLS, in one run with the ways' rounds
interleaved; and the ladder's time to a working path when the raw port is
black-holed.  See README.md in this directory.
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

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from bench import entry
from bench import profiles  # noqa: E402
from bench.relay import relays  # noqa: E402
from bench.relay.endpoints import HOST  # noqa: E402
from bench.relay.errors import BenchError  # noqa: E402
from bench.relay.measure import percentile  # noqa: E402
from bench.transports import clients, harness, report, traffic  # noqa: E402
from tests import proxies  # noqa: E402
from wire import ladder  # noqa: E402

MiB = 1024 * 1024
FULL = dict(rounds=20, bulk_mib=64, pings=500, requests=200, ladder_runs=7)
QUICK = dict(rounds=8, bulk_mib=32, pings=300, requests=100, ladder_runs=3)
# Unmeasured: one small round per way first, and round trips before each round's.
WARMUP_BULK = 4 * MiB
WARMUP_PINGS = 50
PING_WARMUP = 20
REQUEST_WARMUP = 10
# The CONNECT proxies' programs, for their versions (as tests/proxies.py starts them).
PROXY_PROGRAMS = {"squid": "/usr/sbin/squid", "tinyproxy": "/usr/bin/tinyproxy"}
# Share of a CPU used by other processes during a round above which the
# round is flagged as disturbed.
DISTURBED = 0.1


def parse_args(argv=None) -> argparse.Namespace:
    """The command line; unset numbers come from the full or the C{--quick} profile."""
    parser = profiles.profile_parser(
        __doc__.strip().split("\n\n")[0],
        FULL,
        QUICK,
        (
            ("rounds", "measured rounds per way"),
            ("bulk-mib", "MiB agent -> operator per round and way"),
            ("pings", "64-byte round trips per round and way"),
            ("requests", "GET /health through the buffering proxy"),
            ("ladder-runs", "ladder races with the raw port black-holed"),
        ),
        "a shorter run (about a minute)",
    )
    parser.add_argument(
        "--connect-proxy", choices=report.CONNECT_PROXIES, default=report.CONNECT_PROXIES[0],
        help=f"the proxy for the connect way (default {report.CONNECT_PROXIES[0]})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (configuration, gateway log)"
    )
    options = profiles.resolve(parser.parse_args(argv), FULL, QUICK)
    for name in FULL:
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return options


class Bench:
    """The gateway, the proxies in front of it, and the measurements, for one run."""

    def __init__(self, options, server: harness.GatewayServer, gateway: clients.Gateway, directory: str):
        self.options = options
        self.server = server
        self.gateway = gateway
        self.directory = directory
        self.pids = {
            report.CLIENT: os.getpid(),
            report.GATEWAY: server.process.pid,
            report.PROXY: harness.child_named(options.connect_proxy),
        }
        self.disturbed = 0  # rounds during which other processes were busy

    async def warm_up(self) -> None:
        """One small unmeasured round per way (imports, first allocations, TLS caches)."""
        for way in report.WAYS:
            await self._round(way, WARMUP_BULK, WARMUP_PINGS, report.WaySamples())

    async def rounds(self) -> dict[str, report.WaySamples]:
        """The measured rounds, the ways taking turns (order rotated each round)."""
        samples = {way: report.WaySamples() for way in report.WAYS}
        ways = list(report.WAYS)
        for number in range(self.options.rounds):
            shift = number % len(ways)
            for way in ways[shift:] + ways[:shift]:
                others, started = harness.other_load(), time.monotonic()
                line = await self._round(way, self.options.bulk_mib * MiB, self.options.pings, samples[way])
                share = others.seconds() / (time.monotonic() - started)
                if share >= DISTURBED:
                    self.disturbed += 1
                    line += f"  [other processes busy: {share:.0%} of a CPU]"
                print(f"  round {number + 1}/{self.options.rounds} {way:<12} {line}", flush=True)
            self.server.process.check()
        return samples

    async def _round(self, way: str, size: int, pings: int, samples: report.WaySamples) -> str:
        """One way's round in a fresh session; returns a progress line."""
        session = await clients.open_session(self.gateway, way, self.directory)
        try:
            first_mode = session.tunnel_mode()
            meter = harness.CpuMeter(self.pids)
            speed = await traffic.bulk(session, size, way.encode())
            samples.cpu.update(meter.used())
            samples.relayed += size
            trips = await traffic.round_trips(session, pings, PING_WARMUP)
            last_mode = session.tunnel_mode()
        finally:
            errors = await session.close()
        if errors:
            raise BenchError(f"{way}: closing the session failed: {'; '.join(errors)}")
        mode = first_mode if first_mode == last_mode else f"{first_mode}->{last_mode}"
        samples.connects.append(session.agent_seconds)
        samples.speeds.append(speed)
        samples.trips.extend(trips)
        samples.modes.append(mode or "")
        p50, p99 = percentile(trips, 0.5) * 1000, percentile(trips, 0.99) * 1000
        line = (
            f"agent conn {session.agent_seconds * 1000:7.1f} ms  bulk {speed:6.1f} MB/s  "
            f"rtt p50 {p50:6.3f} ms p99 {p99:6.3f} ms"
        )
        return line + (f"  mode {mode}" if mode else "")

    async def request_times(self) -> list[float]:
        """One request's time through the buffering proxy, C{--requests} times."""
        settings = self.gateway.proxies[ladder.TUNNEL_PROXY]
        return await traffic.request_times(self.gateway, settings, self.options.requests, REQUEST_WARMUP)

    async def ladder_runs(self, hole: int) -> tuple[list[traffic.PathFound], int]:
        """The ladder raced C{--ladder-runs} times against a black-holed raw port."""
        found = []
        for number in range(self.options.ladder_runs):
            path = await traffic.time_to_path(self.gateway, hole)
            found.append(path)
            print(f"  run {number + 1}/{self.options.ladder_runs}: {path.seconds:.3f} s, {path.winner}",
                  flush=True)
            if number == 0:
                print("\n".join("    " + line for line in path.lines), flush=True)
        await task.deferLater(reactor, 0.2, lambda: None)  # let the stopped attempts' sockets close
        return found, traffic.established_to(hole)


async def start_proxies(
    cleanups: harness.Cleanups, server: harness.GatewayServer, name: str
) -> clients.Gateway:
    """
    The CONNECT proxy C{name} (squid or tinyproxy, CONNECT only to the HTTPS
    port) and the buffering proxy, all stopped by C{cleanups}; returns what
    the clients need to know.
    """
    start = {"squid": proxies.squid, "tinyproxy": proxies.tinyproxy}[name]
    try:
        connect = await start(cleanups, connect_ports=[server.https_port])
    except (AssertionError, RuntimeError) as e:  # not listening in time / exited at start
        raise BenchError(f"{name} did not start: {e}") from e
    buffering = await proxies.buffering_proxy(cleanups)
    print(f"  proxies: {name} on port {connect} (CONNECT to {server.https_port} only), "
          f"buffering proxy on port {buffering}", flush=True)
    address = ladder.GatewayAddress(
        HOST, server.raw_port, server.https_port, server.ca_pem(), server.http_port
    )
    ways = {ladder.CONNECT: connect, ladder.TUNNEL_PROXY: buffering}
    return clients.Gateway(
        address, server.setup.password, {way: clients.proxy_settings(port) for way, port in ways.items()}
    )


async def measure(options, server: harness.GatewayServer, directory: str) -> report.Results:
    """Start the proxies, run every phase, stop the proxies."""
    cleanups = harness.Cleanups(directory)
    # Also when a signal stops the reactor: stop the CONNECT proxy (and remove
    # squid's directory), close the ports.
    trigger = reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: defer.ensureDeferred(cleanups.run())
    )
    try:
        gateway = await start_proxies(cleanups, server, options.connect_proxy)
        bench = Bench(options, server, gateway, directory)
        print("warm-up (one small round per way, unmeasured)", flush=True)
        await bench.warm_up()
        print("rounds (MB = 10^6 bytes)", flush=True)
        ways = await bench.rounds()
        print(f"one request through the buffering proxy ({options.requests} x GET /health)", flush=True)
        requests = await bench.request_times()
        hole = await proxies.black_hole(cleanups)
        print(f"time to a working path with the raw port black-holed (port {hole})", flush=True)
        paths, leftover = await bench.ladder_runs(hole)
        if bench.disturbed:
            total = options.rounds * len(report.WAYS)
            print(f"warning: other processes used the CPU during {bench.disturbed} of {total} rounds "
                  "(flagged above): these numbers are less reliable")
        return report.Results(
            ways, requests, paths, ladder.LadderLimits().stagger, leftover, options.connect_proxy
        )
    finally:
        reactor.removeSystemEventTrigger(trigger)
        errors = await cleanups.run()
        if errors:
            print(f"warning: stopping the proxies: {'; '.join(errors)}", file=sys.stderr)


def run_reactor(function, *args):
    """
    Run the reactor until C{function(*args)} (a coroutine) finishes; its
    result, or its exception raised here.  L{KeyboardInterrupt} if the
    reactor began to stop first (by a signal), also when the coroutine
    finished (or failed: the proxies are being stopped) during the shutdown.
    """
    outcome, stopping = [], []

    def finished(result):
        outcome.append(result)
        if not stopping:
            reactor.stop()

    def start():
        defer.ensureDeferred(function(*args)).addBoth(finished)

    reactor.addSystemEventTrigger("before", "shutdown", lambda: stopping.append(not outcome))
    reactor.callWhenRunning(start)
    reactor.run()
    if not outcome or stopping[0]:
        raise KeyboardInterrupt()
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def _header(options, server: harness.GatewayServer) -> str:
    return "\n".join(
        [
            "Ponte transports benchmark",
            f"  machine: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
            f"  clients and buffering proxy: this process (pid {os.getpid()}), "
            f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}",
            f"  proxy for CONNECT: {relays.version([PROXY_PROGRAMS[options.connect_proxy], '-v'])}",
            f"  gateway: pid {server.process.pid}, raw port {server.raw_port}, "
            f"HTTPS port {server.https_port}, HTTP port {server.http_port}",
            f"  per round and way: a fresh paired session (operator on raw TLS, agent by the way), "
            f"{options.bulk_mib} MiB agent -> operator, {options.pings} x 64 B round trips "
            f"operator -> agent -> operator; {options.rounds} rounds",
        ]
    )


def run(options) -> int:
    """The whole benchmark; returns the exit status."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        directory = tempfile.mkdtemp(prefix="ponte-bench-transports-")
        if options.keep:
            stack.callback(print, f"kept {directory}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
        server = harness.start_gateway(directory)
        stack.callback(server.process.stop)
        print(_header(options, server), flush=True)
        try:
            results = run_reactor(measure, options, server, directory)
        except Exception:
            print(f"--- last output of the gateway ---\n{server.process.log_tail()}", file=sys.stderr)
            raise
    print("\nsummary\n" + report.table(results))
    print("\n" + report.extras(results))
    print("\ntargets\n" + report.verdicts(results))
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 0


def main(argv=None) -> int:
    """Entry point: errors are reported in one message and exit 1."""
    options = parse_args(argv)
    return entry.run_main("transports", run, options, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
