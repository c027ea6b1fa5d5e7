"""
The switchboard: what the gateway does for each command of the gateway
protocol, independent of how the bytes arrive.

It ties together the router (which code is where), the relays (the byte
pipes), the record store and the failed-attempt limits, and it sends the
operators their events.  Protocols (L{gateway.protocol}) are thin and call
into it with a L{Peer} describing their connection.
"""

import datetime
import json
import zlib

import attrs
from cryptography.hazmat.primitives import serialization
from zope.interface import implementer

from gateway import credentials, pki, records
from gateway.credentials import Credentials
from gateway.config import GatewayConfig
from gateway.ratelimit import FailureLimiter, GlobalBudget
from gateway.relay import Relay, RelayLimits
from gateway.router import IRouterListener, Router, RouterLimits, State
from gateway.totp import TotpSettings
from wire import codes, commands, logs
from wire.commands import (
    BadCertificateRequest,
    BadUpload,
    Busy,
    CodeBusy,
    HelloRequired,
    NoTeam,
    NotLoggedIn,
    NotYourSession,
    PasswordChangeRequired,
    RateLimited,
    TooLarge,
    UnknownCode,
    VersionMismatch,
)

# Errors that count as a failed attempt at guessing a code.
_CODE_FAILURES = (
    commands.UnknownCode,
    commands.CodeExpired,
    commands.CodeUsed,
    commands.CodeCancelled,
)


def team_wording(team: str) -> str:
    """Who a customer is told waits behind a team code: "the Helpdesk team"."""
    return f"the {team}" if team.lower().endswith("team") else f"the {team} team"


@attrs.define(eq=False)
class Peer:
    """One connection to the gateway, as the switchboard sees it."""

    address: str
    transport: str = "tls"
    role: str | None = None
    operator: object = None  # records.Operator once logged in
    events: object = None  # callable(command, **arguments) to reach an operator
    uploads: dict = attrs.Factory(dict)  # uploads in progress: key → _Upload


# Uploads one connection may have in progress at once.
MAX_UPLOADS_IN_PROGRESS = 4
# Slack for compressed data larger than its document (zlib adds at most 5
# bytes per 16 KiB block of incompressible data, and a few more).
_COMPRESSION_SLACK = 1024


@attrs.define
class _Upload:
    """The parts of one upload received so far."""

    parts: int
    size: int
    next: int = 0
    received: int = 0
    chunks: list = attrs.Factory(list)


def _check_transcript(document: bytes) -> dict:
    """The transcript's JSON object, checked for the parts the gateway knows."""
    try:
        value = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadUpload(f"the transcript is not UTF-8 JSON: {e}") from None
    if not isinstance(value, dict):
        raise BadUpload("the transcript is not a JSON object")
    fields = {"chat": ("author", "text", "sent_at"), "events": ("at", "kind", "detail")}
    for name, needed in fields.items():
        items = value.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and all(k in i for k in needed) for i in items):
            raise BadUpload(f"the transcript's {name} is not a list of objects with {', '.join(needed)}")
    if not isinstance(value.get("notes", ""), str):
        raise BadUpload("the transcript's notes are not text")
    return value


