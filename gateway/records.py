"""
The gateway's records as SQL on a DB-API cursor: operators, session
metadata, connection events, sealed transcripts and problem reports; and
the key that seals transcripts (L{TranscriptKey}).  The same functions
serve the running gateway (through L{gateway.store}) and C{ponte-admin}
(directly).
"""

import hashlib
import os
import secrets
import sqlite3
import zlib

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@attrs.frozen
class Operator:
    """An operator account."""

    username: str
    display_name: str
    password_hash: str = attrs.field(repr=False)
    is_admin: bool
    disabled: bool
    created_at: float
    group: str = ""  # named in the operator's certificates, and their team; "" for none
    must_change_password: bool = False  # the next login must set a new password
    # The TOTP secret sealed by the gateway's L{TranscriptKey} (see
    # L{TranscriptKey.seal_secret}); None when no authenticator is enrolled.
    totp_sealed: bytes | None = attrs.field(default=None, repr=False)
    totp_last_step: int = 0  # the last time step whose code was used (never twice)
    must_record: bool = False  # the console must record every session of this operator

    @property
    def has_totp(self) -> bool:
        """Whether logging in needs a code from an authenticator app."""
        return self.totp_sealed is not None


class DuplicateOperator(Exception):
    """An operator with this username exists already."""


class NoSuchOperator(Exception):
    """No operator has this username."""


_OPERATOR_COLUMNS = (
    "username, display_name, password_hash, is_admin, disabled, created_at, group_name, "
    "must_change_password, totp_sealed, totp_last_step, must_record"
)


def _operator(row) -> Operator:
    username, display_name, password_hash, is_admin, disabled, created_at, group, must_change, totp, step, record = row
    return Operator(
        username, display_name, password_hash, bool(is_admin), bool(disabled), created_at, group,
        bool(must_change), totp, step, bool(record),
    )


