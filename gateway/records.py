"""
The gateway's records as SQL on a DB-API cursor: operators, session
metadata and connection events.  The same functions serve the running
gateway (through L{gateway.store}) and C{ponte-admin} (directly).
"""

import os
import sqlite3

import attrs


@attrs.frozen
class Operator:
    """An operator account."""

    username: str
    display_name: str
    password_hash: str = attrs.field(repr=False)
    is_admin: bool
    disabled: bool
    created_at: float
    group: str = ""  # named in the operator's certificates; "" for none


class DuplicateOperator(Exception):
    """An operator with this username exists already."""


class NoSuchOperator(Exception):
    """No operator has this username."""


_OPERATOR_COLUMNS = "username, display_name, password_hash, is_admin, disabled, created_at, group_name"


def _operator(row) -> Operator:
    username, display_name, password_hash, is_admin, disabled, created_at, group = row
    return Operator(
        username, display_name, password_hash, bool(is_admin), bool(disabled), created_at, group
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
            f"INSERT INTO operators ({_OPERATOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            attrs.astuple(operator),
        )
    except sqlite3.IntegrityError:
        raise DuplicateOperator(f"an operator called {operator.username!r} exists already")


def update_operator(cursor, username: str, **changes) -> None:
    """
    Change C{password_hash}, C{disabled}, C{is_admin} or C{display_name}.

    @raise NoSuchOperator: if there is no such operator.
    """
    allowed = {"password_hash", "disabled", "is_admin", "display_name"}
    if not changes or set(changes) - allowed:
        raise ValueError(f"can change only {sorted(allowed)}")
    assignments = ", ".join(f"{column} = ?" for column in changes)
    cursor.execute(
        f"UPDATE operators SET {assignments} WHERE username = ?",
        (*changes.values(), username),
    )
    if cursor.rowcount == 0:
        raise NoSuchOperator(f"there is no operator called {username!r}")


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
