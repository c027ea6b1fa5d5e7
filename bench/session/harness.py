"""
What the session benchmark runs on: the gateway in its own process (C{twistd
ponte}, made as the relay benchmark makes it), one operator's desk logged in
on it, and, in this process on the reactor, whole sessions (agent and
console session cores with the tests' doubles for their user interfaces and
the agent's platform) or plain paired relays (two legs, no inner TLS, no AMP).
"""

import os
import time

from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from twisted.python import failure

from agent.session import AgentSession
from bench.relay import relays
from bench.relay.endpoints import HOST
from bench.relay.errors import BenchError
from console.desk import Desk
from gateway import pki
from tests import session_doubles
from wire import client, commands

# Seconds any one step may take before the run gives up.
STALL = 120.0


async def within(d, what: str, seconds: float = STALL):
    """Wait for C{d}; L{BenchError} if it takes more than C{seconds}."""
    d = defer.ensureDeferred(d) if not isinstance(d, defer.Deferred) else d
    d.addTimeout(seconds, reactor)
    try:
        return await d
    except defer.TimeoutError:
        raise BenchError(f"{what}: nothing happened for {seconds:.0f} s") from None


def first(*ds: defer.Deferred) -> defer.Deferred:
    """Fires with the result (or failure) of whichever of C{ds} fires first."""
    out = defer.Deferred()

    def settle(result):
        if not out.called:
            out.callback(result) if not isinstance(result, failure.Failure) else out.errback(result)

    for d in ds:
        d.addBoth(settle)
    return out


class _Stamped:
    """
    Mixed into the tests' UI doubles: the C{perf_counter} time of the first
    call of each name, and a hook called on every call.
    """

    def _note(self, name, *arguments):
        self.stamps.setdefault(name, time.perf_counter())
        self.hook(name, arguments)
        super()._note(name, *arguments)


class AgentUI(_Stamped, session_doubles.AgentUI):
    def __init__(self, picked=None):
        super().__init__(picked=picked)
        self.stamps: dict[str, float] = {}
        self.hook = lambda name, arguments: None


class ConsoleUI(_Stamped, session_doubles.ConsoleUI):
    def __init__(self):
        super().__init__()
        self.stamps: dict[str, float] = {}
        self.hook = lambda name, arguments: None


class _Connections:
    """Every gateway connection the benchmark opened, to close them all."""

    def __init__(self, port: int, ca_pem: bytes):
        self._port, self._ca = port, ca_pem
        self.open: set[client.GatewayClient] = set()

    async def connect(self, on_event=None) -> client.GatewayClient:
        connection = await client.connect(reactor, HOST, self._port, self._ca, on_event)
        self.open.add(connection)
        connection.lost.addBoth(lambda result: self.open.discard(connection) or result)
        return connection

    async def connect_as(self, role: str, on_event=None) -> client.GatewayClient:
        """A connection that has said C{Hello} in C{role} (the desk's way to the gateway)."""
        connection = await self.connect(on_event)
        await connection.hello(role)
        return connection

    def close(self, connection: client.GatewayClient):
        """Close a connection at once; fires when it is closed."""
        if connection.transport is not None and not connection.lost.called:
            connection.transport.abortConnection()
        return connection.lost

    async def close_all(self) -> None:
        await defer.DeferredList([self.close(c) for c in list(self.open)])


class Gateway:
    """The gateway's process and the benchmark's operator, logged in on its desk."""

    def __init__(self, directory: str):
        self.directory = directory
        self.setup = relays.make_gateway_state(directory)
        layout = pki.Layout(os.path.join(directory, "state", "tls"))
        with open(self.setup.files.ca, "rb") as f:
            self.ca_pem = f.read()
        with open(layout.path(layout.operator_ca_certificate), "rb") as f:
            self.operator_ca_pem = f.read()
        self.process = relays.start_gateway(self.setup, directory)
        self.connections = _Connections(self.setup.port, self.ca_pem)
        self.desk: Desk | None = None
        # routing part -> Deferred fired with the ticket when the customer waits
        self._waiting: dict[str, defer.Deferred] = {}
        self._count = 0

    def fresh_directory(self, name: str) -> str:
        """A new directory under the benchmark's temporary directory."""
        self._count += 1
        path = os.path.join(self.directory, f"{name}-{self._count}")
        os.makedirs(path, mode=0o700)
        return path

    async def log_in(self) -> None:
        """The operator's desk: control connection, login, operator certificate."""
        self.desk = Desk(reactor, self.connections.connect_as, self.fresh_directory("console-received"),
                         self._event)
        await within(self.desk.login(relays.OPERATOR, self.setup.password), "the operator's login")

    def _event(self, command, arguments) -> None:
        if command is commands.CustomerWaiting:
            waiter = self._waiting.pop(arguments["routing"], None)
            if waiter is not None:
                waiter.callback(arguments["ticket"])

    def customer_waits(self, routing: str) -> defer.Deferred:
        """Fires (with the ticket) as soon as the gateway tells the desk that a customer waits."""
        d = self._waiting[routing] = defer.Deferred()
        return d

    async def agent_connection(self, routing: str) -> client.GatewayClient:
        """An agent's connection that said Hello and looked C{routing} up, as before C{Join}."""
        connection = await self.connections.connect()
        await connection.hello(commands.ROLE_AGENT)
        await connection.callRemote(commands.Lookup, routing=routing)
        return connection

    def stop(self) -> None:
        self.process.stop()


