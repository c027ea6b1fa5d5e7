"""
The operator's desk: the console's control connection to the gateway.  It
logs in (getting a short-lived operator certificate for a fresh key), makes
codes (adding the secret part, which never goes to the gateway), for the
operator or for their team, hears of customers waiting, and picks them up
on a data connection as a L{ConsoleSession}.

A teammate's team code: the secret part is only in the console that made
it (and with the customer), so whoever else picks it up types it in,
read to them by the customer.
"""

import json

import attrs
from cryptography import x509

from console.session import ConsoleSession
from wire import codes, commands, identity, logs
from wire.session_commands import SessionLimits

# 32**3 = 32768 guesses; a guess costs a whole session attempt and three
# failures burn the code.
MINIMUM_SECRET_LENGTH = 3
# The end of the console's log a problem report sends (the gateway's
# default limit, [problem_reports] max_bytes).
PROBLEM_REPORT_BYTES = 1024 * 1024


@attrs.frozen
class LiveCode:
    """A code this operator made: the routing part from the gateway, the secret part from us."""

    routing: str
    secret: str = attrs.field(repr=False)
    expires_at: float
    team: str = ""  # the team whose queue it waits in; "" for the operator's own

    def code(self) -> str:
        """The whole code."""
        return self.routing + self.secret

    def display(self) -> str:
        """The code as read out, e.g. C{K7QM-4XZ}."""
        return codes.display(self.code())


def read_out_code(routing: str, typed: str) -> str:
    """
    The whole code of C{routing} with the last part C{typed} as the
    customer read it out (the whole code read out is taken too).

    @raise codes.InvalidCode: if C{typed} is not a code's part, or too short.
    """
    secret = codes.normalise(typed)
    if secret.startswith(routing) and len(secret) >= len(routing) + MINIMUM_SECRET_LENGTH:
        secret = secret[len(routing):]
    if len(secret) < MINIMUM_SECRET_LENGTH:
        raise codes.InvalidCode(
            f"the last part of a code has at least {MINIMUM_SECRET_LENGTH} characters; ask the customer to read it again")
    return routing + secret


