"""
Helpers shared by the tests: a gateway state directory, an in-memory store,
a gateway service on an ephemeral loopback port, and test clients.
"""

import hashlib
import os
import time

import attrs
from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from gateway import config as configuration
from gateway import passwords, pki, records, schema, totp
from gateway.service import GatewayService
from gateway.store import IStore
from wire import client, commands

PASSWORD = "correct horse battery staple"
_HASH = passwords.hash_password(PASSWORD)


def make_state(directory: str, operators=(("alice", "Alice Agostini", False),)) -> pki.Layout:
    """
    A state directory with keys, a database and the given operators:
    (username, display name, disabled[, group]) each.
    """
    os.makedirs(directory, exist_ok=True)
    layout = pki.Layout(os.path.join(directory, "tls"))
    pki.initialise(layout, "Test Org", ["localhost", "127.0.0.1"])
    connection = records.open_database(os.path.join(directory, "ponte.sqlite3"))
    schema.migrate(connection)
    for username, display, disabled, *group in operators:
        records.add_operator(
            connection.cursor(),
            records.Operator(username, display, _HASH, False, disabled, time.time(), *group),
        )
    connection.close()
    return layout


def make_config(directory: str, **overrides) -> configuration.GatewayConfig:
    """A configuration for a state directory made by L{make_state}."""
    tls = os.path.join(directory, "tls")
    values = dict(
        state_dir=directory,
        raw_listen="tcp:0:interface=127.0.0.1",
        https_listen="tcp:0:interface=127.0.0.1",
        http_listen="tcp:0:interface=127.0.0.1",
        certificate=os.path.join(tls, "gateway.crt"),
        key=os.path.join(tls, "gateway.key"),
        organisation="Test Org",
    )
    values.update(overrides)
    return configuration.defaults(**values)


@implementer(IStore)
class MemoryStore:
    """L{IStore} in memory, for tests without a database."""

    def __init__(self, operators=()):
        self.operators = {op.username: op for op in operators}
        self.event_rows = []
        self.sessions = {}

    def get_operator(self, username):
        return defer.succeed(self.operators.get(username))

    def set_password(self, username, password_hash):
        self.operators[username] = attrs.evolve(
            self.operators[username], password_hash=password_hash, must_change_password=False)
        return defer.succeed(None)

    def use_totp_step(self, username, step):
        operator = self.operators[username]
        if operator.totp_last_step >= step:
            return defer.succeed(False)
        self.operators[username] = attrs.evolve(operator, totp_last_step=step)
        return defer.succeed(True)

    def add_event(self, at, kind, address, reason="", session_id=None):
        self.event_rows.append((at, kind, address, reason, session_id))
        return defer.succeed(None)

    def purge_events(self, before):
        keep = [e for e in self.event_rows if e[0] >= before]
        gone = len(self.event_rows) - len(keep)
        self.event_rows = keep
        return defer.succeed(gone)

    def add_session(self, session_id, operator, created_at):
        self.sessions[session_id] = {"operator": operator, "created_at": created_at}
        return defer.succeed(None)

    def update_session(self, session_id, **fields):
        self.sessions.setdefault(session_id, {}).update(fields)
        return defer.succeed(None)

    def get_session(self, session_id):
        return defer.succeed(self.sessions.get(session_id))

    def events(self, kind=None):
        return defer.succeed([e for e in self.event_rows if kind is None or e[1] == kind])

    def close(self):
        pass

    def kinds(self):
        """The kinds of the events recorded so far, in order."""
        return [e[1] for e in self.event_rows]


def operator_record(username="alice", display="Alice Agostini", disabled=False, group=""):
    """An operator whose password is L{PASSWORD}."""
    return records.Operator(username, display, _HASH, False, disabled, 0.0, group)


