"""
One round of measurements on one path: bulk one way, bulk both ways and
64-byte ping-pong, over a fresh connection.  Samples are kept per path and
summarised at the end (see L{Samples}).
"""

import math
import statistics
import time

import attrs

from bench.relay import procstat
from bench.relay.paths import close
from bench.relay.peer import PeerProcess


@attrs.frozen
class Workload:
    """What one round does on each path."""

    bulk_bytes: int
    duplex_bytes: int
    pings: int
    ping_size: int = 64
    ping_warmup: int = 100


@attrs.define
class Transfers:
    """Bulk transfers of one kind on one path, over all rounds."""

    speeds: list[float] = attrs.Factory(list)  # MB/s per round
    relayed: int = 0  # bytes
    relay_cpu: float = 0.0  # relay CPU seconds meanwhile

    def add(self, speed: float, relayed: int, relay_cpu: float) -> None:
        """One round's transfer."""
        self.speeds.append(speed)
        self.relayed += relayed
        self.relay_cpu += relay_cpu

    def median(self) -> float | None:
        """Median MB/s over the rounds."""
        return median(self.speeds)

    def cpu_per_gb(self) -> float | None:
        """Relay CPU seconds per 10^9 bytes relayed."""
        return self.relay_cpu / (self.relayed / 1e9) if self.relayed else None


@attrs.define
class Samples:
    """Everything measured on one path, over all rounds."""

    setups: list[float] = attrs.Factory(list)  # milliseconds to open the connection
    one_way: Transfers = attrs.Factory(Transfers)
    two_way: Transfers = attrs.Factory(Transfers)  # MB/s of both directions summed
    trips: list[float] = attrs.Factory(list)  # round trips, microseconds
    cipher: str = ""

    def trip(self, fraction: float) -> float | None:
        """A percentile of the round trips (nearest rank), microseconds."""
        return percentile(self.trips, fraction)


def median(values: list[float]) -> float | None:
    """The median of C{values}, C{None} for none."""
    return statistics.median(values) if values else None


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile C{fraction} (0..1) of C{values}."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(max(1, math.ceil(fraction * len(ordered))), len(ordered))
    return ordered[rank - 1]


def _cpu(pid: int | None) -> float:
    return procstat.cpu_seconds(pid) if pid else 0.0


def _transfer(relay_pid: int | None, requests: list[tuple]) -> tuple[float, float]:
    """
    Run the transfer C{requests} (peer, request, bytes) at once; returns the
    seconds from the first start to the last end, and the relay's CPU seconds.
    """
    cpu = _cpu(relay_pid)
    for peer, request, total in requests:
        peer.start(request, total=total)
    spans = [peer.result() for peer, _, _ in requests]
    cpu = _cpu(relay_pid) - cpu
    return max(end for _, end in spans) - min(start for start, _ in spans), cpu


def one_way(a: PeerProcess, b: PeerProcess, total: int, relay_pid: int | None) -> tuple[float, float]:
    """
    B sends C{total} bytes to A (the customer's screen to the operator);
    returns MB/s and the relay's CPU seconds.
    """
    seconds, cpu = _transfer(relay_pid, [(a, "receive", total), (b, "send", total)])
    return total / seconds / 1e6, cpu


def two_way(a: PeerProcess, b: PeerProcess, total: int, relay_pid: int | None) -> tuple[float, float]:
    """
    A and B each send C{total} bytes at once; returns MB/s of both
    directions summed and the relay's CPU seconds.
    """
    seconds, cpu = _transfer(relay_pid, [(a, "duplex", total), (b, "duplex", total)])
    return 2 * total / seconds / 1e6, cpu


def round_trips(a: PeerProcess, b: PeerProcess, work: Workload) -> list[float]:
    """A pings, B echoes; returns A's round trips in microseconds."""
    b.start("pong", count=work.ping_warmup + work.pings, size=work.ping_size)
    trips = a.call("ping", count=work.pings, size=work.ping_size, warmup=work.ping_warmup)
    b.result()
    return trips


def run_round(path, a: PeerProcess, b: PeerProcess, work: Workload, samples: Samples) -> str:
    """
    Measure one round on C{path} into C{samples}; returns a progress line.
    (After an error the peers are in no known state: the run is over.)
    """
    opened = time.perf_counter()
    samples.cipher = path.open(a, b)
    samples.setups.append((time.perf_counter() - opened) * 1000)
    speed, cpu = one_way(a, b, work.bulk_bytes, path.relay_pid)
    samples.one_way.add(speed, work.bulk_bytes, cpu)
    line = f"setup {samples.setups[-1]:5.1f} ms  1-way {speed:7.1f} MB/s"
    if work.duplex_bytes:
        speed, cpu = two_way(a, b, work.duplex_bytes, path.relay_pid)
        samples.two_way.add(speed, 2 * work.duplex_bytes, cpu)
        line += f"  2-way {speed:7.1f} MB/s"
    trips = round_trips(a, b, work)
    samples.trips.extend(trips)
    close(a, b)
    return line + f"  rtt p50 {percentile(trips, 0.5):4.0f} µs p99 {percentile(trips, 0.99):5.0f} µs"
