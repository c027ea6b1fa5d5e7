"""
Session-code routing: which codes are live, who owns them (an operator,
or for a team code the operator's team), which customer joined which code,
who picked it up and which operator attached to it.

The L{Router} is a plain state machine driven by an injected clock; it does
no I/O.  Per code::

    created --join--> waiting --attach--> paired --end--> ended
       |                 |                  |
       |                 | (deadline,        +--confirmation failed--> created
       |                 |  customer left)                     (or burnt after N)
       +--(validity)--> expired,   +--cancel--> cancelled
"""

import enum
import hashlib
import hmac
import secrets
import uuid

import attrs
from zope.interface import Interface, implementer

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
from wire.timers import cancel


class State(enum.Enum):
    """Where a code is in its life."""

    CREATED = "created"
    WAITING = "waiting"
    PAIRED = "paired"
    ENDED = "ended"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    BURNT = "burnt"


LIVE = (State.CREATED, State.WAITING, State.PAIRED)

# Why a finished code cannot be used again, as the customer is told.
_FINISHED_ERRORS = {
    State.ENDED: (CodeUsed, "this code has already been used; ask the operator for a new one"),
    State.BURNT: (CodeUsed, "this code was entered wrongly too often; ask the operator for a new one"),
    State.EXPIRED: (CodeExpired, "this code has expired; ask the operator for a new one"),
    State.CANCELLED: (CodeCancelled, "the operator cancelled this code; ask for a new one"),
}


class IRouterListener(Interface):
    """What the router tells the rest of the gateway when time moves on."""

    def code_expired(session):
        """C{session}'s code ran out before any customer joined it."""

    def attach_deadline_passed(session):
        """A customer waited on C{session} past the attach deadline."""


@implementer(IRouterListener)
class NullListener:
    """A listener that ignores everything (for tests of the router alone)."""

    def code_expired(self, session):
        pass

    def attach_deadline_passed(self, session):
        pass


@attrs.define(eq=False)
class Session:
    """One code and what is attached to it."""

    routing: str
    owner: str
    operator_name: str
    session_id: str
    created_at: float
    expires_at: float
    # A team code waits in the queue of every operator of this team; "" for a private code.
    team: str = ""
    picked_up_by: str | None = None  # the username that picked it up from the queue
    state: State = State.CREATED
    ticket_digest: bytes | None = None
    ticket: str | None = attrs.field(default=None, repr=False)
    joined_at: float | None = None
    paired_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    confirmation_failures: int = 0
    agent_leg: object = None
    operator_leg: object = None
    _timer: object = None

    @property
    def tag(self) -> str:
        """A log-safe tag of the code."""
        return codes.fingerprint(self.routing)


@attrs.define
class RouterLimits:
    """The router's configurable numbers."""

    routing_length: int = 4
    validity: float = 600.0
    attach_deadline: float = 60.0
    max_live_codes: int = 100_000
    confirmation_failures: int = 3
    tombstone_seconds: float = 3600.0


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode("ascii", "replace")).digest()


