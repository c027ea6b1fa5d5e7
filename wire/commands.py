"""
AMP commands of the gateway protocol, spoken on every connection to the
gateway before it becomes a relay leg.  C{docs/protocol.md} describes each
command, its arguments, errors and limits, and the order they come in.
"""

import re
import zlib

from twisted.protocols.amp import (
    AmpList,
    Boolean,
    Command,
    Float,
    Integer,
    ProtocolSwitchCommand,
    String,
    Unicode,
)

PROTOCOL_VERSION = 1

ROLE_OPERATOR = "operator"
ROLE_AGENT = "agent"
ROLE_OPERATOR_DATA = "operator-data"
ROLES = (ROLE_OPERATOR, ROLE_AGENT, ROLE_OPERATOR_DATA)


class GatewayError(Exception):
    """
    Base of the errors the gateway answers with; the message is meant for
    the person in front of the client.
    """


class VersionMismatch(GatewayError):
    """The client and the gateway speak different protocol versions."""


class HelloRequired(GatewayError):
    """A command came before C{Hello}, or is not allowed for this role."""


class AuthenticationFailed(GatewayError):
    """Wrong username or password (deliberately not saying which)."""


class AccountDisabled(GatewayError):
    """The operator's account exists but has been disabled."""


class TotpRequired(GatewayError):
    """
    The password is right, and the account also needs the code its
    authenticator app shows (send C{Login} again with C{totp}).
    """


class WrongTotp(GatewayError):
    """The authenticator code is wrong, too old, or was used already."""


class PasswordChangeRequired(GatewayError):
    """
    The credentials are right, but the account must choose a new password
    first (send C{Login} again with C{new_password}).
    """


class WeakPassword(GatewayError):
    """The new password is refused; the message says why."""


class NotLoggedIn(GatewayError):
    """The command needs a logged-in operator."""


class UnknownCode(GatewayError):
    """No session has this code."""


class CodeExpired(GatewayError):
    """The code was valid but its time ran out."""


class CodeUsed(GatewayError):
    """The code has already been used for a session."""


class CodeCancelled(GatewayError):
    """The operator cancelled the code."""


class CodeBusy(GatewayError):
    """A customer is already connected with this code."""


class RateLimited(GatewayError):
    """
    Too many failed attempts from this address; the message says when to
    try again (see L{retry_after}).
    """

    @staticmethod
    def format(seconds: int, what: str = "wrong codes") -> str:
        """The message for a wait of C{seconds}, parseable by L{retry_after}."""
        return f"too many {what} from this address; retry after {seconds} s"

    @staticmethod
    def retry_after(message: str) -> int | None:
        """The number of seconds to wait, read back from a message."""
        found = re.search(r"retry after (\d+) s", message)
        return int(found.group(1)) if found else None


class BadCertificateRequest(GatewayError):
    """
    The certificate request sent with C{Login} is not PEM, is malformed,
    its signature does not verify, or its key type is not accepted.
    """


class BadTicket(GatewayError):
    """The attach ticket is unknown, already used or expired."""


class NotYourSession(GatewayError):
    """The code belongs to another operator."""


class NoTeam(GatewayError):
    """A team code was asked for by an operator who is in no team."""


class Busy(GatewayError):
    """The gateway is at a configured capacity limit."""


class TooLarge(GatewayError):
    """An upload is larger than the gateway accepts; the message gives the limit."""


class BadUpload(GatewayError):
    """An upload's parts came out of order, or what they hold is malformed."""


_CODE_ERRORS = {
    UnknownCode: b"UNKNOWN_CODE",
    CodeExpired: b"CODE_EXPIRED",
    CodeUsed: b"CODE_USED",
    CodeCancelled: b"CODE_CANCELLED",
    RateLimited: b"RATE_LIMITED",
    HelloRequired: b"HELLO_REQUIRED",
    Busy: b"BUSY",
}
_OPERATOR_ERRORS = {NotLoggedIn: b"NOT_LOGGED_IN", HelloRequired: b"HELLO_REQUIRED"}


class Hello(Command):
    """
    First command on every connection: the client's protocol version and
    role (C{operator}, C{agent} or C{operator-data}).
    """

    arguments = [(b"version", Integer()), (b"role", Unicode())]
    response = [(b"version", Integer()), (b"gateway", Unicode())]
    errors = {VersionMismatch: b"VERSION_MISMATCH", HelloRequired: b"HELLO_REQUIRED"}


