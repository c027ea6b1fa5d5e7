"""The router's state machine, on a test clock."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.router import IRouterListener, Router, RouterLimits, State
from wire import codes
from wire.commands import (
    BadTicket,
    Busy,
    CodeBusy,
    CodeCancelled,
    CodeExpired,
    CodeUsed,
    NotYourSession,
    UnknownCode,
)
from zope.interface import implementer
from zope.interface.verify import verifyObject


@implementer(IRouterListener)
class Listener:
    def __init__(self):
        self.expired = []
        self.deadlines = []

    def code_expired(self, session):
        self.expired.append(session.routing)

    def attach_deadline_passed(self, session):
        self.deadlines.append(session.routing)


class RouterTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.listener = Listener()
        verifyObject(IRouterListener, self.listener)
        self.router = Router(self.clock, RouterLimits(), self.listener)

    def paired(self):
        session = self.router.create("alice", "Alice")
        _, ticket = self.router.join(session.routing, "agent-leg")
        self.router.attach(ticket, "operator-leg")
        return session

    def test_create(self):
        """A routing part of 4 alphabet characters, valid 600 s."""
        session = self.router.create("alice", "Alice")
        self.assertEqual(len(session.routing), 4)
        self.assertEqual(codes.normalise(session.routing), session.routing)
        self.assertEqual(session.expires_at - self.clock.seconds(), 600)
        self.assertIs(self.router.lookup(session.routing), session)
        self.assertEqual(self.router.live_count, 1)

    def test_routing_parts_are_unique_among_live_codes(self):
        """When the random part collides with a live code another is drawn."""
        draws = iter(["AAAA", "AAAA", "BBBB"])
        self.patch(codes, "random_part", lambda n: next(draws))
        self.assertEqual(self.router.create("alice", "A").routing, "AAAA")
        self.assertEqual(self.router.create("alice", "A").routing, "BBBB")

    def test_live_code_limit(self):
        router = Router(self.clock, RouterLimits(max_live_codes=2))
        router.create("a", "A")
        router.create("a", "A")
        self.assertRaises(Busy, router.create, "a", "A")

    def test_lookup_consumes_nothing(self):
        session = self.router.create("alice", "Alice")
        for _ in range(3):
            self.router.lookup(session.routing)
        self.assertIs(session.state, State.CREATED)

    def test_unknown_code(self):
        with self.assertRaises(UnknownCode) as raised:
            self.router.lookup("ZZZZ")
        self.assertIn("check the code", str(raised.exception))

    def test_expiry(self):
        """Unused, a code expires after 600 s and says so."""
        session = self.router.create("alice", "Alice")
        self.clock.advance(599)
        self.router.lookup(session.routing)
        self.clock.advance(1)
        self.assertIs(session.state, State.EXPIRED)
        self.assertEqual(self.listener.expired, [session.routing])
        self.assertRaises(CodeExpired, self.router.lookup, session.routing)
        self.assertEqual(self.router.live_count, 0)

    def test_finished_codes_are_forgotten_later(self):
        """After the tombstone time an expired code is simply unknown."""
        session = self.router.create("alice", "Alice")
        self.clock.advance(600)
        self.clock.advance(3600)
        self.assertRaises(UnknownCode, self.router.lookup, session.routing)

    def test_cancel(self):
        session = self.router.create("alice", "Alice")
        self.assertRaises(NotYourSession, self.router.cancel, session.routing, "bob")
        self.router.cancel(session.routing, "alice")
        self.assertRaises(CodeCancelled, self.router.lookup, session.routing)

    def test_join_then_second_agent_refused(self):
        session = self.router.create("alice", "Alice")
        joined, ticket = self.router.join(session.routing, "leg")
        self.assertIs(joined.state, State.WAITING)
        self.assertGreaterEqual(len(ticket), 22)
        self.assertRaises(CodeBusy, self.router.join, session.routing, "leg2")
        self.assertRaises(CodeBusy, self.router.cancel, session.routing, "alice")

    def test_joined_code_does_not_expire_at_validity(self):
        """Once joined, the attach deadline rules, not the code validity."""
        session = self.router.create("alice", "Alice")
        self.clock.advance(590)
        self.router.join(session.routing, "leg")
        self.clock.advance(20)
        self.assertIs(session.state, State.WAITING)

    def test_attach_deadline(self):
        """A customer waits 60 s at most, then the code is used up."""
        session = self.router.create("alice", "Alice")
        _, ticket = self.router.join(session.routing, "leg")
        self.clock.advance(60)
        self.assertIs(session.state, State.ENDED)
        self.assertEqual(session.end_reason, "no operator picked up")
        self.assertEqual(self.listener.deadlines, [session.routing])
        self.assertRaises(BadTicket, self.router.attach, ticket, "op")
        self.assertRaises(CodeUsed, self.router.lookup, session.routing)

    def test_attach_once(self):
        """A ticket works once; a second attach with it is refused."""
        session = self.router.create("alice", "Alice")
        _, ticket = self.router.join(session.routing, "leg")
        self.assertIs(self.router.attach(ticket, "op"), session)
        self.assertIs(session.state, State.PAIRED)
        self.assertRaises(BadTicket, self.router.attach, ticket, "op2")
        self.assertRaises(BadTicket, self.router.attach, "not-a-ticket", "op2")
        self.assertRaises(BadTicket, self.router.attach, "é", "op2")

    def test_paired_code_is_single_use(self):
        session = self.paired()
        self.assertRaises(CodeBusy, self.router.lookup, session.routing)
        self.assertTrue(self.router.ended(session, "done"))
        self.assertFalse(self.router.ended(session, "again"))
        # Remembered for its error message, without its connections.
        self.assertEqual((session.agent_leg, session.operator_leg), (None, None))
        self.assertRaises(CodeUsed, self.router.lookup, session.routing)
        self.assertEqual(self.router.live_count, 0)

    def test_customer_left_before_attach(self):
        session = self.router.create("alice", "Alice")
        self.router.join(session.routing, "leg")
        self.assertTrue(self.router.agent_left(session, "gone"))
        self.assertRaises(CodeUsed, self.router.lookup, session.routing)

    def test_failed_confirmation_reopens_the_code(self):
        """A mistyped secret part does not burn the code..."""
        session = self.paired()
        self.router.confirmation_failed(session.routing, "alice")
        self.assertIs(session.state, State.CREATED)
        self.assertIs(self.router.lookup(session.routing), session)
        self.assertEqual(self.router.live_count, 1)

    def test_failed_confirmation_after_relay_end(self):
        """...also when the relay closed before the report came."""
        session = self.paired()
        self.router.ended(session, "closed")
        self.router.confirmation_failed(session.routing, "alice")
        self.assertIs(self.router.lookup(session.routing), session)
        self.assertEqual(self.router.live_count, 1)

    def test_three_failed_confirmations_burn_the_code(self):
        session = self.router.create("alice", "Alice")
        for attempt in range(3):
            _, ticket = self.router.join(session.routing, "leg")
            self.router.attach(ticket, "op")
            self.router.confirmation_failed(session.routing, "alice")
        self.assertIs(session.state, State.BURNT)
        with self.assertRaises(CodeUsed) as raised:
            self.router.lookup(session.routing)
        self.assertIn("too often", str(raised.exception))
        self.assertEqual(self.router.live_count, 0)

    def test_reopened_code_keeps_its_expiry(self):
        session = self.paired()
        self.clock.advance(300)
        self.router.confirmation_failed(session.routing, "alice")
        self.clock.advance(300)
        self.assertIs(session.state, State.EXPIRED)

    def test_code_expired_during_a_failed_pairing(self):
        """Reopened after its validity, a code expires at once, and says so."""
        session = self.paired()
        self.clock.advance(700)
        self.router.confirmation_failed(session.routing, "alice")
        self.assertIs(session.state, State.EXPIRED)
        self.assertEqual(self.listener.expired, [session.routing])

    def test_only_the_owner_reports(self):
        session = self.paired()
        self.assertRaises(NotYourSession, self.router.confirmation_failed, session.routing, "bob")

    def test_sessions_of(self):
        a = self.router.create("alice", "Alice")
        self.router.create("bob", "Bob")
        self.assertEqual(self.router.sessions_of("alice"), [a])

    def test_stop_cancels_timers(self):
        self.router.create("alice", "Alice")
        self.router.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