class Desk:
    """
    One operator's control connection.  C{connect(role, on_event)} fires
    with a new connection to the gateway that has said C{Hello} in C{role}
    (the control one, and one per data leg); C{events(command, arguments)}
    hears every gateway event.
    """

    log = logs.logger(__name__)

    def __init__(self, clock, connect, receive_directory: str, events=lambda command, arguments: None,
                 limits: SessionLimits = SessionLimits()):
        self.clock = clock
        self._connect = connect
        self.receive_directory = receive_directory
        self._events = events
        self.limits = limits
        self.control = None
        self.identity: identity.OperatorIdentity | None = None
        self.record_sessions = False  # every session must be recorded (the organisation's policy)
        self.certificate_pem: bytes | None = None
        self._key_pem: bytes | None = None
        self.codes: dict[str, LiveCode] = {}
        self.waiting: dict[str, str | None] = {}  # routing part → ticket (None: ask with PickUp)

    async def login(self, username: str, password: str, totp: str = "", new_password: str = "") \
            -> identity.OperatorIdentity:
        """
        Connect, log in and get this session's operator certificate; with
        the authenticator's code C{totp} and a C{new_password} to change
        to when given.
        """
        self.control = await self._connect(commands.ROLE_OPERATOR, self._event)
        request = identity.make_request(username)
        extra = {"totp": totp or None, "new_password": new_password or None}
        answer = await self.control.callRemote(
            commands.Login, username=username, password=password, certificate_request=request.request_pem,
            **{k: v for k, v in extra.items() if v is not None},
        )
        self.certificate_pem = answer["certificate"]
        # The organisation's policy; the console obeys it (the gateway cannot see the session).
        self.record_sessions = bool(answer.get("record_sessions"))
        self._key_pem = request.key_pem()
        self.identity = identity.read_identity(x509.load_pem_x509_certificate(self.certificate_pem))
        return self.identity

    async def team_queue(self) -> list[dict]:
        """
        The customers already waiting on our team's codes (made by a
        teammate or by an earlier login): C{routing}, C{team} and
        C{created_by} each.  Those that come later arrive as events.
        """
        listed = (await self.control.callRemote(commands.ListSessions))["sessions"]
        found = []
        for s in listed:
            if s["team"] and s["state"] == "waiting" and s["routing"] not in self.codes:
                self.waiting.setdefault(s["routing"], None)
                found.append({"routing": s["routing"], "team": s["team"], "created_by": s["created_by"] or ""})
        return found

    async def new_code(self, team: bool = False) -> LiveCode:
        """
        A new code: the gateway's routing part and a secret part of our
        own; with C{team}, one that waits in the queue of our team.
        """
        created = await self.control.callRemote(commands.CreateSession, **({"team": True} if team else {}))
        # The gateway says how long the secret part should be, but a gateway
        # must never be able to shorten it below what makes guessing hopeless.
        length = max(created["secret_length"], MINIMUM_SECRET_LENGTH)
        live = LiveCode(created["routing"], codes.random_part(length), created["expires_at"], created["team"] or "")
        self.codes[live.routing] = live
        return live

    async def cancel(self, routing: str) -> None:
        """Withdraw an unused code."""
        await self.control.callRemote(commands.CancelSession, routing=routing)
        self.codes.pop(routing, None)

    def _event(self, command, arguments) -> None:
        if command is commands.CustomerWaiting:
            self.waiting[arguments["routing"]] = arguments.get("ticket")
        elif command in (commands.CustomerLeft, commands.CodeTimedOut, commands.CustomerTaken):
            self.waiting.pop(arguments["routing"], None)
        self._events(command, arguments)

    def whole_code(self, routing: str, secret: str | None = None) -> str:
        """The whole code of C{routing}: ours, or with C{secret} (see L{read_out_code})."""
        live = self.codes.get(routing)
        return live.code() if live is not None else read_out_code(routing, secret or "")

    async def pick_up(self, routing: str, ui, secret: str | None = None) -> ConsoleSession:
        """
        Attach to the customer waiting on C{routing}; the returned session
        confirms the code with their agent next.  For a teammate's team
        code, C{secret} is the last part as the customer read it out.
        """
        code = self.whole_code(routing, secret)
        ticket = self.waiting.pop(routing)
        if ticket is None:
            ticket = (await self.control.callRemote(commands.PickUp, routing=routing))["ticket"]
        session = ConsoleSession(
            self.clock, ui, code, self.certificate_pem, self._key_pem, self.receive_directory,
            lambda: self._report_failure(routing), self.limits,
        )
        data = await self._connect(commands.ROLE_OPERATOR_DATA, None)
        await data.switch(commands.Attach, session.make_layers(), ticket=ticket)
        return session

    # -- uploads -------------------------------------------------------------------------------

    async def _upload(self, command, document: bytes, **fixed) -> dict:
        """Send C{document} in the parts of C{command}; the last part's answer."""
        pieces = commands.upload_pieces(document)
        answer = {}
        for part, data in enumerate(pieces):
            answer = await self.control.callRemote(
                command, part=part, parts=len(pieces), size=len(document), data=data, **fixed)
        return answer

    async def upload_transcript(self, routing: str, chat, events, notes: str = "") -> int:
        """
        Upload a session's transcript (its chat messages and events, as the
        session core keeps them, and the operator's notes) to the gateway,
        which stores it encrypted with the session record; fires with the
        document's size.  Errors: C{TooLarge}, C{NotYourSession},
        C{UnknownCode}, C{BadUpload}, C{Busy} (L{wire.commands}).
        """
        transcript = {
            "chat": [attrs.asdict(m) for m in chat],
            "events": [attrs.asdict(e) for e in events],
            "notes": notes,
        }
        document = json.dumps(transcript, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        await self._upload(commands.UploadTranscript, document, routing=routing)
        self.log.info("transcript of code {tag} uploaded ({size} bytes)", tag=codes.fingerprint(routing),
                      size=len(document))
        return len(document)

    async def report_problem(self, text: str, limit: int = PROBLEM_REPORT_BYTES) -> int:
        """
        Send the console's log (C{text}; only its last C{limit} bytes) to
        the gateway for the administrators; fires with the report's number.
        """
        data = text.encode("utf-8")
        if len(data) > limit:
            data = data[-limit:]
            # Start at a whole character and a whole line.
            data = data.decode("utf-8", errors="ignore").split("\n", 1)[-1].encode("utf-8")
        answer = await self._upload(commands.ReportProblem, data)
        return answer["report_id"]

    def _report_failure(self, routing: str) -> None:
        d = self.control.callRemote(commands.ReportConfirmationFailure, routing=routing)
        d.addCallback(lambda answer: self.log.warn(
            "confirmation failure {failures} reported; code burnt: {burnt}", **answer))
        d.addErrback(lambda f: self.log.warn("could not report a confirmation failure: {problem}", problem=str(f.value)))
