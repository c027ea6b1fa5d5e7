"""
Attacks on the end-to-end channel through a real gateway: a relay in the
middle with its own valid operator certificate, a relay that alters one
byte, and operator certificates the agent must not trust.
"""

import datetime
import os

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial import unittest

from gateway import pki, relay
from tests import session_support, support
from wire import commands, identity, tls
from wire.session_commands import SEND_FILE


def operator_certificate(layout, name="Mallory Middle", username="mallory", now=None, hours=1.0):
    """A key and a valid certificate from the gateway's own operator CA."""
    ca = pki.load_operator_ca(layout)
    request = identity.make_request(username)
    certificate = pki.issue_operator_certificate(
        request.request_pem, ca.certificate, ca.key, username=username, display_name=name,
        organisation="Test Org", group="", lifetime=datetime.timedelta(hours=hours),
        now=now or datetime.datetime.now(datetime.timezone.utc),
    )
    return pki.certificate_pem(certificate), request.key_pem()


class _Wire(StringTransport):
    """A transport whose writes go to a function."""

    def __init__(self, send):
        super().__init__()
        self._send = send

    def write(self, data):
        self._send(data)


class _Plain(Protocol):
    """The plaintext inside one of the interceptor's TLS ends, forwarded to the other end."""

    def __init__(self):
        self.other = None

    def dataReceived(self, data):
        self.other.transport.write(data)


class _One(Factory):
    def __init__(self, protocol):
        self.one = protocol

    def buildProtocol(self, addr):
        return self.one


class Interceptor:
    """
    A gateway in the middle: it terminates the inner TLS towards the agent
    with its own valid operator certificate (same operator CA), opens its
    own inner TLS to the console, and passes the plaintext between them
    (so the SPAKE2 messages go through unchanged).  It knows the routing
    part only, as any gateway does.
    """

    def __init__(self, testcase, layout, operator_ca_pem):
        self.certificate, self.key = operator_certificate(layout)
        self.operator_ca_pem = operator_ca_pem
        self._ends = {}
        interceptor = self

        def dataReceived(leg, data):
            interceptor._end(leg.relay, leg.side).dataReceived(data)

        testcase.patch(relay.RelayLeg, "dataReceived", dataReceived)

    def _end(self, spliced, side):
        if spliced not in self._ends:
            to_agent, to_console = _Plain(), _Plain()
            to_agent.other, to_console.other = to_console, to_agent
            facing_agent = TLSMemoryBIOFactory(
                tls.inner_server_options(self.certificate, self.key), False, _One(to_agent)
            ).buildProtocol(None)
            facing_console = TLSMemoryBIOFactory(
                tls.InnerClientOptions(self.operator_ca_pem), True, _One(to_console)
            ).buildProtocol(None)
            facing_agent.makeConnection(_Wire(lambda data: spliced.agent.transport.write(data)))
            facing_console.makeConnection(_Wire(lambda data: spliced.operator.transport.write(data)))
            self._ends[spliced] = {relay.AGENT: facing_agent, relay.OPERATOR: facing_console}
        return self._ends[spliced][side]


RUNS = 100


class InterceptionTests(unittest.TestCase):
    timeout = 300

    async def test_an_honest_relay_verifies_every_time(self):
        gateway = support.RunningGateway(self)
        desk = await session_support.logged_in_desk(self, gateway)
        for run in range(RUNS):
            s = await session_support.start(self, gateway=gateway, desk=desk)
            self.assertEqual(s.agent.state, "verified", f"run {run}")
            self.assertEqual(s.agent.operator.display_name, "Alice Agostini")
            s.console.end("next run")
            s.agent.close()
            await defer.gatherResults([s.agent.ended, s.console.ended])

    async def test_a_relay_in_the_middle_is_caught_every_time(self):
        gateway = support.RunningGateway(self)
        Interceptor(self, gateway.layout, session_support.operator_ca(gateway))
        desk = await session_support.logged_in_desk(self, gateway)
        for run in range(RUNS):
            s = await session_support.start(self, gateway=gateway, desk=desk, verified=False)
            (agent_alarm,) = await s.agent_ui.next("alarm")
            (console_alarm,) = await s.console_ui.next("alarm")
            self.assertIn("interception", agent_alarm.lower(), f"run {run}")
            self.assertIn("interception", console_alarm.lower(), f"run {run}")
            await defer.gatherResults([s.agent.ended, s.console.ended])
            self.assertEqual(s.agent_ui.named("verified") + s.console_ui.named("verified"), [])
            # The console reported it; the gateway counts it against the code.
            session = gateway.switchboard.router.get(s.routing)
            await support.wait_for(lambda: session.confirmation_failures == 1)


