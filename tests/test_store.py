"""The SQLite store and the retention job (on a test clock)."""

import os
import sqlite3

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from gateway import records, schema
from gateway.retention import DAY, RetentionService
from gateway.store import IStore, SQLiteStore
from tests import support


class StoreTests(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp() + ".d", "ponte.sqlite3")
        os.makedirs(os.path.dirname(self.path))
        self.store = SQLiteStore(self.path)
        self.addCleanup(self.store.close)

    def test_interface(self):
        verifyObject(IStore, self.store)
        verifyObject(IStore, support.MemoryStore())

    def test_migrations_are_applied_once(self):
        connection = sqlite3.connect(self.path)
        self.addCleanup(connection.close)
        self.assertEqual(schema.current_version(connection.cursor()), len(schema.MIGRATIONS))
        self.assertEqual(schema.migrate(connection), len(schema.MIGRATIONS))

    def test_newer_database_is_refused(self):
        connection = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(connection.close)
        connection.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS) + 1}")
        with self.assertRaises(RuntimeError) as raised:
            schema.migrate(connection)
        self.assertIn("newer than this program", str(raised.exception))

    @defer.inlineCallbacks
    def test_session_metadata(self):
        yield self.store.add_session("s1", "alice", 100.0)
        yield self.store.update_session("s1", paired_at=101.0, outcome="done", bytes_to_agent=5)
        row = yield self.store.get_session("s1")
        self.assertEqual(
            (row["operator"], row["paired_at"], row["outcome"], row["bytes_to_agent"]),
            ("alice", 101.0, "done", 5),
        )
        with self.assertRaises(ValueError):
            yield self.store.update_session("s1", operator="mallory")

    @defer.inlineCallbacks
    def test_operators(self):
        self.assertIsNone((yield self.store.get_operator("alice")))
        connection = records.open_database(self.path)
        self.addCleanup(connection.close)
        records.add_operator(connection.cursor(), support.operator_record())
        operator = yield self.store.get_operator("alice")
        self.assertEqual(operator.display_name, "Alice Agostini")

    @defer.inlineCallbacks
    def test_password_change_and_totp_steps(self):
        connection = records.open_database(self.path)
        self.addCleanup(connection.close)
        records.add_operator(connection.cursor(), attrs.evolve(support.operator_record(), must_change_password=True))
        yield self.store.set_password("alice", "new-hash")
        operator = yield self.store.get_operator("alice")
        self.assertEqual((operator.password_hash, operator.must_change_password), ("new-hash", False))
        self.assertTrue((yield self.store.use_totp_step("alice", 100)))
        self.assertFalse((yield self.store.use_totp_step("alice", 100)))
        self.assertFalse((yield self.store.use_totp_step("alice", 99)))
        self.assertTrue((yield self.store.use_totp_step("alice", 101)))
        self.assertEqual((yield self.store.get_operator("alice")).totp_last_step, 101)


class RetentionTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_connection_events_older_than_thirty_days_are_purged(self):
        """The job runs at start and then every interval, deleting what is past retention."""
        path = os.path.join(self.mktemp() + ".d", "ponte.sqlite3")
        os.makedirs(os.path.dirname(path))
        store = SQLiteStore(path)
        self.addCleanup(store.close)
        clock = Clock()
        now = 1_800_000_000.0
        clock.advance(now)
        for age_days in (31, 30.5, 29.9, 1):
            yield store.add_event(now - age_days * DAY, "connect", "192.0.2.1")
        service = RetentionService(store, clock, days=30, interval=3600)
        runs, purged = [], []
        original = service.purge

        def purge():
            runs.append(clock.seconds())
            return original().addCallback(purged.append)

        service.purge = purge
        service.startService()
        self.addCleanup(service.stopService)
        yield support.wait_for(lambda: len(purged) == 1)
        self.assertEqual(purged, [2])
        self.assertEqual(len((yield store.events())), 2)
        clock.advance(3599)
        self.assertEqual(len(runs), 1)
        clock.advance(1)
        self.assertEqual(len(runs), 2)
        yield support.wait_for(lambda: len(purged) == 2)
        self.assertEqual(purged[1], 0)
        clock.advance(0.1 * DAY)  # the 29.9-day-old event is now past 30 days
        yield support.wait_for(lambda: len(purged) == 3)
        self.assertEqual(purged[2], 1)
        self.assertEqual(len((yield store.events())), 1)
