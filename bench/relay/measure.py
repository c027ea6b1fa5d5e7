"""
One round of measurements on one path: bulk one way, bulk both ways and
64-byte ping-pong, over a fresh connection.  Samples are kept per path and
summarised at the end (see L{Samples}).
"""

import math
import statistics

import attrs

from bench.relay import procstat
from bench.relay.paths import close
from bench.relay.peer import PeerProcess

MiB = 1024 * 1024


@attrs.frozen
class Workload:
    """What one round does on each path."""

    bulk_bytes: int
    duplex_bytes: int
    pings: int
    ping_size: int = 64
    ping_warmup: int = 100


@attrs.define
class Samples:
    """Everything measured on one path, over all rounds."""

    one_way: list[float] = attrs.Factory(list)  # MB/s per round
    two_way: list[float] = attrs.Factory(list)  # MB/s per round, both directions summed
    bulk_bytes: int = 0
    relay_cpu: float = 0.0  # relay CPU seconds during the one-way transfers
    trips: list[float] = attrs.Factory(list)  # round trips, microseconds
    cipher: str = ""

    def cpu_per_gb(self) -> float | None:
        """Relay CPU seconds per 10^9 bytes relayed one way."""
        return self.relay_cpu / (self.bulk_bytes / 1e9) if self.bulk_bytes else None

    def throughput(self, which: str) -> float | None:
        """Median MB/s over the rounds (C{one_way} or C{two_way})."""
        values = getattr(self, which)
        return statistics.median(values) if values else None

    def trip(self, fraction: float) -> float | None:
        """A percentile of the round trips (nearest rank), microseconds."""
        return percentile(self.trips, fraction)


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile C{fraction} (0..1) of C{values}."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(max(1, math.ceil(fraction * len(ordered))), len(ordered))
    return ordered[rank - 1]


def _cpu(pid: int | None) -> float:
    return procstat.cpu_seconds(pid) if pid else 0.0


def one_way(a: PeerProcess, b: PeerProcess, total: int, relay_pid: int | None):
    """
    B sends C{total} bytes to A (the customer's screen to the operator);
    returns (MB/s, relay CPU seconds).
    """
    cpu = _cpu(relay_pid)
    a.start("receive", total=total)
    start = b.call("send", total=total)
    end = a.result()
    return total / (end - start) / 1e6, _cpu(relay_pid) - cpu


def two_way(a: PeerProcess, b: PeerProcess, total: int) -> float:
    """A and B each send C{total} bytes at once; returns MB/s of both summed."""
    a.start("duplex", total=total)
    b.start("duplex", total=total)
    a_start, a_end = a.result()
    b_start, b_end = b.result()
    return 2 * total / (max(a_end, b_end) - min(a_start, b_start)) / 1e6


def round_trips(a: PeerProcess, b: PeerProcess, work: Workload) -> list[float]:
    """A pings, B echoes; returns A's round trips in microseconds."""
    b.start("pong", count=work.ping_warmup + work.pings, size=work.ping_size)
    trips = a.call("ping", count=work.pings, size=work.ping_size, warmup=work.ping_warmup)
    b.result()
    return trips


def run_round(path, a: PeerProcess, b: PeerProcess, work: Workload, samples: Samples) -> str:
    """Measure one round on C{path} into C{samples}; returns a progress line."""
    samples.cipher = path.open(a, b)
    try:
        speed, cpu = one_way(a, b, work.bulk_bytes, path.relay_pid)
        samples.one_way.append(speed)
        samples.bulk_bytes += work.bulk_bytes
        samples.relay_cpu += cpu
        line = f"1-way {speed:7.1f} MB/s"
        if work.duplex_bytes:
            both = two_way(a, b, work.duplex_bytes)
            samples.two_way.append(both)
            line += f"  2-way {both:7.1f} MB/s"
        trips = round_trips(a, b, work)
        samples.trips.extend(trips)
        line += f"  rtt p50 {percentile(trips, 0.5):6.0f} µs p99 {percentile(trips, 0.99):6.0f} µs"
        if path.relay_pid:
            line += f"  relay cpu {cpu:5.2f} s"
        return line
    finally:
        close(a, b)