class _OmittedIfAbsent(String):
    """
    Optional bytes (AMP's C{String}) that are left out of the decoded
    answer when absent (AMP's own optional values decode as C{None}), so
    that an answer without them is exactly the answer of before they
    existed.
    """

    def __init__(self):
        super().__init__(optional=True)

    def fromBox(self, name, strings, objects, proto):
        if strings.get(name) is not None:
            super().fromBox(name, strings, objects, proto)


class Login(Command):
    """
    Operator login on the control connection.  With a PEM certificate
    request (see L{wire.identity.make_request}), the answer also carries a
    short-lived operator certificate (PEM) for the request's key.  C{totp}
    is the authenticator app's code, for an account that has one;
    C{new_password} replaces the password as part of this login (required
    when the account must change its password).  C{record_sessions} in
    the answer: the organisation requires every session to be recorded.
    """

    arguments = [
        (b"username", Unicode()),
        (b"password", Unicode()),
        (b"certificate_request", String(optional=True)),
        (b"totp", Unicode(optional=True)),
        (b"new_password", Unicode(optional=True)),
    ]
    response = [
        (b"display_name", Unicode()),
        (b"organisation", Unicode()),
        (b"certificate", _OmittedIfAbsent()),
        (b"record_sessions", Boolean(optional=True)),
    ]
    errors = {
        AuthenticationFailed: b"AUTHENTICATION_FAILED",
        AccountDisabled: b"ACCOUNT_DISABLED",
        RateLimited: b"RATE_LIMITED",
        HelloRequired: b"HELLO_REQUIRED",
        BadCertificateRequest: b"BAD_CERTIFICATE_REQUEST",
        TotpRequired: b"TOTP_REQUIRED",
        WrongTotp: b"WRONG_TOTP",
        PasswordChangeRequired: b"PASSWORD_CHANGE_REQUIRED",
        WeakPassword: b"WEAK_PASSWORD",
        Busy: b"BUSY",
    }


class CreateSession(Command):
    """
    Make a routing part for a new session owned by the logged-in operator
    (with C{team}, one that waits in the queue of the operator's team).
    The console adds the secret part itself.
    """

    arguments = [(b"team", Boolean(optional=True))]
    response = [
        (b"routing", Unicode()),
        (b"expires_at", Float()),
        (b"routing_length", Integer()),
        (b"secret_length", Integer()),
        (b"team", Unicode(optional=True)),
    ]
    errors = {**_OPERATOR_ERRORS, Busy: b"BUSY", NoTeam: b"NO_TEAM"}


class CancelSession(Command):
    """Withdraw a code that no customer has used yet."""

    arguments = [(b"routing", Unicode())]
    response: list = []
    errors = {
        **_OPERATOR_ERRORS,
        **_CODE_ERRORS,
        CodeBusy: b"CODE_BUSY",
        NotYourSession: b"NOT_YOUR_SESSION",
    }


class ListSessions(Command):
    """The logged-in operator's live codes and their states."""

    arguments: list = []
    response = [
        (
            b"sessions",
            AmpList(
                [
                    (b"routing", Unicode()),
                    (b"state", Unicode()),
                    (b"expires_at", Float()),
                    (b"ticket", Unicode(optional=True)),
                    (b"team", Unicode(optional=True)),
                    (b"created_by", Unicode(optional=True)),
                ]
            ),
        )
    ]
    errors = _OPERATOR_ERRORS


class PickUp(Command):
    """
    Take the customer waiting on a code: one of the operator's own, or a
    team code of their team that no teammate took first.  Answers the
    one-time ticket for C{Attach}.
    """

    arguments = [(b"routing", Unicode())]
    response = [(b"ticket", Unicode())]
    errors = {
        **_OPERATOR_ERRORS,
        **_CODE_ERRORS,
        CodeBusy: b"CODE_BUSY",
        NotYourSession: b"NOT_YOUR_SESSION",
    }


class Lookup(Command):
    """
    Agent: who waits behind this routing part, and on which terms.
    Consumes nothing.
    """

    arguments = [(b"routing", Unicode())]
    response = [
        (b"operator_name", Unicode()),
        (b"organisation", Unicode()),
        (b"terms_text", Unicode()),
        (b"terms_version", Unicode()),
        (b"privacy_url", Unicode()),
        (b"attach_deadline", Integer()),
    ]
    errors = {**_CODE_ERRORS, CodeBusy: b"CODE_BUSY"}


