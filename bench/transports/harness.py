"""
What the benchmark runs on: the gateway in its own process (C{twistd
ponte}, with the HTTPS and HTTP ports on), a stand-in for the test case
that the proxies of L{tests.proxies} and the helpers of L{tests.support}
expect, and a watch on other work on the machine.
"""

import os

import attrs
from twisted.internet import defer
from twisted.python import failure

from bench.relay import procstat, relays
from bench.relay.errors import BenchError


class Cleanups:
    """
    The two methods of a trial C{TestCase} that the test helpers use:
    C{mktemp()} (a fresh path under C{directory}, not created) and
    C{addCleanup()}.  L{run} runs the cleanups, last added first.
    """

    def __init__(self, directory: str):
        self._directory = directory
        self._count = 0
        self._cleanups = []

    def mktemp(self) -> str:
        """A path under the benchmark's directory that nothing uses yet."""
        self._count += 1
        return os.path.join(self._directory, f"tmp{self._count}")

    def addCleanup(self, function, *args, **kwargs) -> None:  # noqa: N802 (TestCase's name)
        """Call C{function(*args, **kwargs)} in L{run} (it may return a Deferred)."""
        self._cleanups.append((function, args, kwargs))

    async def run(self) -> list[str]:
        """Run every cleanup, even after one failed; returns what failed."""
        errors = []
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            try:
                await defer.maybeDeferred(function, *args, **kwargs)
            except Exception:
                errors.append(failure.Failure().getErrorMessage())
        return errors


@attrs.frozen
class GatewayServer:
    """The gateway's process and where it listens."""

    process: relays.RelayProcess
    setup: relays.GatewaySetup
    https_port: int
    http_port: int

    @property
    def raw_port(self) -> int:
        return self.setup.port

    def ca_pem(self) -> bytes:
        """The CA certificate the clients trust."""
        with open(self.setup.files.ca, "rb") as f:
            return f.read()


def start_gateway(directory: str) -> GatewayServer:
    """
    Make a temporary state and configuration as the relay benchmark does,
    turn the HTTPS and HTTP listeners on (free ports on 127.0.0.1), and
    run C{twistd -n ponte} on it until all three ports listen.
    """
    setup = relays.make_gateway_state(directory, web=True)
    process = relays.start_gateway(setup, directory)
    try:
        for port in (setup.https_port, setup.http_port):
            process.wait_listening(port)
    except BaseException:
        process.stop()
        raise
    return GatewayServer(process, setup, setup.https_port, setup.http_port)


def descendants(pid: int) -> set[int]:
    """The processes started by C{pid}, their children, and so on."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    text = f.read()
            except OSError:
                continue  # gone meanwhile
            parents[int(entry)] = int(text[text.rindex(")") + 2 :].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def child_named(name: str) -> int:
    """The process id of this process's descendant called C{name}."""
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
                if f.read().strip() == name:
                    return pid
        except OSError:
            continue
    raise BenchError(f"no process called {name} among this process's children")


class CpuMeter:
    """CPU seconds used by some processes (name -> pid) since the meter was made."""

    def __init__(self, pids: dict[str, int]):
        self._pids = pids
        self._before = {name: procstat.cpu_seconds(pid) for name, pid in pids.items()}

    def used(self) -> dict[str, float]:
        """CPU seconds per name since the start."""
        return {name: procstat.cpu_seconds(pid) - self._before[name] for name, pid in self._pids.items()}


def other_load() -> procstat.OtherLoad:
    """CPU use of processes other than this one and its children, from now on."""
    me = os.getpid()
    return procstat.OtherLoad({me} | descendants(me))
