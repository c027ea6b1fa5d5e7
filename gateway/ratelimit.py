"""
Limits on failed attempts (wrong codes, wrong passwords), per source address
with exponential backoff, and a global budget that raises an alarm.  Pure
logic on an injected clock.
"""

import collections

import attrs

WINDOW = 60.0


@attrs.define
class _Record:
    failures: collections.deque
    strikes: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class FailureLimiter:
    """
    Allows C{per_minute} failures per address in any 60 s; the next failure
    blocks the address for 60 s, doubling with each further block up to
    C{max_backoff}.  An address that stays quiet for C{max_backoff} after its
    last failure or block starts
    afresh.
    """

    def __init__(self, clock, per_minute: int, max_backoff: float):
        self._clock = clock
        self.per_minute = per_minute
        self.max_backoff = max_backoff
        self._records: dict[str, _Record] = {}
        self._next_sweep = 0.0

    def retry_after(self, address: str) -> int | None:
        """
        Seconds C{address} must still wait, or C{None} if it may try now.
        """
        now = self._clock.seconds()
        self._sweep(now)
        record = self._records.get(address)
        if record is None or record.blocked_until <= now:
            return None
        return max(1, int(record.blocked_until - now + 0.999))

    def failed(self, address: str) -> int | None:
        """
        Count a failure from C{address}.

        @return: the seconds it is now blocked for, or C{None}.
        """
        now = self._clock.seconds()
        record = self._records.get(address)
        if record is None or self._quiet(record, now):
            record = self._records[address] = _Record(collections.deque())
        record.last_failure = now
        while record.failures and record.failures[0] <= now - WINDOW:
            record.failures.popleft()
        record.failures.append(now)
        if len(record.failures) <= self.per_minute:
            return None
        backoff = min(WINDOW * 2**record.strikes, self.max_backoff)
        record.strikes += 1
        record.failures.clear()
        record.blocked_until = now + backoff
        return int(backoff)

    def _quiet(self, record: _Record, now: float) -> bool:
        """Whether C{record}'s address has been quiet long enough to start afresh."""
        return now - max(record.last_failure, record.blocked_until) >= self.max_backoff

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + WINDOW
        stale = [
            a
            for a, r in self._records.items()
            if self._quiet(r, now)
        ]
        for address in stale:
            del self._records[address]

    def __len__(self) -> int:
        return len(self._records)


class GlobalBudget:
    """
    Counts failures from everywhere per minute; L{failed} answers C{True}
    once per minute in which the budget is exceeded, so that the alarm is
    raised without flooding the log.
    """

    def __init__(self, clock, per_minute: int):
        self._clock = clock
        self.per_minute = per_minute
        self._minute = None
        self._count = 0
        self._alarmed = False

    def failed(self) -> bool:
        """Count one failure; C{True} when this one crosses the budget."""
        minute = int(self._clock.seconds() // WINDOW)
        if minute != self._minute:
            self._minute, self._count, self._alarmed = minute, 0, False
        self._count += 1
        if self._count > self.per_minute and not self._alarmed:
            self._alarmed = True
            return True
        return False