@implementer(IRouterListener)
class Switchboard:
    """The gateway's behaviour for each command; see the module docstring."""

    log = logs.logger(__name__)

    def __init__(self, config: GatewayConfig, clock, store, check_password=None, operator_ca=None,
                 hash_password=None):
        """
        @param check_password: C{(encoded, password)} → Deferred of whether
            they match (by default Argon2 in a thread); C{hash_password}
            likewise, C{password} → Deferred of its encoded hash.
        @param operator_ca: the L{pki.OperatorCA} that signs operator
            certificates at login (loaded once, at start); without it a
            login with a certificate request is refused.
        """
        self.config = config
        self.operator_ca = operator_ca
        self._certificate_lifetime = datetime.timedelta(hours=config.operator_certificate_lifetime)
        self._clock = clock
        # The clock is the reactor (or a test clock): its seconds() are Unix time.
        self._wall = clock.seconds
        self.store = store
        self.router = Router(
            clock,
            RouterLimits(
                routing_length=config.routing_length,
                validity=config.code_validity,
                attach_deadline=config.attach_deadline,
                max_live_codes=config.max_live_codes,
                confirmation_failures=config.confirmation_failures,
            ),
            self,
        )
        self.relay_limits = RelayLimits(
            pre_attach_buffer=config.pre_attach_buffer,
            high_water=config.relay_high_water,
            idle_timeout=config.relay_idle_timeout,
            tcp_keepalive=config.tcp_keepalive,
        )
        self.lookup_limiter = FailureLimiter(
            clock, config.failed_lookups_per_minute, config.failed_lookup_max_backoff
        )
        self.login_limiter = FailureLimiter(
            clock, config.failed_logins_per_minute, config.failed_lookup_max_backoff
        )
        self.global_budget = GlobalBudget(clock, config.global_failed_lookups_per_minute)
        self._online: dict[str, list[Peer]] = {}
        self._terms = config.terms_text()
        self._sealing: records.TranscriptKey | None = None
        self.credentials = Credentials(
            store, self.login_limiter, self._wall, self._sealing_key, self.record,
            TotpSettings(window=config.totp_drift_steps),
            check_password or credentials.check_password_in_thread,
            hash_password or credentials.hash_password_in_thread,
        )

    # -- records -----------------------------------------------------------

    def record(self, kind: str, peer: Peer, reason: str = "", session_id=None) -> None:
        """Store a connection event; failures to store are logged, not raised."""
        d = self.store.add_event(self._wall(), kind, peer.address, reason, session_id)
        d.addErrback(
            lambda f: self.log.failure("could not record a {kind} event", f, kind=kind)
        )

    def _update_session(self, session_id: str, **fields) -> None:
        d = self.store.update_session(session_id, **fields)
        d.addErrback(lambda f: self.log.failure("could not update a session record", f))

    def _record_end(self, session, peer: Peer, reason: str, **fields) -> None:
        """Record that C{session}'s customer side ended, and why."""
        self._update_session(session.session_id, ended_at=self._wall(), outcome=reason, **fields)
        self.record("end", peer, reason, session.session_id)

    # -- connections -------------------------------------------------------

    def connected(self, peer: Peer) -> None:
        """A TLS connection was accepted."""
        self.record("connect", peer)

    def disconnected(self, peer: Peer, reason: str) -> None:
        """A connection that was not (or not yet) a relay leg closed."""
        if peer.operator is not None:
            self._offline(peer)
        self.record("disconnect", peer, reason)

    def _offline(self, peer: Peer) -> None:
        """Stop sending C{peer}'s operator events to it."""
        online = self._online.get(peer.operator.username, [])
        if peer in online:
            online.remove(peer)
        if not online:
            self._online.pop(peer.operator.username, None)

    def hello(self, peer: Peer, version: int, role: str) -> dict:
        """Check the client's protocol version and role."""
        if peer.role is not None:
            raise HelloRequired("Hello was already sent on this connection")
        if version != commands.PROTOCOL_VERSION:
            self.record("hello-failed", peer, f"version {version}")
            raise VersionMismatch(
                f"this client speaks Ponte protocol version {version}, the gateway speaks "
                f"version {commands.PROTOCOL_VERSION}: update the client"
            )
        if role not in commands.ROLES:
            self.record("hello-failed", peer, f"role {role[:40]!r}")
            raise HelloRequired(f"unknown role {role[:40]!r}; expected one of {commands.ROLES}")
        peer.role = role
        self.record("hello", peer, role)
        return {"version": commands.PROTOCOL_VERSION, "gateway": self.config.gateway_name}

    def _require(self, peer: Peer, role: str) -> None:
        if peer.role is None:
            raise HelloRequired("send Hello first")
        if peer.role != role:
            raise HelloRequired(f"this command is not for a connection in the {peer.role} role")

    def _require_operator(self, peer: Peer):
        self._require(peer, commands.ROLE_OPERATOR)
        if peer.operator is None:
            raise NotLoggedIn("log in first")
        return peer.operator

    # -- operators ---------------------------------------------------------

    async def login(self, peer: Peer, username: str, password: str, certificate_request=None, totp=None,
                    new_password=None) -> dict:
        """
        Check an operator's password (in a thread) and, for an account
        that has one, their authenticator code, and log them in.  With a
        PEM C{certificate_request}, also issue them an operator
        certificate (PEM, answered as C{certificate}); a bad request
        refuses the login.  With C{new_password}, the password is changed
        as part of the login; an account that must change its password
        cannot log in without one.
        """
        self._require(peer, commands.ROLE_OPERATOR)
        operator = await self.credentials.authenticate(peer, username, password)
        # Everything that can refuse the login without the second factor
        # comes before it: checking a code uses it up.
        if new_password is not None:
            self.credentials.check_new_password(peer, password, new_password)
        elif operator.must_change_password:
            self.record("login-failed", peer, "must change the password")
            raise PasswordChangeRequired(
                "your administrator requires you to choose a new password before you go on"
            )
        if operator.has_totp:
            await self.credentials.check_code(peer, operator, totp)
        new_hash = None if new_password is None else await self.credentials.hash_password(new_password)
        certificate = None
        if certificate_request is not None:
            try:
                certificate = self._issue(operator, certificate_request)
            except BadCertificateRequest:
                self.record("login-failed", peer, "bad certificate request")
                raise
        if new_hash is not None:
            await self.store.set_password(operator.username, new_hash)
            self.record("password-changed", peer, operator.username)
            self.log.info("operator {who} changed their password", who=operator.username)
        if peer.operator is not None:
            self._offline(peer)
        peer.operator = operator
        self._online.setdefault(operator.username, []).append(peer)
        self.record("login", peer, operator.username)
        self.log.info("operator {who} logged in from {address}", who=operator.username, address=peer.address)
        answer = {"display_name": operator.display_name, "organisation": self.config.organisation,
                  "record_sessions": operator.must_record or self.config.record_sessions}
        if certificate is not None:
            serial = f"{certificate.serial_number:x}"
            self.record("certificate", peer, f"{operator.username} serial {serial}")
            self.log.info(
                "operator certificate {serial} issued to {who}, valid until {until}",
                serial=serial,
                who=operator.username,
                until=certificate.not_valid_after_utc.isoformat(),
            )
            answer["certificate"] = certificate.public_bytes(serialization.Encoding.PEM)
        return answer

    def _issue(self, operator, request_pem: bytes):
        """An operator certificate for C{operator}'s key in C{request_pem}."""
        if self.operator_ca is None:
            raise BadCertificateRequest("this gateway has no operator CA and issues no certificates")
        try:
            return pki.issue_operator_certificate(
                request_pem,
                self.operator_ca.certificate,
                self.operator_ca.key,
                username=operator.username,
                display_name=operator.display_name,
                organisation=self.config.organisation,
                group=operator.group,
                lifetime=self._certificate_lifetime,
                now=datetime.datetime.fromtimestamp(self._wall(), datetime.timezone.utc),
            )
        except pki.BadCertificateRequest as e:
            raise BadCertificateRequest(str(e)) from None
        except ValueError as e:
            # The account's own names do not fit a certificate (a display
            # name above 64 characters, say): not the console's fault.
            self.log.error(
                "cannot issue an operator certificate to {who}: {why}", who=operator.username, why=e
            )
            raise BadCertificateRequest(
                f"the gateway cannot issue a certificate for this account ({e}); ask your administrator"
            ) from None

    def create(self, peer: Peer, team: bool = False) -> dict:
        """Make a new routing part for the logged-in operator (for their team's queue with C{team})."""
        operator = self._require_operator(peer)
        if team and not operator.group:
            raise NoTeam("your account is in no team, so it cannot make team codes; ask your administrator")
        team_name = operator.group if team else ""
        session = self.router.create(operator.username, operator.display_name, team_name)
        d = self.store.add_session(session.session_id, operator.username, self._wall())
        if team_name:
            d.addCallback(lambda _: self.store.update_session(session.session_id, team=team_name))
        d.addErrback(lambda f: self.log.failure("could not record a session", f))
        self.log.info("code {tag} created by {who}{for_team}", tag=session.tag, who=operator.username,
                      for_team=f" for team {team_name}" if team_name else "")
        answer = {
            "routing": session.routing,
            "expires_at": session.expires_at,
            "routing_length": self.config.routing_length,
            "secret_length": self.config.secret_length,
        }
        if team_name:
            answer["team"] = team_name
        return answer

    def cancel(self, peer: Peer, routing: str) -> dict:
        """Withdraw one of the operator's unused codes."""
        operator = self._require_operator(peer)
        session = self.router.cancel(self._routing(routing), operator.username)
        self._update_session(session.session_id, ended_at=self._wall(), outcome="cancelled")
        return {}

    def sessions(self, peer: Peer) -> dict:
        """The operator's live codes, and the customers waiting in their team's queue."""
        operator = self._require_operator(peer)
        listed = []
        for s in self.router.sessions_of(operator.username, operator.group):
            item = {"routing": s.routing, "state": s.state.value, "expires_at": s.expires_at}
            if s.ticket and (s.picked_up_by == operator.username or (not s.team and s.owner == operator.username)):
                item["ticket"] = s.ticket
            if s.team:
                item.update(team=s.team, created_by=s.operator_name)
            listed.append(item)
        return {"sessions": listed}

    def pick_up(self, peer: Peer, routing: str) -> dict:
        """Take the customer waiting on a code; their ticket."""
        operator = self._require_operator(peer)
        session = self.router.pick_up(self._routing(routing), operator.username, operator.group)
        self.record("pick-up", peer, operator.username, session.session_id)
        self._update_session(session.session_id, picked_up_by=operator.username)
        if session.team:
            self.log.info("{who} picked up the customer on team code {tag}", who=operator.username, tag=session.tag)
            for teammate in self._team_peers(session.team):
                if teammate.operator.username != operator.username:
                    teammate.events(commands.CustomerTaken, routing=session.routing, by=operator.display_name)
        return {"ticket": session.ticket}

    def confirmation_failed(self, peer: Peer, routing: str) -> dict:
        """The console's report that the end-to-end confirmation failed."""
        operator = self._require_operator(peer)
        routing = self._routing(routing)
        relay = self._relay_of(routing)
        session = self.router.confirmation_failed(routing, operator.username)
        if relay is not None:
            relay.close("end-to-end confirmation failed")
        burnt = session.state is State.BURNT
        self._update_session(session.session_id, confirmation_failures=session.confirmation_failures)
        self.record("confirmation-failed", peer, "burnt" if burnt else "", session.session_id)
        self.log.warn(
            "end-to-end confirmation failed on code {tag} ({n} so far)",
            tag=session.tag,
            n=session.confirmation_failures,
        )
        return {"failures": session.confirmation_failures, "burnt": burnt}

    # -- uploads -------------------------------------------------------------

    def _upload_part(self, peer: Peer, key, part: int, parts: int, size: int, data: bytes, limit: int,
                     what: str) -> tuple[int, bytes | None]:
        """
        Take one part of an upload of a C{size}-byte document, compressed
        and split in C{parts}: the compressed bytes received so far, and the
        document once its last part is in (else C{None}).  Any error drops
        the upload (it starts again at part 0).
        """
        try:
            if size > limit:
                raise TooLarge(f"{what} of {size} bytes: this gateway accepts at most {limit} bytes")
            if not (0 <= size and 0 < parts <= limit // commands.UPLOAD_PIECE + 2 and 0 <= part < parts):
                raise BadUpload(f"part {part} of {parts} of a {what} of {size} bytes")
            if len(data) > commands.UPLOAD_PIECE:
                raise BadUpload(f"a part of {len(data)} bytes (at most {commands.UPLOAD_PIECE})")
            if part == 0:
                peer.uploads.pop(key, None)
                if len(peer.uploads) >= MAX_UPLOADS_IN_PROGRESS:
                    raise BadUpload(f"more than {MAX_UPLOADS_IN_PROGRESS} uploads at once on this connection")
                peer.uploads[key] = _Upload(parts, size)
            upload = peer.uploads.get(key)
            if upload is None or (upload.next, upload.parts, upload.size) != (part, parts, size):
                raise BadUpload(f"part {part} of the {what} came out of order: send it again from part 0")
            upload.chunks.append(data)
            upload.next += 1
            upload.received += len(data)
            if upload.received > size + size // 1000 + _COMPRESSION_SLACK:
                raise BadUpload(f"the compressed {what} is larger than its document")
            if upload.next < parts:
                return upload.received, None
            del peer.uploads[key]
            inflater = zlib.decompressobj()
            document = inflater.decompress(b"".join(upload.chunks), size + 1)
            if len(document) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
                raise BadUpload(f"the {what} does not decompress to its {size} bytes")
            return upload.received, document
        except (TooLarge, BadUpload):
            peer.uploads.pop(key, None)
            raise
        except zlib.error as e:
            peer.uploads.pop(key, None)
            raise BadUpload(f"the {what} is not zlib data: {e}") from None

    def _sealing_key(self, what: str) -> records.TranscriptKey:
        """The key that seals transcripts and account secrets, loaded (or made) once."""
        if self._sealing is None:
            path = self.config.transcript_key_path
            try:
                self._sealing, made = records.TranscriptKey.load_or_create(path)
            except records.TranscriptKeyError as e:
                self.log.error("cannot {what}: {problem}", what=what, problem=str(e))
                raise Busy(f"the gateway cannot {what} now (its key is unusable); tell the administrator") \
                    from None
            if made:
                self.log.info("made the transcript key {path} (id {key_id})", path=path,
                              key_id=self._sealing.key_id)
        return self._sealing

    async def upload_transcript(self, peer: Peer, routing: str, part: int, parts: int, size: int,
                                data: bytes) -> dict:
        """
        One part of a session's transcript, from the operator who owns the
        session; the last part stores it, sealed, with the session record.
        """
        operator = self._require_operator(peer)
        routing = self._routing(routing)
        session = self.router.get(routing)
        if session is None:
            raise UnknownCode("there is no session with this code (any more)")
        if operator.username not in (session.owner, session.picked_up_by):
            self.record("transcript-refused", peer, "not the owner", session.session_id)
            raise NotYourSession("this code belongs to another operator")
        if session.paired_at is None:
            raise UnknownCode("no session took place on this code")
        key = ("transcript", session.session_id)
        received, document = self._upload_part(peer, key, part, parts, size, data,
                                                self.config.max_transcript_bytes, "transcript")
        if document is None:
            return {"received": received, "stored": False}
        _check_transcript(document)
        sealing = self._sealing_key("store transcripts")
        nonce, sealed = sealing.seal(session.session_id, document)
        try:
            await self.store.put_transcript(session.session_id, operator.username, self._wall(), len(document),
                                            sealing.key_id, nonce, sealed)
        except Exception:
            self.log.failure("could not store a transcript")
            raise Busy("the gateway could not store the transcript now; try again") from None
        self.record("transcript", peer, f"{len(document)} bytes", session.session_id)
        self.log.info("transcript of the session on code {tag} stored ({size} bytes, sealed)",
                      tag=session.tag, size=len(document))
        return {"received": received, "stored": True}

    async def report_problem(self, peer: Peer, part: int, parts: int, size: int, data: bytes) -> dict:
        """One part of an operator's problem report; the last part stores it for the administrators."""
        operator = self._require_operator(peer)
        received, document = self._upload_part(peer, ("report",), part, parts, size, data,
                                                self.config.max_problem_report_bytes, "problem report")
        if document is None:
            return {"received": received, "stored": False}
        text = document.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        try:
            number = await self.store.add_problem_report(
                operator.username, self._wall(), peer.address, text, self.config.problem_reports_per_hour)
        except records.TooManyReports as e:
            self.record("problem-report-refused", peer, "rate limited")
            raise RateLimited(
                f"at most {self.config.problem_reports_per_hour} problem reports an hour; "
                f"retry after {e.retry_after} s") from None
        except Exception:
            self.log.failure("could not store a problem report")
            raise Busy("the gateway could not store the problem report now; try again") from None
        self.record("problem-report", peer, f"#{number}, {len(document)} bytes")
        self.log.info("problem report #{number} from {who} stored ({size} bytes)", number=number,
                      who=operator.username, size=len(document))
        return {"received": received, "stored": True, "report_id": number}

    def _relay_of(self, routing: str):
        session = self.router.get(routing)
        leg = session.agent_leg if session is not None else None
        return leg.relay if leg is not None else None

    # -- agents ------------------------------------------------------------

    def _routing(self, text: str) -> str:
        try:
            routing = codes.normalise(text)
        except codes.InvalidCode as e:
            raise UnknownCode(f"this is not a session code: {e}") from None
        if len(routing) != self.config.routing_length:
            raise UnknownCode("there is no session with this code; check the code and try again")
        return routing

    def _guarded(self, peer: Peer, kind: str, action):
        """Run a code look-up under the failed-attempt limits."""
        self._require(peer, commands.ROLE_AGENT)
        wait = self.lookup_limiter.retry_after(peer.address)
        if wait is not None:
            self.record(f"{kind}-failed", peer, "rate limited")
            raise RateLimited(RateLimited.format(wait))
        try:
            return action()
        except CodeBusy:
            self.record(f"{kind}-failed", peer, "a customer is already on this code")
            self.log.warn("{kind} refused: a customer is already on that code", kind=kind)
            raise
        except _CODE_FAILURES as e:
            blocked = self.lookup_limiter.failed(peer.address)
            self.record(f"{kind}-failed", peer, type(e).__name__)
            if blocked:
                self.log.warn(
                    "{address} blocked for {seconds} s after repeated wrong codes",
                    address=peer.address,
                    seconds=blocked,
                )
            if self.global_budget.failed():
                self.log.critical(
                    "ALARM: more than {n} wrong codes in a minute from all addresses: "
                    "someone may be guessing codes",
                    n=self.global_budget.per_minute,
                )
                self.record("alarm", peer, "global failed-lookup budget exceeded")
            raise

    def lookup(self, peer: Peer, routing: str) -> dict:
        """Who waits behind this code, and the terms; consumes nothing."""

        def action():
            session = self.router.lookup(self._routing(routing))
            self.record("lookup", peer, session_id=session.session_id)
            return {
                "operator_name": team_wording(session.team) if session.team else session.operator_name,
                "organisation": self.config.organisation,
                "terms_text": self._terms,
                "terms_version": self.config.terms_version,
                "privacy_url": self.config.privacy_url,
                "attach_deadline": int(self.config.attach_deadline),
            }

        return self._guarded(peer, "lookup", action)

    def join(self, peer: Peer, routing: str):
        """
        Put the agent on the code; returns the relay leg its connection
        switches to.
        """

        def action():
            routing_part = self._routing(routing)
            relay = Relay(
                self._clock,
                self.relay_limits,
                codes.fingerprint(routing_part),
                self._relay_ended,
                self._agent_left,
            )
            relay.agent_peer = peer
            session, ticket = self.router.join(routing_part, relay.agent)
            relay.session = session
            self.record("join", peer, session_id=session.session_id)
            self._update_session(
                session.session_id, joined_at=self._wall(), agent_transport=peer.transport
            )
            self.log.info("customer joined code {tag}", tag=session.tag)
            if session.team:
                for teammate in self._team_peers(session.team):
                    teammate.events(commands.CustomerWaiting, routing=session.routing, team=session.team,
                                    created_by=session.operator_name)
            else:
                self._tell(session.owner, commands.CustomerWaiting, routing=session.routing, ticket=ticket)
            return relay.agent

        return self._guarded(peer, "join", action)

    # -- operator data connection ------------------------------------------

    def attach(self, peer: Peer, ticket: str):
        """Redeem a ticket; returns the operator's relay leg."""
        self._require(peer, commands.ROLE_OPERATOR_DATA)
        try:
            session = self.router.attach(ticket, None)
        except commands.BadTicket:
            self.record("attach-failed", peer, "bad ticket")
            raise
        relay = session.agent_leg.relay
        session.operator_leg = leg = relay.attach()
        relay.operator_peer = peer
        self.record("pair", peer, session_id=session.session_id)
        self._update_session(
            session.session_id, paired_at=self._wall(), operator_transport=peer.transport
        )
        self.log.info("operator attached to code {tag}: relaying", tag=session.tag)
        return leg

    # -- relay outcomes ----------------------------------------------------

    def _relay_ended(self, relay: Relay, reason: str) -> None:
        session = relay.session
        # The router ignores a relay that is no longer its session's (e.g. after a
        # failed confirmation reopened the code).
        current = session.agent_leg is relay.agent
        if current:
            self.router.ended(session, reason)
        self._record_end(
            session,
            relay.agent_peer,
            reason,
            bytes_to_agent=relay.bytes_to_agent,
            bytes_to_operator=relay.bytes_to_operator,
        )
        self.log.info(
            "session on code {tag} ended: {reason} ({up} bytes to the operator, "
            "{down} to the customer)",
            tag=session.tag,
            reason=reason,
            up=relay.bytes_to_operator,
            down=relay.bytes_to_agent,
        )
        self._tell_session(
            session,
            commands.SessionEnded,
            routing=session.routing,
            reason=reason,
            bytes_to_agent=relay.bytes_to_agent,
            bytes_to_operator=relay.bytes_to_operator,
        )

    def _agent_left(self, relay: Relay, reason: str) -> None:
        session = relay.session
        if self.router.agent_left(session, reason):
            self._record_end(session, relay.agent_peer, reason)
            self._tell_session(session, commands.CustomerLeft, routing=session.routing, reason=reason)

    # -- IRouterListener ---------------------------------------------------

    def code_expired(self, session) -> None:
        self._update_session(session.session_id, ended_at=self._wall(), outcome="expired")
        self._tell(session.owner, commands.CodeTimedOut, routing=session.routing, reason="expired")

    def attach_deadline_passed(self, session) -> None:
        reason = "no operator picked up"
        relay = session.agent_leg.relay
        relay.close_unpaired(reason)
        self._record_end(session, relay.agent_peer, reason)
        self._tell_session(session, commands.CodeTimedOut, routing=session.routing, reason=reason)

    # -- events ------------------------------------------------------------

    def _tell(self, username: str, command, **arguments) -> None:
        for peer in list(self._online.get(username, ())):
            peer.events(command, **arguments)

    def _team_peers(self, team: str) -> list[Peer]:
        """The control connections of the operators of C{team} logged in now."""
        return [p for peers in self._online.values() for p in peers if p.operator.group == team]

    def _tell_session(self, session, command, **arguments) -> None:
        """
        Tell C{session}'s owner and whoever picked it up; for a team code
        nobody picked up yet, the whole team (it left their queue).
        """
        told = {session.owner, session.picked_up_by}
        for username in told - {None}:
            self._tell(username, command, **arguments)
        if session.team and session.picked_up_by is None:
            for peer in self._team_peers(session.team):
                if peer.operator.username not in told:
                    peer.events(command, **arguments)
