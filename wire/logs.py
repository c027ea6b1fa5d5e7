"""
Logging for all three programs through C{twisted.logger}, with one level
filter that the configuration sets.
"""

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    globalLogPublisher,
)

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_observer = FilteringLogObserver(globalLogPublisher, [_predicate])


def logger(namespace: str) -> Logger:
    """A logger for C{namespace} whose events pass the configured level."""
    return Logger(namespace=namespace, observer=_observer)


def set_level(name: str) -> None:
    """Let through events at level C{name} (debug, info, warn, ...) and above."""
    _predicate.setLogLevelForNamespace(None, LogLevel.levelWithName(name))
