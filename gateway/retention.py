"""
Retention: connection events older than the configured number of days are
deleted by a periodic job.
"""

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from wire import logs

DAY = 86400.0


class RetentionService(Service):
    """Every C{interval} seconds, purge connection events older than C{days}."""

    log = logs.logger(__name__)

    def __init__(self, store, clock, days: int, interval: float):
        self.store = store
        self.clock = clock
        self.days = days
        self.interval = interval
        self._loop = None

    def purge(self):
        """Delete what is past retention now; fires with the count."""
        cutoff = self.clock.seconds() - self.days * DAY
        d = self.store.purge_events(cutoff)

        def report(count):
            if count:
                self.log.info(
                    "retention: deleted {count} connection events older than {days} days",
                    count=count,
                    days=self.days,
                )
            return count

        def failed(failure):
            self.log.failure("retention: purging connection events failed", failure)

        return d.addCallbacks(report, failed)

    def startService(self):
        super().startService()
        self._loop = LoopingCall(self.purge)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return super().stopService()
