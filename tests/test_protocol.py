"""
The gateway protocol in memory (no sockets, a test clock): what each kind
of bad input gets, and that it disturbs nothing else.
"""

import attrs
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.test import iosim
from twisted.trial import unittest

from gateway import config as configuration
from gateway.passwords import hash_password, verify_password
from gateway.protocol import ConnectionLimits, GatewayProtocol
from gateway.switchboard import Switchboard
from tests import support
from wire import client, commands


class Harness:
    """A switchboard on a test clock, reached through in-memory connections."""

    def __init__(self, testcase, **overrides):
        self.testcase = testcase
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.store = support.MemoryStore(
            [support.operator_record(), support.operator_record("carol", "Carol", disabled=True)]
        )
        self.config = configuration.defaults(**overrides)
        self.switchboard = Switchboard(
            self.config,
            self.clock,
            self.store,
            check_password=lambda encoded, password: defer.succeed(verify_password(encoded, password)),
            hash_password=lambda password: defer.succeed(hash_password(password)),
        )
        self.pumps = []
        self.limits = ConnectionLimits.from_config(self.config)

    def connect(self, address="203.0.113.5", on_event=None):
        """An in-memory connection; returns (client, server, pump)."""
        peer = IPv4Address("TCP", address, 40000)

        def server_transport(protocol):
            return iosim.FakeTransport(protocol, isServer=True, peerAddress=peer)

        connection = iosim.connectedServerAndClient(
            lambda: GatewayProtocol(self.switchboard, self.clock, self.limits),
            lambda: client.GatewayClient(on_event),
            serverTransportFactory=server_transport,
            clock=self.clock,
        )
        self.pumps.append(connection[2])
        return connection

    def flush(self):
        """Move every connection's bytes until all are quiet."""
        for _ in range(10):
            if not any([pump.pump() for pump in self.pumps]):
                return

    def call(self, connection, command, *args, **arguments):
        """Send a command and pump; returns the Deferred of its answer."""
        protocol, _, pump = connection
        # AMP treats an answer as unhandled unless a callback is waiting for
        # it when it arrives, so chain one before pumping.
        answer = defer.Deferred()
        protocol.callRemote(command, *args, **arguments).chainDeferred(answer)
        self.flush()
        return answer

    def ok(self, connection, command, *args, **arguments):
        """The answer of a command that must succeed."""
        return self.testcase.successResultOf(self.call(connection, command, *args, **arguments))

    def error(self, connection, error, command, *args, **arguments):
        """The message of a command that must fail with C{error}."""
        failure = self.testcase.failureResultOf(self.call(connection, command, *args, **arguments), error)
        return str(failure.value)

    def hello(self, role, **kw):
        connection = self.connect(**kw)
        self.ok(connection, commands.Hello, version=commands.PROTOCOL_VERSION, role=role)
        return connection

    def operator(self, events=None, username="alice"):
        """A logged-in control connection of C{username}; its events go to C{events}."""
        events = [] if events is None else events
        connection = self.hello(
            commands.ROLE_OPERATOR, on_event=lambda c, a: events.append((c, a))
        )
        self.ok(connection, commands.Login, username=username, password=support.PASSWORD)
        return connection

    def code(self):
        return self.ok(self.operator(), commands.CreateSession)["routing"]


def closed(connection) -> bool:
    _, server, _ = connection
    transport = server.transport
    return transport is None or transport.disconnected or transport.disconnecting


class HelloTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness(self)

    def test_hello(self):
        c = self.h.connect()
        answer = self.h.ok(c, commands.Hello, version=1, role="agent")
        self.assertEqual(answer, {"version": 1, "gateway": self.h.config.gateway_name})

    def test_wrong_version_names_both(self):
        message = self.h.error(self.h.connect(), commands.VersionMismatch, commands.Hello, version=7, role="agent")
        self.assertEqual(
            message,
            "this client speaks Ponte protocol version 7, the gateway speaks version 1: update the client",
        )
        self.assertIn("hello-failed", self.h.store.kinds())

    def test_unknown_role(self):
        message = self.h.error(self.h.connect(), commands.HelloRequired, commands.Hello, version=1, role="root")
        self.assertIn("unknown role 'root'", message)

    def test_commands_before_hello(self):
        c = self.h.connect()
        self.assertEqual(
            self.h.error(c, commands.HelloRequired, commands.Lookup, routing="ABCD"), "send Hello first"
        )
        self.h.error(c, commands.HelloRequired, commands.Login, username="alice", password="x")

    def test_role_is_enforced(self):
        """An agent cannot create codes; an operator cannot join."""
        agent = self.h.hello(commands.ROLE_AGENT)
        self.h.error(agent, commands.HelloRequired, commands.CreateSession)
        self.h.error(agent, commands.HelloRequired, commands.Attach, client.leg_factory(support.StreamLeg()), ticket="x")
        operator = self.h.operator()
        self.h.error(operator, commands.HelloRequired, commands.Lookup, routing="ABCD")

    def test_garbage_before_hello(self):
        """Bytes that are not AMP close the connection; others are unaffected."""
        other = self.h.hello(commands.ROLE_AGENT)
        c = self.h.connect()
        c[0].transport.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.h.flush()
        self.assertTrue(closed(c))
        self.assertIn(("disconnect", "malformed message"), [(e[1], e[3]) for e in self.h.store.event_rows])
        self.h.error(other, commands.UnknownCode, commands.Lookup, routing="ZZZZ")

    def test_box_over_preauth_limit(self):
        """A peer that has not logged in cannot send more than the pre-auth limit."""
        c = self.h.connect()
        big = "x" * 60000
        d = self.h.call(c, commands.Login, username=big, password=big)
        self.failureResultOf(d)
        self.assertTrue(closed(c))
        refused = [e[3] for e in self.h.store.event_rows if e[1] == "refused"]
        self.assertEqual(refused, ["sent more than 16384 bytes before logging in or joining"])

    def test_box_over_box_limit_after_login(self):
        h = Harness(self, max_box_bytes=100_000)
        c = h.operator()
        # A box of many 60 KB values: each is legal, together too big.
        d = h.call(c, commands.CancelSession, routing="y" * 60000)
        self.failureResultOf(d, commands.UnknownCode)  # 60 KB: answered normally
        box = b"".join(
            len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v
            for k, v in [(b"_command", b"ListSessions"), (b"_ask", b"9")]
            + [(b"k%d" % i, b"v" * 60000) for i in range(3)]
        )
        c[0].transport.write(box)
        h.flush()
        self.assertTrue(closed(c))

    def test_silent_connection_is_closed_at_the_handshake_deadline(self):
        c = self.h.connect()
        self.h.clock.advance(14)
        self.assertFalse(closed(c))
        self.h.clock.advance(1)
        self.assertTrue(closed(c))
        self.assertIn("said nothing before the handshake deadline", [e[3] for e in self.h.store.event_rows])

    def test_hello_ends_the_handshake_deadline(self):
        """After Hello, a quiet client has the idle timeout, not 15 s."""
        c = self.h.hello(commands.ROLE_AGENT)
        self.h.clock.advance(899)
        self.assertFalse(closed(c))
        self.h.clock.advance(1)
        self.assertTrue(closed(c))

    def test_idle_control_connection_is_closed(self):
        c = self.h.operator()
        self.h.clock.advance(899)
        self.h.ok(c, commands.ListSessions)
        self.h.clock.advance(899)
        self.assertFalse(closed(c))
        self.h.clock.advance(1)
        self.assertTrue(closed(c))


class LoginTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness(self)

    def login(self, username, password, address="203.0.113.5"):
        c = self.h.hello(commands.ROLE_OPERATOR, address=address)
        d = self.h.call(c, commands.Login, username=username, password=password)
        self.addCleanup(d.addErrback, lambda f: None)
        return c, d

    def test_login(self):
        _, d = self.login("alice", support.PASSWORD)
        self.assertEqual(
            self.successResultOf(d),
            {"display_name": "Alice Agostini", "organisation": "Example Organisation", "record_sessions": False},
        )

    def test_recording_required_by_the_account_or_the_gateway(self):
        self.h.store.operators["alice"] = attrs.evolve(self.h.store.operators["alice"], must_record=True)
        self.assertTrue(self.successResultOf(self.login("alice", support.PASSWORD)[1])["record_sessions"])
        self.h.store.operators["alice"] = attrs.evolve(self.h.store.operators["alice"], must_record=False)
        self.h.switchboard.config = attrs.evolve(self.h.config, record_sessions=True)
        self.assertTrue(self.successResultOf(self.login("alice", support.PASSWORD)[1])["record_sessions"])

    def test_wrong_password_and_unknown_user_look_alike(self):
        _, wrong = self.login("alice", "nope")
        _, unknown = self.login("mallory", support.PASSWORD)
        for d in (wrong, unknown):
            self.assertEqual(
                str(self.failureResultOf(d, commands.AuthenticationFailed).value),
                "wrong username or password",
            )
        reasons = [e[3] for e in self.h.store.event_rows if e[1] == "login-failed"]
        self.assertEqual(reasons, ["wrong password", "unknown user"])

    def test_disabled_user(self):
        _, d = self.login("carol", support.PASSWORD)
        self.failureResultOf(d, commands.AccountDisabled)

    def test_disabled_user_with_wrong_password_is_just_wrong(self):
        _, d = self.login("carol", "nope")
        self.failureResultOf(d, commands.AuthenticationFailed)

    def test_repeated_failures_are_rate_limited(self):
        for _ in range(6):
            _, d = self.login("alice", "nope")
        self.failureResultOf(d, commands.AuthenticationFailed)
        _, d = self.login("alice", support.PASSWORD)
        message = str(self.failureResultOf(d, commands.RateLimited).value)
        self.assertEqual(message, "too many failed logins from this address; retry after 60 s")
        self.assertEqual(commands.RateLimited.retry_after(message), 60)

    def test_password_never_logged(self):
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.login("alice", support.PASSWORD)
        self.login("alice", "hunter2-secret")
        text = repr(logged) + repr(self.h.store.event_rows)
        self.assertNotIn(support.PASSWORD, text)
        self.assertNotIn("hunter2-secret", text)


class CodeTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness(self)

    def lookup(self, routing, address="203.0.113.5"):
        return self.h.call(self.h.hello(commands.ROLE_AGENT, address=address), commands.Lookup, routing=routing)

    def test_lookup(self):
        routing = self.h.code()
        answer = self.successResultOf(self.lookup(routing.lower()))
        self.assertEqual(answer["operator_name"], "Alice Agostini")
        self.assertEqual(answer["organisation"], "Example Organisation")
        self.assertEqual(answer["terms_version"], "1")
        self.assertEqual(answer["attach_deadline"], 60)
        self.assertIn("withdraw any permission", answer["terms_text"])

    def test_wrong_code(self):
        failure = self.failureResultOf(self.lookup("ZZZZ"), commands.UnknownCode)
        self.assertIn("check the code", str(failure.value))
        self.failureResultOf(self.lookup("ZZ*Z"), commands.UnknownCode)
        self.failureResultOf(self.lookup("ZZZZZZ"), commands.UnknownCode)

    def test_expired_code(self):
        routing = self.h.code()
        self.h.clock.advance(601)
        self.failureResultOf(self.lookup(routing), commands.CodeExpired)

    def test_cancelled_code(self):
        operator = self.h.operator()
        routing = self.h.ok(operator, commands.CreateSession)["routing"]
        self.h.ok(operator, commands.CancelSession, routing=routing)
        self.failureResultOf(self.lookup(routing), commands.CodeCancelled)

    def test_cancel_says_why_it_cannot(self):
        """Cancelling a joined or finished code is refused; the connection stays."""
        operator = self.h.operator()
        joined = self.h.ok(operator, commands.CreateSession)["routing"]
        agent = self.h.hello(commands.ROLE_AGENT)
        leg = client.AgentLeg()
        self.h.ok(agent, commands.Join, client.leg_factory(leg), routing=joined)
        self.h.error(operator, commands.CodeBusy, commands.CancelSession, routing=joined)
        stale = self.h.ok(operator, commands.CreateSession)["routing"]
        self.h.clock.advance(600)
        self.h.flush()
        self.assertEqual(str(self.failureResultOf(leg.paired, client.LegClosed).value), "no operator picked up")
        self.h.error(operator, commands.CodeExpired, commands.CancelSession, routing=stale)
        self.assertFalse(closed(operator))
        self.h.ok(operator, commands.ListSessions)

    def test_used_code_and_second_agent(self):
        """A second agent on a joined code is refused and logged."""
        routing = self.h.code()
        agent = self.h.hello(commands.ROLE_AGENT)
        leg = client.AgentLeg()
        self.h.ok(agent, commands.Join, client.leg_factory(leg), routing=routing)
        second = self.h.hello(commands.ROLE_AGENT, address="198.51.100.9")
        self.h.error(second, commands.CodeBusy, commands.Join, client.leg_factory(support.StreamLeg()), routing=routing)
        self.assertIn("a customer is already on this code", [e[3] for e in self.h.store.event_rows])
        agent[0].transport.loseConnection()
        self.h.flush()
        self.failureResultOf(leg.paired, client.LegClosed)
        self.failureResultOf(self.lookup(routing), commands.CodeUsed)

    def test_brute_force_from_one_address(self):
        """Five wrong codes a minute; then a retry-after, even for a right code."""
        routing = self.h.code()
        agent = self.h.hello(commands.ROLE_AGENT)
        for guess in ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF"]:
            self.h.error(agent, commands.UnknownCode, commands.Lookup, routing=guess)
        message = self.h.error(agent, commands.RateLimited, commands.Lookup, routing=routing)
        self.assertEqual(commands.RateLimited.retry_after(message), 60)
        self.failureResultOf(self.lookup("GGGG", address="198.51.100.1"), commands.UnknownCode)
        self.h.clock.advance(60)
        self.h.ok(agent, commands.Lookup, routing=routing)

    def test_brute_force_from_many_addresses_raises_the_alarm(self):
        h = Harness(self, global_failed_lookups_per_minute=20)
        alarms = []

        def observe(event):
            if "ALARM" in event.get("log_format", ""):
                alarms.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        for n in range(30):
            c = h.hello(commands.ROLE_AGENT, address=f"198.51.100.{n}")
            h.error(c, commands.UnknownCode, commands.Lookup, routing="ZZZZ")
        self.assertEqual(len(alarms), 1)
        self.assertEqual(h.store.kinds().count("alarm"), 1)

    def test_code_and_ticket_are_never_logged(self):
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        events = []
        operator = self.h.operator(events)
        routing = self.h.ok(operator, commands.CreateSession)["routing"]
        self.successResultOf(self.lookup(routing))
        agent = self.h.hello(commands.ROLE_AGENT)
        self.h.ok(agent, commands.Join, client.leg_factory(client.AgentLeg()), routing=routing)
        ticket = events[-1][1]["ticket"]
        data = self.h.hello(commands.ROLE_OPERATOR_DATA)
        self.h.ok(data, commands.Attach, client.leg_factory(support.StreamLeg()), ticket=ticket)
        for secret in (routing, ticket):
            self.assertNotIn(secret, repr(logged))
            self.assertNotIn(secret, repr(self.h.store.event_rows))


class ConfirmationTests(unittest.TestCase):
    def test_three_failures_burn_the_code(self):
        h = Harness(self)
        events = []
        operator = h.operator(events)
        routing = h.ok(operator, commands.CreateSession)["routing"]
        for attempt in range(1, 4):
            agent = h.hello(commands.ROLE_AGENT)
            leg = client.AgentLeg()
            h.ok(agent, commands.Join, client.leg_factory(leg), routing=routing)
            ticket = events[-1][1]["ticket"]
            data = h.hello(commands.ROLE_OPERATOR_DATA)
            h.ok(data, commands.Attach, client.leg_factory(support.StreamLeg()), ticket=ticket)
            self.successResultOf(leg.paired)
            answer = h.ok(operator, commands.ReportConfirmationFailure, routing=routing)
            self.assertEqual(answer, {"failures": attempt, "burnt": attempt == 3})
            h.flush()
            self.assertTrue(closed(agent))
        check = h.hello(commands.ROLE_AGENT)
        h.error(check, commands.CodeUsed, commands.Lookup, routing=routing)
