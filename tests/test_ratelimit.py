"""Failed-attempt limits, on a test clock."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from gateway.ratelimit import FailureLimiter, GlobalBudget


class FailureLimiterTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.limiter = FailureLimiter(self.clock, per_minute=5, max_backoff=3600)

    def fail(self, n, address="192.0.2.1"):
        return [self.limiter.failed(address) for _ in range(n)]

    def test_five_a_minute_are_allowed(self):
        self.assertEqual(self.fail(5), [None] * 5)
        self.assertIsNone(self.limiter.retry_after("192.0.2.1"))

    def test_sixth_blocks_for_a_minute(self):
        self.assertEqual(self.fail(6)[-1], 60)
        self.assertEqual(self.limiter.retry_after("192.0.2.1"), 60)
        self.clock.advance(59.5)
        self.assertEqual(self.limiter.retry_after("192.0.2.1"), 1)
        self.clock.advance(0.5)
        self.assertIsNone(self.limiter.retry_after("192.0.2.1"))

    def test_other_addresses_are_not_affected(self):
        self.fail(6)
        self.assertIsNone(self.limiter.retry_after("192.0.2.2"))

    def test_backoff_doubles(self):
        blocks = []
        for _ in range(4):
            blocks.append(self.fail(6)[-1])
            self.clock.advance(blocks[-1])
        self.assertEqual(blocks, [60, 120, 240, 480])

    def test_backoff_is_capped(self):
        limiter = FailureLimiter(self.clock, per_minute=1, max_backoff=100)
        blocks = []
        for _ in range(4):
            limiter.failed("a")
            blocks.append(limiter.failed("a"))
            self.clock.advance(blocks[-1])
        self.assertEqual(blocks, [60, 100, 100, 100])

    def test_failures_spread_over_time_are_allowed(self):
        """Five a minute, for ever, never block."""
        for _ in range(20):
            self.assertEqual(self.fail(5), [None] * 5)
            self.clock.advance(61)

    def test_quiet_address_starts_afresh(self):
        """Quiet for max_backoff after its block ended, an address starts afresh."""
        self.fail(6)
        self.clock.advance(60 + 3599)
        self.fail(6)
        self.clock.advance(120 + 3600)
        self.assertEqual(self.fail(6)[-1], 60)

    def test_stale_records_are_swept(self):
        for n in range(100):
            self.limiter.failed(f"198.51.100.{n}")
        self.clock.advance(3601)
        self.limiter.retry_after("x")
        self.assertEqual(len(self.limiter), 0)


class GlobalBudgetTests(unittest.TestCase):
    def test_alarm_once_per_minute(self):
        clock = Clock()
        budget = GlobalBudget(clock, per_minute=10)
        results = [budget.failed() for _ in range(30)]
        self.assertEqual(results.count(True), 1)
        self.assertTrue(results[10])
        clock.advance(60)
        self.assertEqual([budget.failed() for _ in range(11)].count(True), 1)
