"""
The benchmark's clients, in this process on the reactor: a paired session
whose operator legs are on raw TLS and whose agent connects by the way
under test, through the ladder's own endpoint for that way.
"""

import time

import attrs
from twisted.internet import endpoints, reactor

from bench.relay import relays
from bench.relay.endpoints import HOST
from bench.transports.harness import Cleanups
from tests import support
from wire import client, commands, ladder, proxy


class RemoteGateway(support.RunningGateway):
    """
    The gateway running in its own process, as L{tests.support.pair} knows
    a L{support.RunningGateway}: the operator's connections use raw TLS
    (L{support.RunningGateway.connect}), the agent's comes by C{way}.
    """

    def __init__(self, address: ladder.GatewayAddress, password: str, way: str, ladder_: ladder.Ladder):
        # Nothing to start: only what connect() reads is set.
        self.port = address.raw_port
        self.ca = address.ca_pem
        self.password = password
        self.way = way
        self.ladder = ladder_
        self.agent_seconds = None  # how long the agent's connection and Hello took

    async def operator(self, testcase, username=relays.OPERATOR):
        """The benchmark's operator, logged in on a control connection, and its events."""
        events = []
        control = await self.connect(testcase, lambda command, arguments: events.append((command, arguments)))
        await control.hello(commands.ROLE_OPERATOR)
        await control.callRemote(commands.Login, username=username, password=self.password)
        return control, events

    async def agent(self, testcase):
        """An agent connection by this way (verified TLS) that said Hello."""
        started = time.perf_counter()
        connected = endpoints.connectProtocol(self.ladder.endpoint(self.way), client.GatewayClient())
        connected.addTimeout(self.ladder.limits.deadline * 2, reactor)
        agent = await connected
        testcase.addCleanup(support.close, agent)
        await agent.hello(commands.ROLE_AGENT)
        self.agent_seconds = time.perf_counter() - started
        return agent


@attrs.frozen
class Gateway:
    """What the clients know of the gateway, and the proxies in front of it."""

    address: ladder.GatewayAddress
    password: str = attrs.field(repr=False)
    proxies: dict  # way -> proxy.ProxySettings, for the ways through a proxy

    def racing_ladder(self, address: ladder.GatewayAddress | None = None) -> ladder.Ladder:
        """A ladder with the CONNECT proxy configured, as an office client would have it."""
        return ladder.Ladder(reactor, address or self.address, self.proxies.get(ladder.CONNECT))

    def ladder_for(self, way: str) -> ladder.Ladder:
        """A ladder whose C{endpoint(way)} goes through that way's proxy, if it has one."""
        return ladder.Ladder(reactor, self.address, self.proxies.get(way))


@attrs.define
class Session:
    """A paired session: the agent's leg (by the way under test) and the operator's."""

    way: str
    agent_leg: support.TestAgentLeg
    operator_leg: support.StreamLeg
    agent_seconds: float
    cleanups: Cleanups

    def tunnel_mode(self) -> str | None:
        """C{stream} or C{poll} for a tunnelled agent, C{None} otherwise."""
        # The leg's transport is TLS; under it, a socket or a ClientTunnel.
        return getattr(self.agent_leg.transport.transport, "mode", None)

    async def close(self) -> list[str]:
        """Close the session's connections; returns what failed."""
        return await self.cleanups.run()


async def open_session(gateway: Gateway, way: str, directory: str) -> Session:
    """Pair a fresh session, the agent connecting by C{way}."""
    remote = RemoteGateway(gateway.address, gateway.password, way, gateway.ladder_for(way))
    cleanups = Cleanups(directory)
    agent_leg, operator_leg = support.TestAgentLeg(), support.StreamLeg()
    try:
        await support.pair(remote, cleanups, agent_leg, operator_leg)
    except BaseException:
        await cleanups.run()
        raise
    return Session(way, agent_leg, operator_leg, remote.agent_seconds, cleanups)


def proxy_settings(port: int) -> proxy.ProxySettings:
    """A proxy on 127.0.0.1 without credentials."""
    return proxy.ProxySettings(HOST, port)
