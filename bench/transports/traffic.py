"""
What one round measures on a paired session (bulk agent -> operator and
64-byte ping-pong), and the two measurements outside sessions: one HTTP
request through a proxy, and the ladder's time to a working path when the
raw port swallows connections.
"""

import os
import time

import attrs
from twisted.internet import defer, reactor
from twisted.web import client as web
from twisted.web.http_headers import Headers

from bench.relay.errors import BenchError
from bench.transports.clients import Gateway, Session
from tests import support
from wire import commands, tunnel

# Seconds any one measurement may take before the run gives up.
STALL = 120.0


async def _within(d: defer.Deferred, what: str):
    """Wait for C{d}; L{BenchError} if it takes more than L{STALL} seconds."""
    d.addTimeout(STALL, reactor)
    try:
        return await d
    except defer.TimeoutError:
        raise BenchError(f"{what}: nothing happened for {STALL:.0f} s") from None


async def bulk(session: Session, size: int, seed: bytes) -> float:
    """
    The agent sends C{size} bytes to the operator (a screen going out);
    returns MB/s from the first write to the last byte received, after
    checking that the bytes arrived intact.
    """
    receiver = support.Receiver(size)
    session.operator_leg.on_data = receiver.received
    sender = support.Sender(session.agent_leg.transport, size, seed)
    started = time.perf_counter()
    sender.start()
    sent, received = await _within(
        defer.gatherResults([sender.done, receiver.done]), f"{session.way}: bulk transfer"
    )
    seconds = time.perf_counter() - started
    if receiver.count != size or received != sent:
        raise BenchError(f"{session.way}: the operator got {receiver.count} bytes of {size}, or other bytes")
    return size / seconds / 1e6


class _PingPong:
    """The operator sends C{size} bytes, the agent echoes them, the operator times each round trip."""

    def __init__(self, session: Session, count: int, size: int):
        self.session = session
        self.count = count
        self.payload = os.urandom(size)
        self.trips: list[float] = []
        self.waiting = 0
        self.sent_at = 0.0
        self.done = defer.Deferred()
        session.agent_leg.on_data = session.agent_leg.transport.write
        session.operator_leg.on_data = self._echoed

    def send(self):
        self.waiting = len(self.payload)
        self.sent_at = time.perf_counter()
        self.session.operator_leg.transport.write(self.payload)

    def _echoed(self, data: bytes):
        self.waiting -= len(data)
        if self.waiting > 0:
            return
        self.trips.append(time.perf_counter() - self.sent_at)
        if self.waiting < 0:
            extra = -self.waiting
            self.done.errback(BenchError(f"{self.session.way}: {extra} bytes more came back than were sent"))
        elif len(self.trips) < self.count:
            self.send()
        else:
            self.done.callback(self.trips)


async def round_trips(session: Session, count: int, warmup: int, size: int = 64) -> list[float]:
    """C{count} round trips of C{size} bytes operator -> agent -> operator (seconds each), after C{warmup}."""
    pings = _PingPong(session, warmup + count, size)
    pings.send()
    trips = await _within(pings.done, f"{session.way}: ping-pong")
    return trips[warmup:]


async def request_times(gateway: Gateway, settings, count: int, warmup: int) -> list[float]:
    """
    Seconds each of C{count} sequential C{GET /health} takes through the
    proxy C{settings} to the gateway's HTTP port, sent the way the tunnel
    sends its requests (same agent and connection pool), after C{warmup}.
    """
    address = gateway.address
    route = tunnel.proxy_route(reactor, address.host, address.http_port, settings)
    headers = Headers({b"cache-control": [b"no-store"]})
    for name, value in route.headers.items():
        headers.setRawHeaders(name, [value])
    times = []
    try:
        for _ in range(warmup + count):
            started = time.perf_counter()
            sent = route.agent.request(b"GET", route.base + b"/health", headers)
            response = await _within(sent, "GET /health")
            await _within(web.readBody(response), "GET /health's body")
            times.append(time.perf_counter() - started)
            if response.code != 200:
                raise BenchError(f"GET /health through the proxy answered {response.code}")
    finally:
        await route.close()
    return times[warmup:]


@attrs.frozen
class PathFound:
    """How the ladder fared once."""

    seconds: float
    winner: str
    lines: tuple[str, ...]


async def time_to_path(gateway: Gateway, hole_port: int) -> PathFound:
    """
    Race the ladder (fresh memory) with the raw port replaced by C{hole_port},
    which accepts TCP and never answers; the seconds until C{connect()}
    returns, and which way won.
    """
    hole = attrs.evolve(gateway.address, raw_port=hole_port)
    started = time.perf_counter()
    connection, report = await _within(
        defer.ensureDeferred(gateway.racing_ladder(hole).connect(commands.ROLE_AGENT)), "the ladder"
    )
    seconds = time.perf_counter() - started
    await support.close(connection)
    return PathFound(seconds, report.winner, tuple(report.lines()))


def established_to(port: int) -> int:
    """How many TCP connections on 127.0.0.1 to C{port} are established (from /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.split(":")[1], 16) == port:
                count += 1
    return count
