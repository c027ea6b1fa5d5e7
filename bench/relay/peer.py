"""
The two client programs of the benchmark, each in its own process: "A"
(the operator's side, the TLS client) and "B" (the customer's side, the
TLS server behind haproxy or in a direct connection).

The main process drives each one through a pipe with small requests
(C{listen}, C{connect}, C{send}, C{ping}, ...); the work itself is
blocking stdlib C{ssl} in the peer (see L{bench.relay.traffic}).
"""

import multiprocessing
import traceback

from bench.relay import ampsync, endpoints, traffic
from bench.relay.errors import BenchError

# Longest any single request may take before the main process gives up.
REQUEST_TIMEOUT = 120.0


class _Peer:
    """A peer's state and its requests (run in the peer's process)."""

    def __init__(self, files: endpoints.TlsFiles):
        self.client = endpoints.client_context(files)
        self.server = endpoints.server_context(files)
        self.listener = None
        self.sock = None

    def _established(self, sock) -> str:
        self.close()
        self.sock = sock
        return f"{sock.version()} {sock.cipher()[0]}"

    # -- making a connection -------------------------------------------------

    def listen(self, port: int = 0) -> int:
        """Listen for the connections L{accept} takes; returns the port."""
        self.listener = endpoints.listen(port)
        return self.listener.getsockname()[1]

    def accept(self) -> str:
        """Take one TLS connection (directly from A, or from haproxy)."""
        return self._established(endpoints.accept(self.listener, self.server))

    def connect(self, port: int) -> str:
        """Connect with TLS to B directly, or to haproxy."""
        return self._established(endpoints.connect(port, self.client))

    def agent(self, port: int, routing: str) -> str:
        """Join a gateway session as the customer and wait until it is paired."""
        channel = ampsync.join(port, self.client, routing)
        return self._established(ampsync.paired(channel))

    def operator(self, port: int, ticket: str) -> str:
        """Attach to a gateway session as the operator's data connection."""
        return self._established(ampsync.attach(port, self.client, ticket))

    def close(self) -> None:
        """Close the current connection, if any."""
        if self.sock is not None:
            sock, self.sock = self.sock, None
            sock.close()

    # -- traffic -------------------------------------------------------------

    def send(self, total: int) -> tuple[float, float]:
        """Bulk transfer out (see L{traffic.send})."""
        return traffic.send(self.sock, total)

    def receive(self, total: int) -> tuple[float, float]:
        """Bulk transfer in (see L{traffic.receive})."""
        return traffic.receive(self.sock, total)

    def duplex(self, total: int) -> tuple[float, float]:
        """Bulk transfer both ways (see L{traffic.duplex})."""
        return traffic.duplex(self.sock, total)

    def ping(self, count: int, size: int, warmup: int) -> list[float]:
        """Timed round trips (see L{traffic.ping})."""
        return traffic.ping(self.sock, count, size, warmup)

    def pong(self, count: int, size: int) -> None:
        """Echo (see L{traffic.pong})."""
        return traffic.pong(self.sock, count, size)


_REQUESTS = frozenset(
    ("listen", "accept", "connect", "agent", "operator", "close")
    + ("send", "receive", "duplex", "ping", "pong")
)


def serve(pipe, files: endpoints.TlsFiles) -> None:
    """A peer process's main loop: one request at a time until C{exit}."""
    peer = _Peer(files)
    try:
        while True:
            name, arguments = pipe.recv()
            if name == "exit":
                return
            try:
                if name not in _REQUESTS:
                    raise ValueError(f"unknown request {name!r}")
                pipe.send(("ok", getattr(peer, name)(**arguments)))
            except Exception:
                pipe.send(("error", traceback.format_exc(limit=6)))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        peer.close()


class PeerProcess:
    """The main process's handle on one peer process."""

    def __init__(self, name: str, files: endpoints.TlsFiles):
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, files), name=f"bench-peer-{name}", daemon=True
        )
        self._process.start()
        child.close()
        self._pending: str | None = None

    @property
    def pid(self) -> int:
        """The peer's process id."""
        return self._process.pid

    def start(self, request: str, **arguments) -> None:
        """Send a request without waiting for its result."""
        if self._pending is not None:
            raise BenchError(f"peer {self.name}: {request} sent while {self._pending} is running")
        self._pipe.send((request, arguments))
        self._pending = request

    def result(self, timeout: float = REQUEST_TIMEOUT):
        """The result of the request in progress."""
        request, self._pending = self._pending, None
        try:
            if not self._pipe.poll(timeout):
                raise BenchError(f"peer {self.name}: no result for {request} within {timeout:.0f} s")
            status, value = self._pipe.recv()
        except (EOFError, OSError) as e:
            status = self._process.exitcode
            raise BenchError(f"peer {self.name} is gone (exit status {status}): {e!r}") from e
        if status != "ok":
            raise BenchError(f"peer {self.name}: {request} failed:\n{value}")
        return value

    def call(self, request: str, **arguments):
        """Send a request and wait for its result."""
        self.start(request, **arguments)
        return self.result()

    def stop(self) -> None:
        """End the peer process (politely, then by force)."""
        try:
            self._pipe.send(("exit", {}))
        except OSError:
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._pipe.close()
