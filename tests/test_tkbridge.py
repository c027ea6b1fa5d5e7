"""The bridge's pace of draining the network → Tk queue (no Tk: a fake root)."""

from twisted.trial import unittest

from wire.tkbridge import Bridge


class FakeRoot:
    """Records what C{after} was asked to call, and when."""

    def __init__(self):
        self.scheduled = []

    def after(self, ms, function):
        self.scheduled.append(ms)
        return len(self.scheduled)


class PaceTests(unittest.TestCase):
    def setUp(self):
        self.root = FakeRoot()
        self.bridge = Bridge(self.root, reactor=None, interval_ms=15, busy_interval_ms=3, busy_passes=4)
        self.called = []

    def test_idle_looks_seldom(self):
        for _ in range(3):
            self.bridge._drain()
        self.assertEqual(self.root.scheduled, [15, 15, 15])

    def test_busy_looks_often_then_settles(self):
        self.bridge._drain()
        self.bridge.to_ui(self.called.append, 1)
        self.bridge.to_ui(self.called.append, 2)
        for _ in range(6):
            self.bridge._drain()
        self.assertEqual(self.called, [1, 2])
        # Work found: the busy pace, for 4 empty looks; then idle again.
        self.assertEqual(self.root.scheduled, [15, 3, 3, 3, 3, 15, 15])

    def test_a_failing_update_does_not_stop_the_others(self):
        def broken():
            raise RuntimeError("boom")

        self.bridge.to_ui(broken)
        self.bridge.to_ui(self.called.append, "after")
        self.bridge._drain()
        self.assertEqual(self.called, ["after"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.root.scheduled, [3])

    def test_a_batch_at_most_per_look(self):
        bridge = Bridge(self.root, reactor=None, batch=2)
        for n in range(5):
            bridge.to_ui(self.called.append, n)
        bridge._drain()
        self.assertEqual(self.called, [0, 1])
        bridge._drain()
        bridge._drain()
        self.assertEqual(self.called, [0, 1, 2, 3, 4])