class IntegrityTests(unittest.TestCase):
    """A relay that alters the stream after verification stops the session at once."""

    timeout = 60

    async def _tamper(self, alter):
        tap = session_support.Tap(self)
        s = await session_support.start(self)
        await s.console.send_chat("before")
        await s.agent_ui.next("chat_received")
        altered = []

        def once(side, data):
            if side != relay.OPERATOR or altered:
                return data
            altered.append(data)
            return alter(data)

        tap.alter = once
        s.console.send_chat("altered on the way").addErrback(lambda f: None)
        # A dropped byte shows when the next record completes the short one.
        await support.wait_for(lambda: altered)
        s.console.send_chat("and one more").addErrback(lambda f: None)
        (reason,) = await s.agent_ui.next("ended")
        self.assertIn("integrity error", reason)
        await s.console.ended
        self.assertEqual([m.text for (m,) in s.agent_ui.named("chat_received")], ["before"])

    def test_one_flipped_byte(self):
        return defer.ensureDeferred(self._tamper(lambda data: data[:10] + bytes([data[10] ^ 1]) + data[11:]))

    def test_one_dropped_byte(self):
        return defer.ensureDeferred(self._tamper(lambda data: data[:10] + data[11:]))

    def test_one_injected_byte(self):
        return defer.ensureDeferred(self._tamper(lambda data: data[:10] + b"\x00" + data[10:]))

    async def test_a_flipped_byte_mid_file_leaves_no_file(self):
        tap = session_support.Tap(self)
        s = await session_support.start(self)
        await s.console.request_consent([SEND_FILE])
        content = support.block(b"mid-file", 8 * 1024 * 1024)
        source = self.mktemp()
        with open(source, "wb") as f:
            f.write(content)
        seen = [0]

        def alter(side, data):
            seen[0] += len(data) if side == relay.OPERATOR else 0
            if side == relay.OPERATOR and 4 * 1024 * 1024 < seen[0] and not flipped:
                flipped.append(1)
                return data[:-5] + bytes([data[-5] ^ 0x80]) + data[-4:]
            return data

        flipped = []
        tap.alter = alter
        with self.assertRaises(Exception):
            await s.console.send_file(source)
        (reason,) = await s.agent_ui.next("ended")
        self.assertIn("integrity error", reason)
        directory = s.platform.receive_directory
        names = os.listdir(directory)
        self.assertTrue(all(n.startswith(".ponte-partial-") for n in names), names)
        for name in names:
            with open(os.path.join(directory, name), "rb") as f:
                kept = f.read()
            self.assertEqual(kept, content[: len(kept)])


class OperatorCertificateTests(unittest.TestCase):
    timeout = 30

    async def test_a_certificate_from_another_ca_is_refused(self):
        gateway = support.RunningGateway(self)
        other_ca, _ = pki.make_ca("Someone else's operator CA", "Other Org")
        s = await session_support.start(self, gateway=gateway, agent_ca=pki.certificate_pem(other_ca), verified=False)
        (message,) = await s.agent_ui.next("alarm")
        self.assertIn("not issued by this organisation's operator CA", message)
        await defer.gatherResults([s.agent.ended, s.console.ended])
        self.assertEqual(s.agent_ui.named("operator_identified"), [])
        self.assertEqual(s.console_ui.named("verified"), [])

    async def test_an_expired_certificate_is_refused(self):
        gateway = support.RunningGateway(self)
        desk = await session_support.logged_in_desk(self, gateway)
        long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=10)
        desk.certificate_pem, desk._key_pem = operator_certificate(
            gateway.layout, "Alice Agostini", "alice", now=long_ago, hours=8)
        s = await session_support.start(self, gateway=gateway, desk=desk, verified=False)
        (message,) = await s.agent_ui.next("alarm")
        self.assertIn("has expired", message)
        await defer.gatherResults([s.agent.ended, s.console.ended])


class WrongCodeTests(unittest.TestCase):
    timeout = 30

    async def test_a_mistyped_secret_part_stops_both_and_is_counted(self):
        gateway = support.RunningGateway(self)
        desk = await session_support.logged_in_desk(self, gateway)
        s = await session_support.start(self, gateway=gateway, desk=desk, verified=False,
                                        typed=lambda live: live.routing + _other(live.secret))
        (agent_alarm,) = await s.agent_ui.next("alarm")
        (console_alarm,) = await s.console_ui.next("alarm")
        self.assertIn("does not match the operator's", agent_alarm)
        self.assertIn("wrong code", console_alarm)
        await defer.gatherResults([s.agent.ended, s.console.ended])
        session = gateway.switchboard.router.get(s.routing)
        await support.wait_for(lambda: session.confirmation_failures == 1)
        # The code is not burnt: typed right, it works.
        again = await session_support.start(self, gateway=gateway, desk=desk, live=desk.codes[s.routing])
        self.assertEqual(again.agent.state, "verified")

    async def test_three_wrong_attempts_burn_the_code(self):
        gateway = support.RunningGateway(self)
        desk = await session_support.logged_in_desk(self, gateway)
        live = await desk.new_code()
        for attempt in range(3):
            s = await session_support.start(self, gateway=gateway, desk=desk, live=live, verified=False,
                                            typed=lambda live: live.routing + _other(live.secret))
            await defer.gatherResults([s.agent.ended, s.console.ended])
            await support.wait_for(lambda: gateway.switchboard.router.get(live.routing).confirmation_failures == attempt + 1)
        connection = await gateway.agent(self)
        with self.assertRaises(Exception) as caught:
            await connection.callRemote(commands.Lookup, routing=live.routing)
        self.assertIn("too often", str(caught.exception))


def _other(secret: str) -> str:
    """A secret part that differs from C{secret} in its last character."""
    return secret[:-1] + ("0" if secret[-1] != "0" else "1")
