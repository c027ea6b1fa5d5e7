"""
The database schema, as numbered migrations applied in order at start.

Each migration is a list of SQL statements; a database records the number of
the last one applied in C{PRAGMA user_version}.  Never edit a migration that
has shipped: add the next one.
"""

MIGRATIONS: list[list[str]] = [
    # 1: operators, session metadata, connection events
    [
        """CREATE TABLE operators (
            username TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            created_at REAL NOT NULL,
            joined_at REAL,
            paired_at REAL,
            ended_at REAL,
            outcome TEXT,
            bytes_to_agent INTEGER NOT NULL DEFAULT 0,
            bytes_to_operator INTEGER NOT NULL DEFAULT 0,
            agent_transport TEXT,
            operator_transport TEXT,
            confirmation_failures INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX sessions_operator ON sessions (operator, created_at)",
        """CREATE TABLE connection_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            address TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            session_id TEXT
        )""",
        "CREATE INDEX connection_events_at ON connection_events (at)",
    ],
    # 2: operator groups (named in operator certificates)
    [
        "ALTER TABLE operators ADD COLUMN group_name TEXT NOT NULL DEFAULT ''",
    ],
    # 3: sessions' transcripts (sealed: never plaintext here) and problem reports
    [
        """CREATE TABLE transcripts (
            session_id TEXT PRIMARY KEY,
            operator TEXT NOT NULL,
            uploaded_at REAL NOT NULL,
            size INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            nonce BLOB NOT NULL,
            sealed BLOB NOT NULL
        )""",
        """CREATE TABLE problem_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            operator TEXT NOT NULL,
            at REAL NOT NULL,
            address TEXT NOT NULL,
            size INTEGER NOT NULL,
            log_text TEXT NOT NULL
        )""",
        "CREATE INDEX problem_reports_operator ON problem_reports (operator, at)",
    ],
    # 4: a second factor (TOTP, its secret sealed), a forced password
    # change and forced recording for operators; codes made for a team, and
    # who picked them up
    [
        "ALTER TABLE operators ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE operators ADD COLUMN totp_sealed BLOB",
        "ALTER TABLE operators ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE operators ADD COLUMN must_record INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN team TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sessions ADD COLUMN picked_up_by TEXT",
    ],
]


def current_version(cursor) -> int:
    """The number of the last migration applied to the database."""
    cursor.execute("PRAGMA user_version")
    return cursor.fetchone()[0]


def migrate(connection) -> int:
    """
    Apply the migrations the database (a DB-API connection to SQLite) does
    not have yet, each in its own transaction.

    @return: the schema version now.
    @raise RuntimeError: if the database is newer than this program.
    """
    cursor = connection.cursor()
    version = current_version(cursor)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the database has schema version {version}, newer than this "
            f"program's {len(MIGRATIONS)}: upgrade Ponte"
        )
    for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        cursor.execute("BEGIN")
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(f"PRAGMA user_version = {number:d}")
        cursor.execute("COMMIT")
    return len(MIGRATIONS)
