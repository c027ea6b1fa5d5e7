"""
Memory of a relay holding many idle paired sessions: its resident set
before and after pairing them, each pair having carried one small message
each way (as a session that finished its handshakes and went quiet).
"""

import concurrent.futures
import contextlib
import time

import attrs

from bench.relay import ampsync, endpoints, procstat, traffic
from bench.relay.errors import BenchError
from wire import commands

SETTLE_SECONDS = 1.0
# Sessions set up at once through the gateway: each set-up mostly waits on
# round trips, so overlapping them keeps the phase short.
GATEWAY_CONCURRENCY = 32


@attrs.frozen
class IdleMemory:
    """RSS of a relay before and after C{sessions} idle paired sessions."""

    sessions: int
    before_kib: int
    after_kib: int
    seconds: float

    @property
    def per_session_kib(self) -> float:
        """Growth of the resident set per idle session, KiB."""
        return (self.after_kib - self.before_kib) / self.sessions


def _measure(pid: int, count: int, pair) -> IdleMemory:
    """
    Open C{count} pairs with C{pair(stack)} (which registers the sockets it
    opens on C{stack}), then read the relay's RSS; everything is closed after.
    """
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        before = procstat.rss_kib(pid)
        pair(stack)
        time.sleep(SETTLE_SECONDS)
        after = procstat.rss_kib(pid)
    return IdleMemory(count, before, after, time.monotonic() - start)


def gateway(port: int, context, control: ampsync.AmpChannel, pid: int, count: int) -> IdleMemory:
    """C{count} paired sessions through the gateway, from one operator."""

    def pair(stack: contextlib.ExitStack) -> None:
        routings = ampsync.create_codes(control, count)

        def join(routing: str) -> ampsync.AmpChannel:
            channel = ampsync.join(port, context, routing)
            stack.callback(channel.sock.close)
            return channel

        def attach(routing: str, agent: ampsync.AmpChannel) -> None:
            if routing not in tickets:
                raise BenchError(f"no CustomerWaiting event for session {routing}")
            operator = ampsync.attach(port, context, tickets[routing])
            stack.callback(operator.close)
            traffic.probe(operator, ampsync.paired(agent))

        with concurrent.futures.ThreadPoolExecutor(GATEWAY_CONCURRENCY) as pool:
            agents = list(pool.map(join, routings))
            tickets = {}
            for _ in range(count):
                waiting = control.event(commands.CustomerWaiting)
                tickets[waiting["routing"]] = waiting["ticket"]
            list(pool.map(attach, routings, agents))

    return _measure(pid, count, pair)


def haproxy(port: int, listener, client, server, pid: int, count: int) -> IdleMemory:
    """C{count} connection pairs through haproxy to C{listener}."""

    def pair(stack: contextlib.ExitStack) -> None:
        for _ in range(count):
            front = endpoints.connect(port, client)
            stack.callback(front.close)
            back = endpoints.accept(listener, server)
            stack.callback(back.close)
            traffic.probe(front, back)

    return _measure(pid, count, pair)
