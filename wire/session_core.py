"""
What the agent's and the console's session cores have in common: the
state of the confirmation, the chat, receiving files, ending, and a record
of what happened (for the customer's summary and the operator's transcript).
"""

import attrs
from twisted.internet import defer
from twisted.protocols import amp
from zope.interface import implementer

from wire import logs, session_commands, transfers
from wire.e2e import ISessionCore, SessionChannel
from wire.session_commands import BadRequest, Chat, End, SessionLimits
from wire.timers import cancel

# Session states, in order.  While "ending" (End sent or received) nothing of
# the session runs any more; the channel stays open for the customer's rating.
CONNECTING = "connecting"
CONFIRMING = "confirming"
VERIFIED = "verified"
ENDING = "ending"
ENDED = "ended"

_ACCEPTED = {
    CONFIRMING: {session_commands.Pake.commandName, session_commands.Confirm.commandName},
    ENDING: {session_commands.Rate.commandName, End.commandName, session_commands.CancelTransfer.commandName},
}


@attrs.frozen
class Event:
    """One thing that happened in a session, for its record."""

    at: float
    kind: str
    detail: str


@attrs.frozen
class ChatMessage:
    """One chat message; C{author} is C{operator} or C{customer}."""

    author: str
    text: str
    sent_at: float