class Join(ProtocolSwitchCommand):
    """
    Agent: take this code and turn the connection into a relay leg.  The
    first bytes the gateway then sends are one notice (see L{wire.notice}).
    """

    arguments = [(b"routing", Unicode())]
    # A protocol switch answers with no values (AMP's rule).
    response: list = []
    errors = {**_CODE_ERRORS, CodeBusy: b"CODE_BUSY"}


class Attach(ProtocolSwitchCommand):
    """
    Operator data connection: redeem a one-time ticket and become the
    operator's relay leg, spliced to the waiting agent.
    """

    arguments = [(b"ticket", Unicode())]
    response: list = []
    errors = {BadTicket: b"BAD_TICKET", HelloRequired: b"HELLO_REQUIRED"}


class ReportConfirmationFailure(Command):
    """
    Console: the end-to-end confirmation with the customer failed.  The
    code may be tried again; after three failures it is burnt.
    """

    arguments = [(b"routing", Unicode())]
    response = [(b"failures", Integer()), (b"burnt", Boolean())]
    errors = {**_OPERATOR_ERRORS, **_CODE_ERRORS, NotYourSession: b"NOT_YOUR_SESSION"}


# Uploads on the operator's control connection: a document too large for
# one AMP value is sent compressed (zlib) in parts of at most UPLOAD_PIECE
# bytes, one command per part, in order; see docs/protocol.md.

UPLOAD_PIECE = 60 * 1024
_UPLOAD_ERRORS = {**_OPERATOR_ERRORS, TooLarge: b"TOO_LARGE", BadUpload: b"BAD_UPLOAD", Busy: b"BUSY"}


def upload_pieces(document: bytes) -> list[bytes]:
    """C{document} compressed (zlib) and cut into the C{data} of consecutive upload parts."""
    data = zlib.compress(document, 6)
    return [data[i : i + UPLOAD_PIECE] for i in range(0, len(data), UPLOAD_PIECE)]


class UploadTranscript(Command):
    """
    Console: one part of the transcript of one of the operator's sessions
    (a JSON object: C{chat}, C{events}, C{notes}), zlib-compressed and
    split.  C{size} is the JSON document's length in bytes (the same in
    every part).  The answer to the last part says it is stored.
    """

    arguments = [
        (b"routing", Unicode()),
        (b"part", Integer()),
        (b"parts", Integer()),
        (b"size", Integer()),
        (b"data", String()),
    ]
    response = [(b"received", Integer()), (b"stored", Boolean())]
    errors = {**_UPLOAD_ERRORS, UnknownCode: b"UNKNOWN_CODE", NotYourSession: b"NOT_YOUR_SESSION"}


class ReportProblem(Command):
    """
    Console: one part of a problem report for the administrators (the
    console's own log, UTF-8 text), zlib-compressed and split as for
    L{UploadTranscript}.  The answer to the last part carries the report's
    number.
    """

    arguments = [(b"part", Integer()), (b"parts", Integer()), (b"size", Integer()), (b"data", String())]
    response = [(b"received", Integer()), (b"stored", Boolean()), (b"report_id", Integer(optional=True))]
    errors = {**_UPLOAD_ERRORS, RateLimited: b"RATE_LIMITED"}


# Events from the gateway to the operator's control connection.


class CustomerWaiting(Command):
    """
    A customer joined one of the operator's codes (here is the ticket), or
    a team code of the operator's team (no ticket: the first teammate to
    send C{PickUp} gets it).
    """

    arguments = [
        (b"routing", Unicode()),
        (b"ticket", Unicode(optional=True)),
        (b"team", Unicode(optional=True)),
        (b"created_by", Unicode(optional=True)),
    ]
    requiresAnswer = False


class CustomerTaken(Command):
    """A teammate picked up the customer waiting on a team code."""

    arguments = [(b"routing", Unicode()), (b"by", Unicode())]
    requiresAnswer = False


class CustomerLeft(Command):
    """The customer disconnected before the operator attached."""

    arguments = [(b"routing", Unicode()), (b"reason", Unicode())]
    requiresAnswer = False


class CodeTimedOut(Command):
    """A code expired unused, or its customer waited past the attach deadline."""

    arguments = [(b"routing", Unicode()), (b"reason", Unicode())]
    requiresAnswer = False


class SessionEnded(Command):
    """A paired session's relay closed; why, and how many bytes it carried."""

    arguments = [
        (b"routing", Unicode()),
        (b"reason", Unicode()),
        (b"bytes_to_agent", Integer()),
        (b"bytes_to_operator", Integer()),
    ]
    requiresAnswer = False