class Session:
    """One whole session, agent and console in this process, and its timestamps."""

    def __init__(self, gateway: Gateway, agent_directory: str, picked: str | None = None):
        self.gateway = gateway
        self.agent_ui = AgentUI(picked)
        self.console_ui = ConsoleUI()
        self.platform = session_doubles.Platform(agent_directory)
        self.agent: AgentSession | None = None
        self.console = None
        self.connection = None
        self.joined_at = self.paired_at = None

    async def start(self) -> None:
        """
        New code, agent's Hello and Lookup, then (timed from here) Join; the
        console picks the customer up the moment the gateway tells it, and
        both sides confirm the code.  Returns once both show "verified".
        """
        desk = self.gateway.desk
        live = await desk.new_code()
        waiting = self.gateway.customer_waits(live.routing)
        waiting.addCallback(lambda ticket: defer.ensureDeferred(desk.pick_up(live.routing, self.console_ui)))
        waiting.addCallback(self._picked_up)
        self.connection = await self.gateway.agent_connection(live.routing)
        self.agent = AgentSession(reactor, self.agent_ui, self.platform, live.code(), self.gateway.operator_ca_pem)
        alarm = defer.Deferred()

        def hook(name, arguments):
            if name in ("alarm", "ended") and not alarm.called:
                # Later, not from within the session core's call to its UI.
                stopped = BenchError(f"the session stopped before it was verified: {arguments[0]}")
                reactor.callLater(0, lambda: alarm.called or alarm.errback(stopped))

        self.agent_ui.hook = self.console_ui.hook = hook
        self.joined_at = time.perf_counter()
        joined = defer.ensureDeferred(self.agent.join(self.connection, live.routing))
        joined.addCallback(lambda _: setattr(self, "paired_at", time.perf_counter()))
        everything = defer.gatherResults(
            [joined, waiting, self.agent_ui.next("verified"), self.console_ui.next("verified")],
            consumeErrors=True,
        ).addErrback(lambda f: f.value.subFailure if f.check(defer.FirstError) else f)
        try:
            await within(first(everything, alarm), "a session's start")
        finally:
            self.agent_ui.hook = self.console_ui.hook = lambda name, arguments: None
            desk.codes.pop(live.routing, None)

    def _picked_up(self, console):
        self.console = console
        return console

    # The agent's "verified" comes last: the console is verified when it answers Confirm.
    def timings(self) -> dict[str, float]:
        """Seconds from Join to: paired, inner TLS done (agent), verified (agent)."""
        stamps = self.agent_ui.stamps
        return {
            "paired": self.paired_at - self.joined_at,
            "inner_tls": stamps["operator_identified"] - self.joined_at,
            "verified": stamps["verified"] - self.joined_at,
        }

    async def grant(self, scopes: list[str]) -> None:
        """The console asks for C{scopes}; the customer's double allows them."""
        answer = await within(self.console.request_consent(scopes), "asking for consent")
        if sorted(answer["granted"]) != sorted(scopes):
            raise BenchError(f"the customer's double did not grant {scopes}: {answer}")

    async def end(self) -> None:
        """End and close both sides (as the tests do), wait for both ends, close the agent's connection."""
        for core in (self.console, self.agent):
            if core is not None:
                core.close()
        waits = [core.ended for core in (self.console, self.agent) if core is not None]
        await within(defer.gatherResults(waits), "ending a session", 30)
        if self.connection is not None:
            await self.gateway.connections.close(self.connection)


class CountingLeg(Protocol):
    """A relay leg's far end: counts what arrives, keeps the last bytes, fires C{done} at C{total}."""

    TAIL = 64

    def __init__(self):
        self.expected = None
        self.count = 0
        self.tail = b""
        self.done = defer.Deferred()
        self.closed = defer.Deferred()

    def expect(self, total: int) -> None:
        self.expected, self.count, self.tail, self.done = total, 0, b"", defer.Deferred()

    def dataReceived(self, data):
        self.count += len(data)
        self.tail = (self.tail + data[-self.TAIL:])[-self.TAIL:]
        if self.expected is not None and self.count >= self.expected and not self.done.called:
            self.done.callback(time.perf_counter())

    def connectionLost(self, reason):
        if not self.closed.called:
            self.closed.callback(None)


class CountingAgentLeg(client.AgentLeg):
    """The agent's relay leg, relayed bytes going to a L{CountingLeg}."""

    def __init__(self):
        super().__init__()
        self.counter = CountingLeg()

    def relayed(self, data):
        self.counter.dataReceived(data)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.counter.connectionLost(reason)


class RawPair:
    """
    A paired raw relay on the same gateway, made by the same flow as a
    session (code, Lookup, Join, CustomerWaiting, Attach) but carrying the
    bytes as they are: the legs' outer TLS to the gateway, nothing inside.
    """

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.agent_leg = CountingAgentLeg()
        self.operator_leg = CountingLeg()
        self.connections: list[client.GatewayClient] = []

    async def start(self) -> None:
        desk, gateway = self.gateway.desk, self.gateway
        live = await desk.new_code()
        waiting = gateway.customer_waits(live.routing)
        agent = await gateway.agent_connection(live.routing)
        self.connections.append(agent)
        await agent.switch(commands.Join, self.agent_leg, routing=live.routing)
        ticket = await within(waiting, "the customer-waiting event")
        desk.waiting.pop(live.routing, None)
        desk.codes.pop(live.routing, None)
        data = await gateway.connections.connect()
        self.connections.append(data)
        await data.hello(commands.ROLE_OPERATOR_DATA)
        await data.switch(commands.Attach, self.operator_leg, ticket=ticket)
        await within(self.agent_leg.paired, "pairing a raw relay")

    async def end(self) -> None:
        for connection in self.connections:
            await self.gateway.connections.close(connection)
