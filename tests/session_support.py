"""
A whole session through a real gateway for the tests: an operator's desk
logs in and makes a code, an agent joins with it, the desk picks the
customer up, and both session cores run over real TLS on 127.0.0.1.
"""

import os

import attrs
from twisted.internet import defer, reactor

from agent.session import AgentSession
from console.desk import Desk
from gateway import relay
from tests import support
from tests.session_doubles import AgentUI, ConsoleUI, Platform
from wire import client, commands


@attrs.define
class Session:
    """Both ends of one running session, and their doubles."""

    gateway: support.RunningGateway
    desk: Desk
    routing: str
    console: object
    agent: object
    console_ui: ConsoleUI
    agent_ui: AgentUI
    platform: Platform


def operator_ca(gateway: support.RunningGateway) -> bytes:
    """The operator CA certificate of a test gateway."""
    with open(gateway.layout.path(gateway.layout.operator_ca_certificate), "rb") as f:
        return f.read()


async def logged_in_desk(testcase, gateway: support.RunningGateway, username="alice") -> Desk:
    """An operator's desk logged in to C{gateway}; its connections close with the test."""

    async def connect(role, on_event):
        connection = await client.connect(reactor, "127.0.0.1", gateway.port, gateway.ca, on_event)
        testcase.addCleanup(support.close, connection)
        await connection.hello(role)
        return connection

    desk = Desk(reactor, connect, testcase.mktemp())
    await desk.login(username, support.PASSWORD)
    return desk


async def start(testcase, gateway=None, desk=None, typed=None, agent_ui=None, console_ui=None,
                agent_ca=None, verified=True, live=None, receive_directory=None, pick_up_secret=None) -> Session:
    """
    Run a session up to "verified" (or, with C{verified=False}, up to the
    pick-up).  C{live} is the code to use (default: a new one); C{typed}
    makes what the customer types from it (default: the right code);
    C{pick_up_secret} is the last part a teammate's C{desk} is read out.
    """
    gateway = gateway or support.RunningGateway(testcase)
    desk = desk or await logged_in_desk(testcase, gateway)
    live = live or await desk.new_code()
    agent_ui = agent_ui or AgentUI()
    console_ui = console_ui or ConsoleUI()
    platform = Platform(receive_directory or os.path.abspath(testcase.mktemp()))
    connection = await gateway.agent(testcase)
    await connection.callRemote(commands.Lookup, routing=live.routing)
    typed_code = typed(live) if typed else live.code()
    agent = AgentSession(reactor, agent_ui, platform, typed_code, agent_ca or operator_ca(gateway))
    joined = defer.ensureDeferred(agent.join(connection, live.routing))
    await support.wait_for(lambda: live.routing in desk.waiting)
    console = await desk.pick_up(live.routing, console_ui, pick_up_secret)
    await joined
    testcase.addCleanup(lambda: agent.close() or agent.ended)
    testcase.addCleanup(lambda: console.close() or console.ended)
    if verified:
        await defer.gatherResults([console_ui.next("verified"), agent_ui.next("verified")])
    return Session(gateway, desk, live.routing, console, agent, console_ui, agent_ui, platform)


class Tap:
    """
    Sees (and may alter) every byte the gateway relays, by side: the bytes
    each leg received from its peer before they are forwarded.
    """

    def __init__(self, testcase):
        self.seen = {"agent": bytearray(), "operator": bytearray()}
        self.alter = None  # callable(side, data) -> data, when set
        original = relay.RelayLeg.dataReceived
        tap = self

        def dataReceived(leg, data):
            tap.seen[leg.side] += data
            if tap.alter is not None:
                data = tap.alter(leg.side, data)
            if data:
                original(leg, data)

        testcase.patch(relay.RelayLeg, "dataReceived", dataReceived)

    def everything(self) -> bytes:
        """All relayed bytes, both ways."""
        return bytes(self.seen["agent"]) + bytes(self.seen["operator"])