def get_operator(cursor, username: str) -> Operator | None:
    """The operator called C{username}, or C{None}."""
    cursor.execute(f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE username = ?", (username,))
    row = cursor.fetchone()
    return _operator(row) if row else None


def list_operators(cursor) -> list[Operator]:
    """All operators, by username."""
    cursor.execute(f"SELECT {_OPERATOR_COLUMNS} FROM operators ORDER BY username")
    return [_operator(row) for row in cursor.fetchall()]


def add_operator(cursor, operator: Operator) -> None:
    """
    Store a new operator.

    @raise DuplicateOperator: if the username is taken.
    """
    try:
        cursor.execute(
            f"INSERT INTO operators ({_OPERATOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            attrs.astuple(operator),
        )
    except sqlite3.IntegrityError:
        raise DuplicateOperator(f"an operator called {operator.username!r} exists already")


def update_operator(cursor, username: str, **changes) -> None:
    """
    Change some of C{password_hash}, C{disabled}, C{is_admin},
    C{display_name}, C{group_name}, C{must_change_password},
    C{totp_sealed}, C{totp_last_step} and C{must_record}.

    @raise NoSuchOperator: if there is no such operator.
    """
    allowed = {"password_hash", "disabled", "is_admin", "display_name", "group_name", "must_change_password",
               "totp_sealed", "totp_last_step", "must_record"}
    if not changes or set(changes) - allowed:
        raise ValueError(f"can change only {sorted(allowed)}")
    assignments = ", ".join(f"{column} = ?" for column in changes)
    cursor.execute(
        f"UPDATE operators SET {assignments} WHERE username = ?",
        (*changes.values(), username),
    )
    if cursor.rowcount == 0:
        raise NoSuchOperator(f"there is no operator called {username!r}")


def use_totp_step(cursor, username: str, step: int) -> bool:
    """
    Record that C{username} used the TOTP code of time step C{step}; false
    (and nothing changed) if that step or a later one was used already.
    """
    cursor.execute(
        "UPDATE operators SET totp_last_step = ? WHERE username = ? AND totp_last_step < ?",
        (step, username, step),
    )
    return cursor.rowcount == 1


def add_event(cursor, at: float, kind: str, address: str, reason: str = "", session_id=None) -> None:
    """Record one connection event."""
    cursor.execute(
        "INSERT INTO connection_events (at, kind, address, reason, session_id)"
        " VALUES (?, ?, ?, ?, ?)",
        (at, kind, address, reason, session_id),
    )


def purge_events(cursor, before: float) -> int:
    """Delete connection events older than C{before}; how many went."""
    cursor.execute("DELETE FROM connection_events WHERE at < ?", (before,))
    return cursor.rowcount


def events(cursor, kind: str | None = None) -> list[tuple]:
    """Connection events as (at, kind, address, reason, session_id), oldest first."""
    query = "SELECT at, kind, address, reason, session_id FROM connection_events"
    if kind is None:
        cursor.execute(query + " ORDER BY id")
    else:
        cursor.execute(query + " WHERE kind = ? ORDER BY id", (kind,))
    return cursor.fetchall()


SESSION_FIELDS = (
    "joined_at",
    "paired_at",
    "ended_at",
    "outcome",
    "bytes_to_agent",
    "bytes_to_operator",
    "agent_transport",
    "operator_transport",
    "confirmation_failures",
    "team",
    "picked_up_by",
)


def add_session(cursor, session_id: str, operator: str, created_at: float) -> None:
    """Record a new code's session."""
    cursor.execute(
        "INSERT INTO sessions (session_id, operator, created_at) VALUES (?, ?, ?)",
        (session_id, operator, created_at),
    )


def update_session(cursor, session_id: str, **fields) -> None:
    """Set some of L{SESSION_FIELDS} of a session."""
    if not fields or set(fields) - set(SESSION_FIELDS):
        raise ValueError(f"can set only {SESSION_FIELDS}")
    assignments = ", ".join(f"{column} = ?" for column in fields)
    cursor.execute(
        f"UPDATE sessions SET {assignments} WHERE session_id = ?", (*fields.values(), session_id)
    )


def get_session(cursor, session_id: str) -> dict | None:
    """A session's row as a dict, or C{None}."""
    cursor.execute("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row))


# -- transcripts ----------------------------------------------------------------


class TranscriptKeyError(Exception):
    """The transcript key cannot be read or made, or does not open a transcript; the message says why."""


class TranscriptKey:
    """
    The AES-256-GCM key that seals transcripts at rest: 32 random bytes,
    kept as 64 hexadecimal digits (and a newline) in a file of mode 0600.
    A transcript is compressed (zlib), then sealed with a fresh 96-bit
    nonce and its session id as associated data, so a sealed transcript
    moved to another session's row does not open.  C{key_id} names the
    key (not secret) so that a transcript sealed with another key is
    reported as such.  The same key seals the operators' TOTP secrets
    (L{seal_secret}), so that a copy of the database alone holds neither.
    """

    _AAD = b"ponte transcript v1\0"
    _SECRET_AAD = b"ponte account secret v1\0"

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise TranscriptKeyError("a transcript key has 32 bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"ponte transcript key id\0" + key).hexdigest()[:16]

    def __repr__(self):
        return f"<TranscriptKey {self.key_id}>"

    @classmethod
    def load(cls, path: str) -> "TranscriptKey":
        """The key in the file at C{path}."""
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise TranscriptKeyError(f"transcript key {path}: {getattr(e, 'strerror', None) or e}") from None
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise TranscriptKeyError(f"transcript key {path}: not 64 hexadecimal digits")
        return cls(key)

    @classmethod
    def create(cls, path: str) -> "TranscriptKey":
        """
        A new key, written to a new file at C{path} (mode 0600).

        @raise FileExistsError: if the file exists (a key is never replaced).
        """
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key.hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str) -> tuple["TranscriptKey", bool]:
        """The key at C{path}, made first if there is none; and whether it was made now."""
        try:
            return cls.create(path), True
        except FileExistsError:
            return cls.load(path), False
        except OSError as e:
            raise TranscriptKeyError(f"transcript key {path}: {e.strerror}") from None

    def seal(self, session_id: str, document: bytes) -> tuple[bytes, bytes]:
        """(nonce, sealed bytes) of C{document}, bound to C{session_id}."""
        nonce = secrets.token_bytes(12)
        return nonce, self._aead.encrypt(nonce, zlib.compress(document, 6), self._AAD + session_id.encode())

    def open(self, session_id: str, nonce: bytes, sealed: bytes, key_id: str | None = None) -> bytes:
        """
        The document sealed by L{seal}.

        @raise TranscriptKeyError: if it was sealed with another key, for
            another session, or was altered.
        """
        if key_id is not None and key_id != self.key_id:
            raise TranscriptKeyError(f"this transcript was sealed with key {key_id}, not with this key ({self.key_id})")
        try:
            return zlib.decompress(self._aead.decrypt(nonce, sealed, self._AAD + session_id.encode()))
        except InvalidTag:
            raise TranscriptKeyError("this transcript does not open with this key: altered, or not its session's") \
                from None


    def seal_secret(self, label: str, secret: bytes) -> bytes:
        """
        C{secret} (an account's TOTP secret) sealed and bound to C{label}
        (the account's name): nonce and sealed bytes in one value.
        """
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, secret, self._SECRET_AAD + label.encode())

    def open_secret(self, label: str, sealed: bytes) -> bytes:
        """
        The secret L{seal_secret} sealed for C{label}.

        @raise TranscriptKeyError: if it was sealed with another key, for
            another label, or was altered.
        """
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], self._SECRET_AAD + label.encode())
        except InvalidTag:
            raise TranscriptKeyError(
                f"the secret of {label!r} does not open with the key {self.key_id}: another key, or altered"
            ) from None