class RunningGateway:
    """A L{GatewayService} listening on an ephemeral port on 127.0.0.1."""

    OPERATORS = (("alice", "Alice Agostini", False), ("bob", "Bob Berg", False), ("carol", "Carol", True))

    def __init__(self, testcase, operators=OPERATORS, **overrides):
        """
        @param operators: the accounts, as for L{make_state}.
        @param overrides: configuration values, as for L{make_config}.
        """
        directory = testcase.mktemp()
        self.layout = make_state(directory, operators=operators)
        self.config = make_config(directory, **overrides)
        self.service = GatewayService(self.config, reactor)
        self.service.privilegedStartService()
        self.service.startService()
        testcase.addCleanup(self.service.stopService)
        self.port = self.service.raw.port.getHost().port
        self.https_port = self.service.https.port.getHost().port
        self.http_port = self.service.http.port.getHost().port
        with open(self.layout.path(self.layout.ca_certificate), "rb") as f:
            self.ca = f.read()
        self.switchboard = self.service.switchboard

    def change_operator(self, username: str, **changes) -> None:
        """Change an account in the gateway's database (as C{ponte-admin} would)."""
        connection = records.open_database(os.path.join(self.config.state_dir, "ponte.sqlite3"))
        try:
            records.update_operator(connection.cursor(), username, **changes)
        finally:
            connection.close()

    def enrol_totp(self, username: str) -> bytes:
        """Give C{username} an authenticator; its secret."""
        secret = totp.new_secret()
        key, _ = records.TranscriptKey.load_or_create(self.config.transcript_key_path)
        self.change_operator(username, totp_sealed=key.seal_secret(username, secret), totp_last_step=0)
        return secret

    async def connect(self, testcase, on_event=None):
        """
        A L{client.GatewayClient} connected to this gateway, closed (and
        waited for) when the test ends.
        """
        connection = await client.connect(reactor, "127.0.0.1", self.port, self.ca, on_event)
        testcase.addCleanup(close, connection)
        return connection

    async def operator(self, testcase, username="alice"):
        """A logged-in operator control connection and its event list."""
        events = []
        control = await self.connect(testcase, lambda command, arguments: events.append((command, arguments)))
        await control.hello(commands.ROLE_OPERATOR)
        await control.callRemote(commands.Login, username=username, password=PASSWORD)
        return control, events

    async def agent(self, testcase):
        """A connection that said Hello as an agent."""
        agent = await self.connect(testcase)
        await agent.hello(commands.ROLE_AGENT)
        return agent


def close(connection: client.GatewayClient):
    """Close a client connection at once; fires when it is closed."""
    if connection.transport is not None and not connection.lost.called:
        connection.transport.abortConnection()
    return connection.lost


def wait_for(predicate, timeout=10.0, interval=0.01):
    """Fires once C{predicate()} is true; fails after C{timeout} seconds."""
    d = defer.Deferred()
    deadline = reactor.seconds() + timeout

    def check():
        if predicate():
            d.callback(None)
        elif reactor.seconds() > deadline:
            d.errback(AssertionError(f"condition not met within {timeout} s"))
        else:
            reactor.callLater(interval, check)

    check()
    return d


def block(seed: bytes, size: int = 1 << 20) -> bytes:
    """C{size} deterministic pseudo-random bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


class Sender:
    """
    Writes C{total} bytes to a transport as a push-producer consumer would,
    pausing when the transport says so, and hashes what it sent.
    """

    def __init__(self, transport, total: int, seed: bytes):
        self.transport = transport
        self.remaining = total
        self.chunk = block(seed, 256 * 1024)
        self.sha = hashlib.sha256()
        self.paused = False
        self.done = defer.Deferred()

    def start(self):
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self):
        self.paused = False
        while not self.paused and self.remaining > 0:
            data = self.chunk[: min(len(self.chunk), self.remaining)]
            self.remaining -= len(data)
            self.sha.update(data)
            self.transport.write(data)
        if self.remaining == 0 and not self.done.called:
            self.transport.unregisterProducer()
            self.done.callback(self.sha.hexdigest())

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        self.paused = True


class Receiver:
    """Hashes received bytes and fires C{done} when C{total} have arrived."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0
        self.sha = hashlib.sha256()
        self.done = defer.Deferred()

    def received(self, data: bytes):
        self.count += len(data)
        self.sha.update(data)
        if self.count >= self.total and not self.done.called:
            self.done.callback(self.sha.hexdigest())


class StreamLeg(Protocol):
    """The operator's data leg in tests: hands bytes to a callback."""

    def __init__(self, on_data=lambda data: None):
        self.on_data = on_data
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.on_data(data)

    def connectionLost(self, reason):
        self.closed.callback(reason.value)


class TestAgentLeg(client.AgentLeg):
    """The agent's leg in tests: hands relayed bytes to a callback."""

    def __init__(self, on_data=lambda data: None):
        super().__init__()
        self.on_data = on_data
        self.closed = defer.Deferred()

    def relayed(self, data):
        self.on_data(data)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.closed.callback(reason.value)


async def pair(gateway: RunningGateway, testcase, agent_leg, operator_leg, agent=None):
    """
    Run the whole pairing flow on C{gateway}: an operator logs in and makes
    a code, an agent looks it up and joins with C{agent_leg}, the operator
    attaches C{operator_leg} with the ticket from its event.  C{agent} is
    the agent's connection (after Hello) if it came some other way than
    straight to the raw port.

    @return: the operator's control connection, its events and the routing part.
    """
    control, events = await gateway.operator(testcase)
    created = await control.callRemote(commands.CreateSession)
    if agent is None:
        agent = await gateway.agent(testcase)
    await agent.callRemote(commands.Lookup, routing=created["routing"])
    await agent.switch(commands.Join, agent_leg, routing=created["routing"])
    await wait_for(lambda: any(c is commands.CustomerWaiting for c, _ in events))
    ticket = [a for c, a in events if c is commands.CustomerWaiting][0]["ticket"]
    data = await gateway.connect(testcase)
    await data.hello(commands.ROLE_OPERATOR_DATA)
    await data.switch(commands.Attach, operator_leg, ticket=ticket)
    await agent_leg.paired
    return control, events, created["routing"]
