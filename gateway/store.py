"""
The gateway's record store: an interface, and its SQLite implementation
through C{twisted.enterprise.adbapi} (one database thread).
"""

from twisted.enterprise import adbapi
from zope.interface import Interface, implementer

from gateway import records, schema


class IStore(Interface):
    """
    Where the gateway keeps accounts and records.  Every method returns a
    Deferred.
    """

    def get_operator(username):
        """The L{records.Operator} called C{username}, or C{None}."""

    def set_password(username, password_hash):
        """Replace an operator's password hash; the account no longer must change it."""

    def use_totp_step(username, step):
        """Fires with whether C{username} had not used TOTP step C{step} (or a later one) yet; records it."""

    def add_event(at, kind, address, reason="", session_id=None):
        """Record a connection event."""

    def purge_events(before):
        """Delete connection events older than C{before}; fires with the count."""

    def add_session(session_id, operator, created_at):
        """Record a session's creation."""

    def update_session(session_id, **fields):
        """Update a session's metadata (see L{records.SESSION_FIELDS})."""

    def get_session(session_id):
        """A session's metadata as a dict, or C{None}."""

    def events(kind=None):
        """Connection events, oldest first."""

    def close():
        """Release the store's resources."""


class ITranscriptStore(Interface):
    """
    Where the gateway keeps sessions' transcripts (sealed before they get
    here: see L{records.TranscriptKey}) and operators' problem reports.
    Every method returns a Deferred.
    """

    def put_transcript(session_id, operator, uploaded_at, size, key_id, nonce, sealed):
        """Store a session's sealed transcript, replacing an earlier one."""

    def get_transcript(session_id):
        """A sealed transcript as a dict (see L{records.get_transcript}), or C{None}."""

    def add_problem_report(operator, at, address, text, per_hour=None):
        """
        Store a problem report; fires with its number, or fails with
        L{records.TooManyReports} if C{operator} sent C{per_hour} in the last hour.
        """

    def problem_reports():
        """(id, operator, at, address, size) of every problem report."""


@implementer(IStore, ITranscriptStore)
class SQLiteStore:
    """L{IStore} on one SQLite file, migrated to the current schema on open."""

    def __init__(self, path: str):
        connection = records.open_database(path)
        try:
            schema.migrate(connection)
        finally:
            connection.close()
        self._pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,
            isolation_level=None,
            timeout=10,
            cp_min=1,
            cp_max=1,
            cp_openfun=records.configure,
        )

    def _run(self, function, *args, **kwargs):
        return self._pool.runInteraction(function, *args, **kwargs)

    def get_operator(self, username):
        return self._run(records.get_operator, username)

    def set_password(self, username, password_hash):
        return self._run(records.update_operator, username, password_hash=password_hash, must_change_password=False)

    def use_totp_step(self, username, step):
        return self._run(records.use_totp_step, username, step)

    def add_event(self, at, kind, address, reason="", session_id=None):
        return self._run(records.add_event, at, kind, address, reason, session_id)

    def purge_events(self, before):
        return self._run(records.purge_events, before)

    def add_session(self, session_id, operator, created_at):
        return self._run(records.add_session, session_id, operator, created_at)

    def update_session(self, session_id, **fields):
        return self._run(records.update_session, session_id, **fields)

    def get_session(self, session_id):
        return self._run(records.get_session, session_id)

    def events(self, kind=None):
        return self._run(records.events, kind)

    def put_transcript(self, session_id, operator, uploaded_at, size, key_id, nonce, sealed):
        return self._run(records.put_transcript, session_id, operator, uploaded_at, size, key_id, nonce, sealed)

    def get_transcript(self, session_id):
        return self._run(records.get_transcript, session_id)

    def add_problem_report(self, operator, at, address, text, per_hour=None):
        return self._run(records.add_problem_report, operator, at, address, text, per_hour)

    def problem_reports(self):
        return self._run(records.problem_reports)

    def close(self):
        self._pool.close()

