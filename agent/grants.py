"""
The customer's grants: which scopes the operator may use right now, until
when, and the history of every grant and revocation.  Pure logic on a
clock; the agent's session core asks it before every privileged command.
"""

import attrs

from wire.session_commands import SCOPES
from wire.timers import cancel


@attrs.frozen
class GrantEvent:
    """A scope was granted, revoked or ran out, at a time."""

    at: float
    scope: str
    what: str  # "granted", "revoked" or "expired"
    expires_at: float | None = None


class Grants:
    """
    The live grants of one session.  C{changed(reason)} is called after
    every change, with words saying what changed.
    """

    def __init__(self, clock, changed):
        self._clock = clock
        self._changed = changed
        self._expiry: dict[str, float | None] = {}
        self._timers: dict[str, object] = {}
        self.history: list[GrantEvent] = []

    def allowed(self, scope: str) -> bool:
        """Whether the operator may use C{scope} now."""
        return scope in self._expiry

    def current(self) -> dict[str, float | None]:
        """Each granted scope and when it runs out (C{None}: with the session)."""
        return dict(self._expiry)

    def grant(self, scopes, duration: float = 0.0) -> None:
        """Grant C{scopes} for C{duration} seconds, or for the session when 0."""
        scopes = [s for s in scopes if s in SCOPES]
        if not scopes:
            return
        now = self._clock.seconds()
        expires_at = now + duration if duration > 0 else None
        for scope in scopes:
            cancel(self._timers.pop(scope, None))
            self._expiry[scope] = expires_at
            if expires_at is not None:
                self._timers[scope] = self._clock.callLater(duration, self._expire, scope)
            self.history.append(GrantEvent(now, scope, "granted", expires_at))
        self._changed("granted " + ", ".join(scopes))

    def revoke(self, scope: str, reason: str = "revoked by the customer") -> None:
        """Take C{scope} back at once."""
        if self._drop(scope, "revoked"):
            self._changed(f"{scope} {reason}")

    def revoke_all(self, reason: str = "revoked by the customer") -> None:
        """Take every scope back at once."""
        dropped = [scope for scope in list(self._expiry) if self._drop(scope, "revoked")]
        if dropped:
            self._changed(f"{', '.join(dropped)} {reason}")

    def _expire(self, scope: str) -> None:
        self._timers.pop(scope, None)
        if self._drop(scope, "expired"):
            self._changed(f"{scope} ran out")

    def _drop(self, scope: str, what: str) -> bool:
        if scope not in self._expiry:
            return False
        del self._expiry[scope]
        cancel(self._timers.pop(scope, None))
        self.history.append(GrantEvent(self._clock.seconds(), scope, what))
        return True

    def stop(self) -> None:
        """The session ended: every grant ends with it."""
        for scope in list(self._expiry):
            self._drop(scope, "revoked")
