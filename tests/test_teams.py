"""
Team codes and the team queue, in memory on a test clock: a code made for
a team waits in every teammate's queue, the first to pick it up gets the
customer, the others are told, and other teams and private codes stay
out of reach.
"""

from twisted.trial import unittest

from gateway.switchboard import team_wording
from tests import support
from tests.test_protocol import Harness
from wire import client, commands

TEAM = "Helpdesk"


class TeamHarness(Harness):
    """The protocol harness with two teammates, an operator of another team and one of none."""

    def __init__(self, testcase):
        super().__init__(testcase)
        for username, display, group in (("alice", "Alice Agostini", TEAM), ("bob", "Bob Berg", TEAM),
                                          ("dave", "Dave Dunn", "Night shift"), ("erin", "Erin", "")):
            self.store.operators[username] = support.operator_record(username, display, group=group)

    def log_in(self, username):
        """A logged-in control connection of C{username} and the events it hears."""
        events = []
        return self.operator(events, username), events

    def join(self, routing):
        agent = self.hello(commands.ROLE_AGENT)
        leg = client.AgentLeg()
        self.ok(agent, commands.Join, client.leg_factory(leg), routing=routing)
        # (A cleanup that returns the Deferred would wait for it.)
        self.testcase.addCleanup(lambda: leg.paired.addErrback(lambda f: None) and None)
        return agent, leg

    def attach(self, ticket):
        data = self.hello(commands.ROLE_OPERATOR_DATA)
        self.ok(data, commands.Attach, client.leg_factory(support.StreamLeg()), ticket=ticket)
        return data


def named(events, command):
    """The arguments of the events of C{command} (optional ones that were left out, left out)."""
    return [{k: v for k, v in arguments.items() if v is not None} for c, arguments in events if c is command]


class TeamCodeTests(unittest.TestCase):
    def setUp(self):
        self.h = TeamHarness(self)
        self.alice, self.alice_events = self.h.log_in("alice")
        self.bob, self.bob_events = self.h.log_in("bob")
        self.dave, self.dave_events = self.h.log_in("dave")
        made = self.h.ok(self.alice, commands.CreateSession, team=True)
        self.assertEqual(made["team"], TEAM)
        self.routing = made["routing"]

    def test_the_customer_is_told_which_team_waits(self):
        agent = self.h.hello(commands.ROLE_AGENT)
        answer = self.h.ok(agent, commands.Lookup, routing=self.routing)
        self.assertEqual(answer["operator_name"], "the Helpdesk team")
        self.assertEqual(team_wording("Support team"), "the Support team")

    def test_waiting_customer_in_every_teammates_queue_without_a_ticket(self):
        self.h.join(self.routing)
        for events in (self.alice_events, self.bob_events):
            self.assertEqual(named(events, commands.CustomerWaiting),
                             [{"routing": self.routing, "team": TEAM, "created_by": "Alice Agostini"}])
        self.assertEqual(self.dave_events, [])
        listed = self.h.ok(self.bob, commands.ListSessions)["sessions"]
        self.assertEqual([(s["routing"], s["state"], s["team"], s["created_by"], s["ticket"]) for s in listed],
                         [(self.routing, "waiting", TEAM, "Alice Agostini", None)])
        self.assertEqual(self.h.ok(self.dave, commands.ListSessions)["sessions"], [])

    def test_first_teammate_to_pick_up_gets_the_customer(self):
        _, leg = self.h.join(self.routing)
        self.h.error(self.dave, commands.NotYourSession, commands.PickUp, routing=self.routing)
        ticket = self.h.ok(self.bob, commands.PickUp, routing=self.routing)["ticket"]
        self.assertEqual(named(self.alice_events, commands.CustomerTaken), [{"routing": self.routing, "by": "Bob Berg"}])
        self.assertEqual(named(self.bob_events, commands.CustomerTaken), [])
        message = self.h.error(self.alice, commands.CodeBusy, commands.PickUp, routing=self.routing)
        self.assertEqual(message, "a teammate picked this customer up already")
        # The ticket is bob's alone now.
        self.assertIsNone(self.h.ok(self.alice, commands.ListSessions)["sessions"][0]["ticket"])
        self.assertEqual(self.h.ok(self.bob, commands.ListSessions)["sessions"][0]["ticket"], ticket)
        self.h.attach(ticket)
        self.successResultOf(leg.paired)
        self.assertIn("pick-up", self.h.store.kinds())
        session_id = self.h.switchboard.router.get(self.routing).session_id
        self.assertEqual(self.h.store.sessions[session_id]["team"], TEAM)
        self.assertEqual(self.h.store.sessions[session_id]["picked_up_by"], "bob")
        # Bob may report on the session he took; Dave may not.
        self.h.ok(self.bob, commands.ReportConfirmationFailure, routing=self.routing)
        self.h.error(self.dave, commands.NotYourSession, commands.ReportConfirmationFailure, routing=self.routing)

    def test_pick_up_before_anyone_waits(self):
        message = self.h.error(self.bob, commands.CodeBusy, commands.PickUp, routing=self.routing)
        self.assertEqual(message, "no customer is waiting on this code")

    def test_customer_leaving_the_queue_is_told_to_the_team(self):
        agent, _ = self.h.join(self.routing)
        agent[0].transport.loseConnection()
        self.h.flush()
        for events in (self.alice_events, self.bob_events):
            self.assertEqual([a["routing"] for a in named(events, commands.CustomerLeft)], [self.routing])
        self.h.error(self.bob, commands.CodeUsed, commands.PickUp, routing=self.routing)

    def test_nobody_picks_up(self):
        self.h.join(self.routing)
        self.h.clock.advance(61)
        self.h.flush()
        for events in (self.alice_events, self.bob_events):
            self.assertEqual([a["reason"] for a in named(events, commands.CodeTimedOut)], ["no operator picked up"])


