"""
The relay: once an agent leg and an operator leg are paired, bytes from one
are written to the other, unread and unlogged.

Both legs are push producers for each other, so a reader that stalls pauses
the writer: per direction the gateway holds at most the high-water mark of
the writing leg's transport plus one read.  Before the operator attaches,
the agent's bytes (its first end-to-end handshake message) are held in a
small buffer; beyond it, the agent's leg is paused.
"""

import attrs
from twisted.internet.protocol import Protocol


from wire import notice, logs
from wire.timers import cancel

AGENT = "agent"
OPERATOR = "operator"


@attrs.frozen
class RelayLimits:
    """The relay's configurable numbers."""

    pre_attach_buffer: int = 65536
    high_water: int = 262144
    idle_timeout: float = 900.0
    tcp_keepalive: bool = True
    close_grace: float = 30.0


class RelayLeg(Protocol):
    """One side of a relay: forwards what it receives to its L{Relay}."""

    def __init__(self, relay: "Relay", side: str):
        self.relay = relay
        self.side = side
        self.other: "RelayLeg | None" = None
        self.lost = False
        self.grace = None  # the call that aborts this leg if a close hangs

    def connectionMade(self):
        self.relay._leg_connected(self)

    def dataReceived(self, data):
        other = self.other
        if other is None:
            self.relay._hold(data)
            return
        other.transport.write(data)
        self.relay._count(self, len(data))

    def connectionLost(self, reason):
        self.lost = True
        cancel(self.grace)
        self.relay._leg_lost(self, reason)


class Relay:
    """
    The byte pipe of one session: an agent leg, later an operator leg.

    C{on_end(relay, reason)} is called once, when the relay is over, with
    the reason it ended; C{on_agent_left(relay, reason)} instead when the
    agent's leg goes before any operator attached.  C{session},
    C{agent_peer} and C{operator_peer} are for its owner's bookkeeping; the
    relay does not look at them.
    """

    log = logs.logger(__name__)

    def __init__(self, clock, limits: RelayLimits, tag: str, on_end, on_agent_left):
        self._clock = clock
        self.limits = limits
        self.tag = tag
        self._on_end = on_end
        self._on_agent_left = on_agent_left
        self.agent = RelayLeg(self, AGENT)
        self.operator: RelayLeg | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._agent_paused = False
        self.bytes_to_agent = 0
        self.bytes_to_operator = 0
        self._last_activity = clock.seconds()
        self._idle_call = None
        self.ended = False
        self.end_reason = ""
        self.session = self.agent_peer = self.operator_peer = None

    # -- called by the gateway ---------------------------------------------

    def attach(self) -> RelayLeg:
        """
        Pair an operator leg with the waiting agent leg; the returned leg's
        connection completes the splice when it is made.
        """
        self.operator = RelayLeg(self, OPERATOR)
        return self.operator

    def close_unpaired(self, reason: str) -> None:
        """
        End the relay before any operator attached, telling the agent why
        in a C{CLOSED} notice.
        """
        if self.ended or self.operator is not None:
            return
        self._finish(reason, notify=False)
        if not self.agent.lost and self.agent.transport is not None:
            self.agent.transport.write(notice.encode(notice.Notice(notice.CLOSED, reason)))
            self.agent.transport.loseConnection()

    def close(self, reason: str, abort: bool = False) -> None:
        """
        End the relay: both legs are closed once their buffers drain (or
        at once with C{abort}).
        """
        if self.ended:
            return
        self._finish(reason)
        self._close_legs(abort)

    # -- called by the legs ------------------------------------------------

    def _leg_connected(self, leg: RelayLeg) -> None:
        transport = leg.transport
        underlying = getattr(transport, "transport", None)
        if underlying is not None and hasattr(underlying, "bufferSize"):
            underlying.bufferSize = self.limits.high_water
        if self.limits.tcp_keepalive:
            setter = getattr(transport, "setTcpKeepAlive", None)
            if setter is not None:
                setter(True)
        if leg is self.operator:
            self._splice()
        else:
            self._touch()

    def _hold(self, data: bytes) -> None:
        if self.ended:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        self._touch()
        if self._pending_size >= self.limits.pre_attach_buffer and not self._agent_paused:
            self._agent_paused = True
            self.agent.transport.pauseProducing()

    def _count(self, leg: RelayLeg, size: int) -> None:
        if leg is self.agent:
            self.bytes_to_operator += size
        else:
            self.bytes_to_agent += size
        self._last_activity = self._clock.seconds()

    def _leg_lost(self, leg: RelayLeg, reason) -> None:
        if self.ended:
            self._unregister(leg)
            return
        if self.operator is None:
            self._finish("the customer left before an operator attached", notify=False)
            self._on_agent_left(self, self.end_reason)
            return
        who = "customer" if leg is self.agent else "operator"
        self._finish(f"the {who}'s connection closed")
        self._close_legs()

    # -- internals ---------------------------------------------------------

    def _splice(self) -> None:
        agent, operator = self.agent, self.operator
        if agent.lost:
            operator.transport.loseConnection()
            return
        agent.other, operator.other = operator, agent
        agent.transport.write(notice.encode(notice.Notice(notice.PAIRED)))
        if self._pending:
            pending, self._pending = self._pending, []
            operator.transport.write(b"".join(pending))
            self.bytes_to_operator += self._pending_size
            self._pending_size = 0
        agent.transport.registerProducer(operator.transport, True)
        operator.transport.registerProducer(agent.transport, True)
        if self._agent_paused:
            self._agent_paused = False
            agent.transport.resumeProducing()
        self._touch()

    def _touch(self) -> None:
        self._last_activity = self._clock.seconds()
        if self._idle_call is None:
            self._idle_call = self._clock.callLater(self.limits.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        self._idle_call = None
        if self.ended:
            return
        quiet = self._clock.seconds() - self._last_activity
        if quiet >= self.limits.idle_timeout:
            self.log.info(
                "relay {tag} idle for {seconds:.0f} s: closing", tag=self.tag, seconds=quiet
            )
            if self.operator is None:
                self.close_unpaired("idle timeout")
                self._on_agent_left(self, self.end_reason)
            else:
                # A peer that stopped reading would keep a graceful close waiting.
                self.close("idle timeout", abort=True)
        else:
            self._idle_call = self._clock.callLater(
                self.limits.idle_timeout - quiet, self._check_idle
            )

    def _finish(self, reason: str, notify: bool = True) -> None:
        self.ended = True
        self.end_reason = reason
        self._pending, self._pending_size = [], 0
        cancel(self._idle_call)
        self._idle_call = None
        if notify:
            self._on_end(self, reason)

    def _close_legs(self, abort: bool = False) -> None:
        for leg in (self.agent, self.operator):
            if leg is not None and not leg.lost and leg.transport is not None:
                self._unregister(leg)
                if abort:
                    leg.transport.abortConnection()
                else:
                    leg.transport.loseConnection()
                    # If its peer does not read what is left, do not wait for ever.
                    leg.grace = self._clock.callLater(self.limits.close_grace, self._abort, leg)

    @staticmethod
    def _abort(leg: RelayLeg) -> None:
        if not leg.lost and leg.transport is not None:
            leg.transport.abortConnection()

    @staticmethod
    def _unregister(leg: RelayLeg) -> None:
        if leg.transport is not None:
            leg.transport.unregisterProducer()