@implementer(ISessionCore)
class SessionCore(amp.CommandLocator):
    """
    Base of both session cores.  Subclasses say who they are (C{me}, C{peer})
    and react to C{_verified_now}, C{_ending} and the UI hooks.
    """

    log = logs.logger(__name__)
    me = ""
    peer = ""

    def __init__(self, clock, limits: SessionLimits, ui, receiving=None):
        self.clock = clock
        self.limits = limits
        self.ui = ui
        self.state = CONNECTING
        self.channel: SessionChannel | None = None
        self.events: list[Event] = []
        self.chat: list[ChatMessage] = []
        self.end_reason: str | None = None
        self.ended = defer.Deferred()
        self.inbound = (
            transfers.Inbound(receiving, limits, self._transfer_changed) if receiving is not None else None
        )
        self.outbound = transfers.Outbound(limits, self._transfer_changed)
        self._confirm_timer = None
        self._wrap_up_timer = None

    def make_channel(self) -> SessionChannel:
        """The session protocol connection this core drives."""
        return SessionChannel(self, self.limits)

    # -- ISessionCore -------------------------------------------------------

    def accepts(self, command: bytes) -> bool:
        return self.state == VERIFIED or command in _ACCEPTED.get(self.state, ())

    def channel_ready(self, channel: SessionChannel) -> None:
        self.channel = channel
        self.state = CONFIRMING
        self._confirm_timer = self.clock.callLater(
            self.limits.confirm_timeout,
            self.alarm,
            "the other side did not confirm the code in time: possible interception",
        )

    def channel_lost(self, problem: str | None) -> None:
        cancel(self._confirm_timer)
        if self.inbound is not None:
            self.inbound.keep_all(problem or "the connection closed")
        self.outbound.cancel_all(problem or "the connection closed")
        self._finish(problem or self.end_reason or "the connection closed")

    # -- shared behaviour ------------------------------------------------------

    def record(self, kind: str, detail: str = "") -> None:
        """Add an event to the session's record."""
        self.events.append(Event(self.clock.seconds(), kind, detail))

    def verified_now(self) -> None:
        """The code is confirmed: session commands may run from now on."""
        cancel(self._confirm_timer)
        self.state = VERIFIED
        self.log.info("session verified end to end ({side} side)", side=self.me)
        self.record("verified")
        self.ui.verified()

    def alarm(self, message: str, graceful: bool = False) -> None:
        """
        Stop the session loudly: the confirmation failed or timed out.
        C{graceful} lets what is queued (an error answer) reach the peer first.
        """
        cancel(self._confirm_timer)
        self.log.warn("end-to-end confirmation failed: {problem}", problem=message)
        self.record("alarm", message)
        self.end_reason = message
        self.ui.alarm(message)
        if self.channel is not None and graceful:
            self.channel.close()
        elif self.channel is not None:
            self.channel.abort(message)
        else:
            self._finish(message)

    def _finish(self, reason: str) -> None:
        """The channel is gone."""
        if self.state == ENDED:
            return
        wrapped_up, self.state = self.state == ENDING, ENDED
        cancel(self._wrap_up_timer)
        self.end_reason = self.end_reason or reason
        if not wrapped_up:
            self._ending()
            self.record("ended", self.end_reason)
            self.ui.ended(self.end_reason)
        self.ended.callback(self.end_reason)

    def _wrap_up(self, reason: str) -> None:
        """The session is over for its users: stop everything, keep the channel for the rating."""
        self.state = ENDING
        self.end_reason = reason
        self._ending()
        if self.inbound is not None:
            self.inbound.cancel_all("the session ended")
        self.outbound.cancel_all("the session ended")
        self.record("ended", reason)
        self.ui.ended(reason)
        self._wrap_up_timer = self.clock.callLater(self.limits.wrap_up_timeout, self.close)

    def _ending(self) -> None:
        """Release what the session holds; subclasses extend."""

    def end(self, reason: str = "") -> None:
        """End the session from this side, telling the other side why (if there is more to say)."""
        if self.state in (ENDING, ENDED):
            return
        if self.state == VERIFIED:
            self.channel.callRemote(End, reason=reason)
            self._wrap_up("you ended the session" + (f" ({reason})" if reason else ""))
        elif self.channel is not None:
            self.end_reason = reason
            self.channel.abort(reason)
        else:
            self._finish(reason)

    def close(self) -> None:
        """Close the channel (ending the session first if it still runs)."""
        self.end("closed")
        if self.channel is not None and self.state != ENDED:
            self.channel.close()

    def send_chat(self, text: str) -> defer.Deferred:
        """Send a chat message to the other side."""
        if len(text) > self.limits.max_chat_chars:
            return defer.fail(BadRequest(f"a chat message has at most {self.limits.max_chat_chars} characters"))
        message = ChatMessage(self.me, text, self.clock.seconds())
        self.chat.append(message)
        return self.channel.callRemote(Chat, text=text, sent_at=message.sent_at)

    def cancel_transfer(self, transfer_id: str, reason: str = "") -> None:
        """Stop a transfer in either direction and tell the other side."""
        reason = reason or f"cancelled by the {self.me}"
        self.outbound.cancel(transfer_id, reason)
        if self.inbound is not None:
            self.inbound.cancel(transfer_id, reason)
        if self.state == VERIFIED:
            self.channel.callRemote(session_commands.CancelTransfer, transfer_id=transfer_id, reason=reason)

    def _transfer_changed(self, transfer: transfers.Transfer) -> None:
        if transfer.outcome is not None:
            self.record(
                f"file-{transfer.direction}-{transfer.outcome}",
                f"{transfer.name} ({transfer.size} bytes, sha256 {transfer.sha256})",
            )
        self.ui.transfer_changed(transfer)

    # -- responders ---------------------------------------------------------------

    @Chat.responder
    def chat_received(self, text, sent_at):
        if len(text) > self.limits.max_chat_chars:
            raise BadRequest(f"a chat message has at most {self.limits.max_chat_chars} characters")
        message = ChatMessage(self.peer, text, sent_at)
        self.chat.append(message)
        self.ui.chat_received(message)
        return {}

    @End.responder
    def end_received(self, reason):
        if self.state == VERIFIED:
            self._wrap_up(f"the {self.peer} ended the session" + (f": {reason}" if reason else ""))
        return {}

    def check_receive(self, transfer_id: str) -> None:
        """Raise a session error unless a file may be received under C{transfer_id}."""
        raise session_commands.Refused("this side does not receive files")

    @session_commands.OfferFile.responder
    def offer_received(self, transfer_id, name, size, sha256):
        self.check_receive(transfer_id)
        return {"offset": self.inbound.offer(transfer_id, name, size, sha256)}

    @session_commands.FileChunk.responder
    def chunk_received(self, transfer_id, offset, data):
        self.check_receive(transfer_id)
        self.inbound.chunk(transfer_id, offset, data)
        return {}

    @session_commands.FileDone.responder
    def done_received(self, transfer_id):
        self.check_receive(transfer_id)
        self.inbound.finish(transfer_id)
        return {}

    @session_commands.CancelTransfer.responder
    def cancel_received(self, transfer_id, reason):
        shown = f"cancelled by the {self.peer}" + (f": {reason}" if reason else "")
        self.outbound.cancel(transfer_id, shown)
        if self.inbound is not None:
            self.inbound.cancel(transfer_id, shown)
        return {}