class PrivateCodeTests(unittest.TestCase):
    def test_private_codes_stay_private(self):
        h = TeamHarness(self)
        alice, alice_events = h.log_in("alice")
        bob, bob_events = h.log_in("bob")
        routing = h.ok(alice, commands.CreateSession)["routing"]
        self.assertIsNone(h.ok(alice, commands.CreateSession)["team"])
        h.join(routing)
        self.assertIn("ticket", named(alice_events, commands.CustomerWaiting)[0])
        self.assertEqual(bob_events, [])
        self.assertEqual(h.error(bob, commands.NotYourSession, commands.PickUp, routing=routing),
                         "this code belongs to another operator")
        # Its owner may pick it up too (the same ticket as the event's).
        ticket = h.ok(alice, commands.PickUp, routing=routing)["ticket"]
        self.assertEqual(ticket, named(alice_events, commands.CustomerWaiting)[0]["ticket"])

    def test_no_team_no_team_codes(self):
        h = TeamHarness(self)
        erin, _ = h.log_in("erin")
        message = h.error(erin, commands.NoTeam, commands.CreateSession, team=True)
        self.assertIn("in no team", message)


class TeamDeskTests(unittest.TestCase):
    """The console's desk on a real gateway: team codes through to a verified session."""

    timeout = 60
    OPERATORS = (("alice", "Alice Agostini", False, TEAM), ("bob", "Bob Berg", False, TEAM))

    async def test_the_maker_picks_up_their_own_team_code(self):
        from tests import session_support

        gateway = support.RunningGateway(self, operators=self.OPERATORS)
        desk = await session_support.logged_in_desk(self, gateway)
        live = await desk.new_code(team=True)
        self.assertEqual(live.team, TEAM)
        session = await session_support.start(self, gateway, desk, live=live)
        self.assertEqual(session.console.state, "verified")

    async def test_a_teammate_who_was_read_the_wrong_code_fails_the_confirmation(self):
        from console.desk import read_out_code
        from tests import session_support

        gateway = support.RunningGateway(self, operators=self.OPERATORS)
        alice = await session_support.logged_in_desk(self, gateway)
        bob = await session_support.logged_in_desk(self, gateway, "bob")
        live = await alice.new_code(team=True)
        wrong = "".join("X" if c != "X" else "Y" for c in live.secret)
        self.assertEqual(read_out_code(live.routing, f"{live.routing}-{live.secret.lower()}"), live.code())
        session = await session_support.start(self, gateway, bob, live=live, verified=False,
                                              pick_up_secret=wrong)
        (message,) = await session.console_ui.next("alarm")
        self.assertIn("code", message)