class Router:
    """
    The live codes of one gateway.  All methods are synchronous; the timers
    run on the injected C{clock}.
    """

    def __init__(self, clock, limits: RouterLimits, listener: IRouterListener = NullListener()):
        self._clock = clock
        self.limits = limits
        self._listener = listener
        self._sessions: dict[str, Session] = {}
        self._by_ticket: dict[bytes, Session] = {}
        self._live = 0

    # -- operator side ---------------------------------------------------

    def create(self, owner: str, operator_name: str, team: str = "") -> Session:
        """
        Make a fresh routing part owned by C{owner} (for C{team}'s queue, if given).

        @raise Busy: when the live-code limit is reached.
        """
        if self._live >= self.limits.max_live_codes:
            raise Busy("the gateway has too many live codes; try again later")
        for _ in range(100):
            routing = codes.random_part(self.limits.routing_length)
            if routing not in self._sessions:
                break
        else:
            raise Busy("no free code could be found; try again later")
        now = self._clock.seconds()
        session = Session(
            routing=routing,
            owner=owner,
            operator_name=operator_name,
            session_id=uuid.uuid4().hex,
            created_at=now,
            expires_at=now + self.limits.validity,
            team=team,
        )
        self._sessions[routing] = session
        self._live += 1
        session._timer = self._clock.callLater(self.limits.validity, self._expire, session)
        return session

    def cancel(self, routing: str, owner: str) -> Session:
        """
        Withdraw an unused code.

        @raise NotYourSession: if another operator owns it.
        @raise CodeBusy: if a customer has already joined it.
        """
        session = self._owned(routing, owner)
        self._refuse_unless_created(session)
        self._finish(session, State.CANCELLED, "cancelled by the operator")
        return session

    def get(self, routing: str) -> Session | None:
        """The session of a routing part, live or recently finished, if any."""
        return self._sessions.get(routing)

    def sessions_of(self, owner: str, team: str = "") -> list[Session]:
        """
        The live sessions owned by C{owner}, those C{owner} picked up, and
        the team codes of C{team} a customer is waiting on.
        """
        return [
            s for s in self._sessions.values()
            if s.state in LIVE and (
                s.owner == owner or s.picked_up_by == owner
                or (team and s.team == team and s.state is State.WAITING)
            )
        ]

    def pick_up(self, routing: str, username: str, team: str) -> Session:
        """
        C{username} (of C{team}) takes the customer waiting on a code: a
        private code of theirs, or a code of their team that nobody else
        took.  The session's ticket is theirs from now on.

        @raise NotYourSession: another operator's private code, or another team's.
        @raise CodeBusy: a teammate took it first, or nobody waits on it yet.
        """
        session = self._sessions.get(routing)
        if session is None:
            raise UnknownCode("there is no session with this code")
        if session.team:
            if session.team != team:
                raise NotYourSession("this code belongs to another team")
        elif session.owner != username:
            raise NotYourSession("this code belongs to another operator")
        if session.state in _FINISHED_ERRORS:
            raise _FINISHED_ERRORS[session.state][0]("the customer is no longer waiting on this code")
        if session.picked_up_by not in (None, username):
            raise CodeBusy("a teammate picked this customer up already")
        if session.state is not State.WAITING:
            raise CodeBusy("no customer is waiting on this code")
        session.picked_up_by = username
        return session

    def confirmation_failed(self, routing: str, owner: str) -> Session:
        """
        The console reports that the end-to-end confirmation failed.  The
        pairing is undone and the code may be joined again, unless this was
        failure number C{confirmation_failures}, which burns it.
        """
        session = self._owned(routing, owner)
        if session.state not in (State.PAIRED, State.ENDED) or session.paired_at is None:
            raise UnknownCode("this code has no session to report on")
        session.confirmation_failures += 1
        if session.confirmation_failures >= self.limits.confirmation_failures:
            if session.state is State.ENDED:
                session.state = State.BURNT
            else:
                self._finish(session, State.BURNT, "end-to-end confirmation failed too often")
            return session
        now = self._clock.seconds()
        if session.state is State.ENDED:
            self._live += 1
        self._reset(session)
        if now >= session.expires_at:
            self._finish(session, State.EXPIRED, "the code expired unused")
            self._listener.code_expired(session)
        else:
            session._timer = self._clock.callLater(
                session.expires_at - now, self._expire, session
            )
        return session

    # -- agent side --------------------------------------------------------

    def lookup(self, routing: str) -> Session:
        """
        The session waiting behind a routing part, without changing it.

        @raise UnknownCode, CodeExpired, CodeUsed, CodeCancelled, CodeBusy:
            with a message for the customer.
        """
        session = self._sessions.get(routing)
        if session is None:
            raise UnknownCode("there is no session with this code; check the code and try again")
        self._refuse_unless_created(session)
        return session

    @staticmethod
    def _refuse_unless_created(session: Session) -> None:
        if session.state in _FINISHED_ERRORS:
            error, message = _FINISHED_ERRORS[session.state]
            raise error(message)
        if session.state is not State.CREATED:
            raise CodeBusy("a customer is already connected with this code")

    def join(self, routing: str, agent_leg) -> tuple[Session, str]:
        """
        Put a customer on the code and issue the operator's one-time ticket.

        @return: the session and the ticket.
        """
        session = self.lookup(routing)
        ticket = secrets.token_urlsafe(16)
        session.state = State.WAITING
        session.joined_at = self._clock.seconds()
        session.agent_leg = agent_leg
        session.ticket = ticket
        session.ticket_digest = _digest(ticket)
        self._by_ticket[session.ticket_digest] = session
        self._cancel_timer(session)
        session._timer = self._clock.callLater(
            self.limits.attach_deadline, self._deadline, session
        )
        return session, ticket

    def agent_left(self, session: Session, reason: str) -> bool:
        """
        The waiting customer's leg closed before an operator attached.

        @return: whether this changed anything (it was still waiting).
        """
        if session.state is not State.WAITING:
            return False
        self._finish(session, State.ENDED, reason)
        return True

    def attach(self, ticket: str, operator_leg) -> Session:
        """
        Redeem a ticket: the operator's leg is paired with the waiting agent.

        @raise BadTicket: unknown, used or expired ticket.
        """
        session = self._by_ticket.get(_digest(ticket))
        if (
            session is None
            or session.ticket is None
            or not hmac.compare_digest(session.ticket.encode(), ticket.encode("ascii", "replace"))
            or session.state is not State.WAITING
        ):
            raise BadTicket("this attach ticket is unknown, used or expired")
        self._drop_ticket(session)
        self._cancel_timer(session)
        session.state = State.PAIRED
        session.paired_at = self._clock.seconds()
        session.operator_leg = operator_leg
        return session

    def ended(self, session: Session, reason: str) -> bool:
        """
        A paired session's relay closed.

        @return: whether this ended the session (it was still paired).
        """
        if session.state is not State.PAIRED:
            return False
        self._finish(session, State.ENDED, reason)
        return True

    # -- internals ---------------------------------------------------------

    def _owned(self, routing: str, owner: str) -> Session:
        session = self._sessions.get(routing)
        if session is None:
            raise UnknownCode("there is no session with this code")
        if owner not in (session.owner, session.picked_up_by):
            raise NotYourSession("this code belongs to another operator")
        return session

    def owned(self, routing: str, username: str) -> Session:
        """
        The session of C{routing}, which C{username} made or picked up.

        @raise UnknownCode, NotYourSession: otherwise.
        """
        return self._owned(routing, username)

    def _expire(self, session: Session) -> None:
        session._timer = None
        if session.state is State.CREATED:
            self._finish(session, State.EXPIRED, "the code expired unused")
            self._listener.code_expired(session)

    def _deadline(self, session: Session) -> None:
        session._timer = None
        if session.state is State.WAITING:
            # The listener still needs the agent's leg, which _finish lets go.
            self._listener.attach_deadline_passed(session)
            self._finish(session, State.ENDED, "no operator picked up")

    def _reset(self, session: Session) -> None:
        self._cancel_timer(session)
        self._drop_ticket(session)
        session.picked_up_by = None
        session.state = State.CREATED
        session.agent_leg = session.operator_leg = None
        session.joined_at = session.paired_at = session.ended_at = None
        session.end_reason = ""

    def _finish(self, session: Session, state: State, reason: str) -> None:
        if session.state in LIVE:
            self._live -= 1
        self._cancel_timer(session)
        self._drop_ticket(session)
        session.state = state
        session.ended_at = self._clock.seconds()
        session.end_reason = reason
        # A finished code is remembered for a while; its connections are not.
        session.agent_leg = session.operator_leg = None
        session._timer = self._clock.callLater(
            self.limits.tombstone_seconds, self._forget, session
        )

    def _forget(self, session: Session) -> None:
        if self._sessions.get(session.routing) is session and session.state not in LIVE:
            del self._sessions[session.routing]

    def _drop_ticket(self, session: Session) -> None:
        if session.ticket_digest is not None:
            self._by_ticket.pop(session.ticket_digest, None)
        session.ticket = session.ticket_digest = None

    def _cancel_timer(self, session: Session) -> None:
        cancel(session._timer)
        session._timer = None

    def stop(self) -> None:
        """Cancel every timer (when the gateway stops)."""
        for session in self._sessions.values():
            self._cancel_timer(session)

    @property
    def live_count(self) -> int:
        """How many codes are live (created, waiting or paired)."""
        return self._live
