"""
The gateway as the service the plugin builds, over real TLS sockets on
127.0.0.1: pairing, bulk relay both ways, closes and their records.
"""

from twisted.internet import defer
from twisted.trial import unittest

from tests import support
from wire import commands

MiB = 1 << 20


class RelayTests(unittest.TestCase):
    """An operator and an agent paired through a real gateway."""

    timeout = 120

    def setUp(self):
        self.gateway = support.RunningGateway(self)

    @defer.inlineCallbacks
    def test_fifty_mebibytes_each_way(self):
        """
        50 MiB sent each way at once arrive identical (SHA-256), the byte
        counts are recorded, and when the operator ends, the agent sees the
        close and the operator gets SessionEnded.
        """
        size = 50 * MiB
        to_operator = support.Receiver(size)
        to_agent = support.Receiver(size)
        agent_leg = support.TestAgentLeg(to_agent.received)
        operator_leg = support.StreamLeg(to_operator.received)
        control, events, routing = yield defer.ensureDeferred(
            support.pair(self.gateway, self, agent_leg, operator_leg)
        )
        up = support.Sender(agent_leg.transport, size, b"agent")
        down = support.Sender(operator_leg.transport, size, b"operator")
        up.start()
        down.start()
        sent_up, sent_down, got_up, got_down = yield defer.gatherResults(
            [up.done, down.done, to_operator.done, to_agent.done]
        )
        self.assertEqual(sent_up, got_up)
        self.assertEqual(sent_down, got_down)
        self.assertEqual((to_operator.count, to_agent.count), (size, size))

        operator_leg.transport.loseConnection()
        yield agent_leg.closed
        yield support.wait_for(lambda: any(c is commands.SessionEnded for c, _ in events))
        ended = [a for c, a in events if c is commands.SessionEnded][0]
        self.assertEqual(ended["routing"], routing)
        self.assertEqual(ended["reason"], "the operator's connection closed")
        self.assertEqual((ended["bytes_to_agent"], ended["bytes_to_operator"]), (size, size))
        session = self.gateway.switchboard.router.lookup  # noqa: just to show it is not live
        with self.assertRaises(commands.CodeUsed):
            session(routing)
