"""
Who an operator is, as C{Login} checks it: the password (Argon2, in a
thread), the failed-login limit per address, the authenticator code (each
used once), and whether a new password may be set.  Every refusal is
recorded as a C{login-failed} event and raised as the gateway error the
console shows; no password or code ever reaches a log.
"""

import hmac

import attrs
from twisted.internet import threads

from gateway import passwords, records
from gateway.ratelimit import FailureLimiter
from gateway.totp import TotpSettings, matching_step
from wire import logs
from wire.commands import (
    AccountDisabled,
    AuthenticationFailed,
    Busy,
    RateLimited,
    TotpRequired,
    WeakPassword,
    WrongTotp,
)


def check_password_in_thread(encoded, password):
    """Verify a password off the reactor thread (Argon2 takes tens of ms)."""
    return threads.deferToThread(passwords.verify_password, encoded, password)


def hash_password_in_thread(password):
    """Hash a new password off the reactor thread."""
    return threads.deferToThread(passwords.hash_password, password)


@attrs.define
class Credentials:
    """
    The checks of a login.  C{record(kind, peer, reason)} stores an event;
    C{sealing_key(what)} is the key that opens TOTP secrets (raising
    C{Busy} when it cannot be had); C{wall()} is Unix time.
    """

    store: object
    limiter: FailureLimiter
    wall: object
    sealing_key: object
    record: object
    totp: TotpSettings = TotpSettings()
    check_password: object = check_password_in_thread
    hash_password: object = hash_password_in_thread

    log = logs.logger(__name__)

    async def authenticate(self, peer, username: str, password: str) -> records.Operator:
        """The enabled operator whose password this is."""
        wait = self.limiter.retry_after(peer.address)
        if wait is not None:
            self.record("login-failed", peer, "rate limited")
            raise RateLimited(RateLimited.format(wait, "failed logins"))
        operator = await self.store.get_operator(username)
        encoded = operator.password_hash if operator else None
        ok = await self.check_password(encoded, password)
        if not ok:
            self.limiter.failed(peer.address)
            self.record("login-failed", peer, "unknown user" if operator is None else "wrong password")
            raise AuthenticationFailed("wrong username or password")
        if operator.disabled:
            self.record("login-failed", peer, "account disabled")
            raise AccountDisabled("this account is disabled; ask your administrator")
        return operator

    async def check_code(self, peer, operator: records.Operator, code) -> None:
        """Accept C{operator}'s authenticator code once, or refuse the login."""
        if not code:
            self.record("login-failed", peer, "authenticator code needed")
            raise TotpRequired("this account also needs the 6-digit code your authenticator app shows")
        try:
            secret = self.sealing_key("check authenticator codes").open_secret(
                operator.username, operator.totp_sealed)
        except records.TranscriptKeyError as e:
            self.log.error("cannot check {who}'s authenticator code: {problem}", who=operator.username,
                           problem=str(e))
            raise Busy("the gateway cannot check authenticator codes now; tell the administrator") from None
        step = matching_step(secret, code, self.wall(), self.totp)
        if step is None or not await self.store.use_totp_step(operator.username, step):
            self.limiter.failed(peer.address)
            self.record("login-failed", peer, "wrong authenticator code" if step is None else "code used already")
            raise WrongTotp(
                "wrong authenticator code" if step is None else
                "this authenticator code was used already; wait for the next one"
            )

    def check_new_password(self, peer, password: str, new_password: str) -> None:
        """Refuse a new password that is too weak or the same as the old one."""
        try:
            passwords.check_new_password(new_password)
            if hmac.compare_digest(new_password.encode(), password.encode()):
                raise ValueError("the new password must differ from the old one")
        except ValueError as e:
            self.record("login-failed", peer, "new password refused")
            raise WeakPassword(str(e)) from None
