"""
Bad input and failures over real TLS sockets on 127.0.0.1: TLS policy, a
stalled reader, a dropped leg, the attach deadline, the pre-attach buffer.
"""

import hashlib
import os

from twisted.internet import defer, reactor, utils
from twisted.trial import unittest

from gateway import check, pki
from tests import support
from wire import client, commands

MiB = 1 << 20


def s_client(port, *options, stdin=b""):
    """Run openssl s_client against the gateway; fires with its output."""
    d = utils.getProcessOutputAndValue(
        "openssl",
        ["s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *options],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdinBytes=stdin,
    )
    return d.addCallback(lambda result: (result[0] + result[1]).decode("utf-8", "replace"))


class TLSPolicyTests(unittest.TestCase):
    """What TLS the gateway accepts, as seen by real clients."""

    def setUp(self):
        self.gateway = support.RunningGateway(self)

    @defer.inlineCallbacks
    def test_tls_1_1_is_refused(self):
        output = yield s_client(self.gateway.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertIn("alert protocol version", output)

    @defer.inlineCallbacks
    def test_cbc_suites_are_refused(self):
        for suite in ("ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"):
            output = yield s_client(self.gateway.port, "-tls1_2", "-cipher", suite)
            self.assertIn("handshake failure", output, suite)

    @defer.inlineCallbacks
    def test_tls_1_2_aead_suites_are_accepted(self):
        for suite in ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            output = yield s_client(self.gateway.port, "-tls1_2", "-cipher", suite)
            self.assertIn(f"Cipher is {suite}", output)
        output = yield s_client(self.gateway.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertIn("handshake failure", output)

    @defer.inlineCallbacks
    def test_no_renegotiation_or_compression(self):
        output = yield s_client(self.gateway.port, "-tls1_2", stdin=b"R\n")
        self.assertIn("Compression: NONE", output)
        self.assertIn("RENEGOTIATING", output)
        self.assertIn("no renegotiation", output)

    @defer.inlineCallbacks
    def test_hybrid_post_quantum_key_exchange(self):
        """Our own clients and the gateway agree on X25519MLKEM768 over TLS 1.3."""
        connection = yield self.gateway.connect(self)
        yield connection.hello(commands.ROLE_AGENT)
        tls = connection.transport.getHandle()
        self.assertEqual(tls.get_protocol_version_name(), "TLSv1.3")
        self.assertEqual(tls.get_group_name(), "X25519MLKEM768")

    @defer.inlineCallbacks
    def test_admin_check(self):
        """`ponte-admin check` reports what a client negotiates, or why it cannot."""
        result = yield defer.ensureDeferred(check.check(reactor, "localhost", self.gateway.port, self.gateway.ca))
        self.assertEqual(
            (result.gateway, result.tls_version, result.group),
            ("Ponte gateway", "TLSv1.3", "X25519MLKEM768"),
        )
        other_ca, _ = pki.make_ca("Someone Else", "Elsewhere")
        with self.assertRaises(check.CheckFailed) as raised:
            yield defer.ensureDeferred(
                check.check(reactor, "localhost", self.gateway.port, pki.certificate_pem(other_ca))
            )
        self.assertIn("does not verify against the CA given", str(raised.exception))

    @defer.inlineCallbacks
    def test_client_refuses_a_gateway_it_does_not_trust(self):
        """A certificate from another CA (an intercepting proxy, say) fails loudly."""
        other_ca, _ = pki.make_ca("Someone Else", "Elsewhere")
        with self.assertRaises(Exception) as raised:
            yield client.connect(reactor, "127.0.0.1", self.gateway.port, pki.certificate_pem(other_ca)).addCallback(
                lambda c: c.hello(commands.ROLE_AGENT)
            )
        self.assertIn("certificate verify failed", str(raised.exception))


class PairingFailureTests(unittest.TestCase):
    """What each side sees when something goes wrong around pairing."""

    timeout = 60

    def setUp(self):
        self.gateway = support.RunningGateway(
            self, attach_deadline=1.0, relay_idle_timeout=1.5, pre_attach_buffer=65536
        )

    def events_of(self, events, command):
        return [arguments for c, arguments in events if c is command]

    async def join(self, leg):
        control, events = await self.gateway.operator(self)
        created = await control.callRemote(commands.CreateSession)
        agent = await self.gateway.agent(self)
        await agent.switch(commands.Join, leg, routing=created["routing"])
        await support.wait_for(lambda: self.events_of(events, commands.CustomerWaiting))
        self.routing = created["routing"]
        return control, events, created["routing"], self.events_of(events, commands.CustomerWaiting)[0]["ticket"]

    async def attach(self, ticket, leg):
        data = await self.gateway.connect(self)
        await data.hello(commands.ROLE_OPERATOR_DATA)
        await data.switch(commands.Attach, leg, ticket=ticket)
        return data

    @defer.inlineCallbacks
    def test_no_operator_picks_up(self):
        leg = support.TestAgentLeg()
        control, events, routing, ticket = yield defer.ensureDeferred(self.join(leg))
        with self.assertRaises(client.LegClosed) as raised:
            yield leg.paired
        self.assertEqual(str(raised.exception), "no operator picked up")
        yield support.wait_for(lambda: self.events_of(events, commands.CodeTimedOut))
        self.assertEqual(self.events_of(events, commands.CodeTimedOut)[0]["reason"], "no operator picked up")
        with self.assertRaises(commands.BadTicket):
            yield defer.ensureDeferred(self.attach(ticket, support.StreamLeg()))

    @defer.inlineCallbacks
    def test_customer_leaves_before_attach(self):
        leg = support.TestAgentLeg()
        control, events, routing, ticket = yield defer.ensureDeferred(self.join(leg))
        leg.paired.addErrback(lambda f: None)
        leg.transport.loseConnection()
        yield support.wait_for(lambda: self.events_of(events, commands.CustomerLeft))
        left = self.events_of(events, commands.CustomerLeft)[0]
        self.assertEqual(left, {"routing": routing, "reason": "the customer left before an operator attached"})

    @defer.inlineCallbacks
    def test_second_attach_and_reused_ticket(self):
        leg = support.TestAgentLeg()
        control, events, routing, ticket = yield defer.ensureDeferred(self.join(leg))
        yield defer.ensureDeferred(self.attach(ticket, support.StreamLeg()))
        yield leg.paired
        with self.assertRaises(commands.BadTicket):
            yield defer.ensureDeferred(self.attach(ticket, support.StreamLeg()))
        kinds = yield self.gateway.service.store.events("attach-failed")
        self.assertEqual([k[3] for k in kinds], ["bad ticket"])

    @defer.inlineCallbacks
    def test_bytes_before_attach_are_held_then_delivered(self):
        """
        An agent's first bytes wait for the operator (beyond the buffer its
        leg is paused, nothing is dropped) and arrive in order.
        """
        leg = support.TestAgentLeg()
        control, events, routing, ticket = yield defer.ensureDeferred(self.join(leg))
        payload = support.block(b"early", MiB)
        leg.transport.write(payload)
        yield support.wait_for(lambda: self.held() >= 65536)
        yield self.settle()
        self.assertLess(self.held(), 65536 + 256 * 1024)
        received = support.Receiver(MiB)
        yield defer.ensureDeferred(self.attach(ticket, support.StreamLeg(received.received)))
        digest = yield received.done
        self.assertEqual(digest, hashlib.sha256(payload).hexdigest())

    def relay(self):
        """The relay of the code last joined."""
        return self.gateway.switchboard.router.get(self.routing).agent_leg.relay

    def held(self):
        return self.relay()._pending_size

    def settle(self, seconds=0.3):
        d = defer.Deferred()
        reactor.callLater(seconds, d.callback, None)
        return d

    @defer.inlineCallbacks
    def test_stalled_reader_pauses_the_writer_then_idles_out(self):
        """
        The agent stops reading while the operator sends 64 MiB: the
        gateway's buffers stay bounded, the operator's sender is paused,
        and after the idle timeout both legs close with that reason.
        """
        agent_leg = support.TestAgentLeg()
        control, events, routing, ticket = yield defer.ensureDeferred(self.join(agent_leg))
        operator_leg = support.StreamLeg()
        yield defer.ensureDeferred(self.attach(ticket, operator_leg))
        yield agent_leg.paired
        agent_leg.transport.pauseProducing()
        sender = support.Sender(operator_leg.transport, 64 * MiB, b"flood")
        sender.start()
        yield support.wait_for(lambda: sender.paused)
        relay = self.relay()
        peak = 0
        for _ in range(5):
            yield self.settle(0.1)
            peak = max(peak, self.gateway_buffered(relay))
        self.assertLess(sender.remaining, 64 * MiB)
        self.assertGreater(sender.remaining, 0)
        self.assertLess(peak, 2 * relay.limits.high_water + 256 * 1024)
        yield operator_leg.closed
        yield support.wait_for(lambda: self.events_of(events, commands.SessionEnded))
        self.assertEqual(self.events_of(events, commands.SessionEnded)[0]["reason"], "idle timeout")

    @staticmethod
    def gateway_buffered(relay):
        total = 0
        for leg in (relay.agent, relay.operator):
            tls = leg.transport
            if tls is None or tls.transport is None:
                continue
            tcp = tls.transport
            total += len(tcp.dataBuffer) - tcp.offset + tcp._tempDataLen
            total += sum(len(b) for b in tls._appSendBuffer)
        return total

    @defer.inlineCallbacks
    def test_leg_dropped_mid_transfer(self):
        """The other leg is closed and the session record says why."""
        agent_leg = support.TestAgentLeg()
        control, events, routing, ticket = yield defer.ensureDeferred(self.join(agent_leg))
        received = support.Receiver(8 * MiB)
        operator_leg = support.StreamLeg(received.received)
        yield defer.ensureDeferred(self.attach(ticket, operator_leg))
        yield agent_leg.paired
        support.Sender(agent_leg.transport, 32 * MiB, b"x").start()
        yield received.done
        session_id = self.gateway.switchboard.router.get(routing).session_id
        agent_leg.transport.abortConnection()
        yield operator_leg.closed
        yield support.wait_for(lambda: self.events_of(events, commands.SessionEnded))
        ended = self.events_of(events, commands.SessionEnded)[0]
        self.assertEqual(ended["reason"], "the customer's connection closed")
        self.assertGreaterEqual(ended["bytes_to_operator"], 8 * MiB)
        row = yield self.gateway.service.store.get_session(session_id)
        self.assertEqual(row["outcome"], "the customer's connection closed")
        self.assertEqual(row["operator"], "alice")
        self.assertIsNotNone(row["paired_at"])

    @defer.inlineCallbacks
    def test_other_sessions_are_undisturbed(self):
        """A broken session next to a working one leaves the working one working."""
        good_leg = support.TestAgentLeg()
        _, _, _, good_ticket = yield defer.ensureDeferred(self.join(good_leg))
        received = support.Receiver(4 * MiB)
        yield defer.ensureDeferred(self.attach(good_ticket, support.StreamLeg(received.received)))
        yield good_leg.paired
        bad_leg = support.TestAgentLeg()
        _, _, _, bad_ticket = yield defer.ensureDeferred(self.join(bad_leg))
        bad_operator = support.StreamLeg()
        yield defer.ensureDeferred(self.attach(bad_ticket, bad_operator))
        yield bad_leg.paired
        garbage = yield self.gateway.connect(self)
        garbage.transport.write(b"\xff" * 5000)
        bad_leg.transport.abortConnection()
        support.Sender(good_leg.transport, 4 * MiB, b"good").start()
        yield received.done
        yield bad_operator.closed