def put_transcript(cursor, session_id: str, operator: str, uploaded_at: float, size: int, key_id: str,
                   nonce: bytes, sealed: bytes) -> None:
    """Store a session's sealed transcript, replacing an earlier upload."""
    cursor.execute(
        "INSERT OR REPLACE INTO transcripts (session_id, operator, uploaded_at, size, key_id, nonce, sealed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (session_id, operator, uploaded_at, size, key_id, nonce, sealed),
    )


def get_transcript(cursor, session_id: str) -> dict | None:
    """A sealed transcript's row as a dict (C{nonce} and C{sealed} as bytes), or C{None}."""
    cursor.execute(
        "SELECT session_id, operator, uploaded_at, size, key_id, nonce, sealed FROM transcripts"
        " WHERE session_id = ?", (session_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    keys = ("session_id", "operator", "uploaded_at", "size", "key_id", "nonce", "sealed")
    return dict(zip(keys, row))


def list_transcripts(cursor) -> list[tuple]:
    """(session_id, operator, uploaded_at, size) of every stored transcript, oldest first."""
    cursor.execute("SELECT session_id, operator, uploaded_at, size FROM transcripts ORDER BY uploaded_at")
    return cursor.fetchall()


# -- problem reports --------------------------------------------------------------


class TooManyReports(Exception):
    """The operator has sent as many problem reports as allowed in the last hour."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def add_problem_report(cursor, operator: str, at: float, address: str, text: str,
                       per_hour: int | None = None) -> int:
    """
    Store a problem report; its number.

    @raise TooManyReports: if C{operator} sent C{per_hour} reports in the hour before C{at}.
    """
    cursor.execute("BEGIN IMMEDIATE")
    try:
        if per_hour is not None:
            cursor.execute("SELECT at FROM problem_reports WHERE operator = ? AND at > ? ORDER BY at DESC LIMIT ?",
                           (operator, at - 3600.0, per_hour))
            recent = [row[0] for row in cursor.fetchall()]
            if len(recent) >= per_hour:
                raise TooManyReports(f"{per_hour} problem reports in the last hour already",
                                     max(int(recent[-1] + 3600.0 - at) + 1, 1))
        cursor.execute(
            "INSERT INTO problem_reports (operator, at, address, size, log_text) VALUES (?, ?, ?, ?, ?)",
            (operator, at, address, len(text.encode("utf-8")), text),
        )
        number = cursor.lastrowid
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    cursor.execute("COMMIT")
    return number


def problem_reports(cursor) -> list[tuple]:
    """(id, operator, at, address, size) of every problem report, oldest first."""
    cursor.execute("SELECT id, operator, at, address, size FROM problem_reports ORDER BY id")
    return cursor.fetchall()


def get_problem_report(cursor, number: int) -> dict | None:
    """A problem report as a dict (with C{log_text}), or C{None}."""
    cursor.execute("SELECT id, operator, at, address, size, log_text FROM problem_reports WHERE id = ?", (number,))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(("id", "operator", "at", "address", "size", "log_text"), row))


def open_database(path: str) -> sqlite3.Connection:
    """
    Open (creating if needed) the SQLite database at C{path} in autocommit
    mode with write-ahead logging, as both the gateway and C{ponte-admin}
    use it.
    """
    if not os.path.exists(path):
        # Operators' password hashes live here: readable by the gateway only.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    configure(connection)
    return connection


def configure(connection) -> None:
    """The settings every connection to the database uses."""
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
