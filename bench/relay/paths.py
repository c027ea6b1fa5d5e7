"""
The three paths between peer A and peer B, each able to open a fresh
connection for a round: through the gateway, through haproxy, and direct.
"""

from bench.relay import ampsync
from bench.relay.errors import BenchError
from bench.relay.peer import PeerProcess
from wire import commands


class ServerPath:
    """
    A path where B is a TLS server: A connects to C{port}, which is B's own
    listener (direct) or a relay's frontend in front of it (haproxy).
    """

    def __init__(self, name: str, port: int, relay_pid: int | None):
        self.name = name
        self.port = port
        self.relay_pid = relay_pid

    def open(self, a: PeerProcess, b: PeerProcess) -> str:
        """Connect A to B; returns the TLS version and cipher A negotiated."""
        b.start("accept")
        cipher = a.call("connect", port=self.port)
        b.result()
        return cipher


class GatewayPath:
    """
    The Ponte gateway: a new session per connection, B joining as the
    customer and A attaching as the operator's data connection.
    """

    name = "gateway"

    def __init__(self, port: int, relay_pid: int, control: ampsync.AmpChannel):
        self.port = port
        self.relay_pid = relay_pid
        self.control = control

    def open(self, a: PeerProcess, b: PeerProcess) -> str:
        """Pair A and B in a fresh session; returns A's TLS version and cipher."""
        (routing,) = ampsync.create_codes(self.control, 1)
        b.start("agent", port=self.port, routing=routing)
        try:
            waiting = self.control.event(commands.CustomerWaiting)
        except (OSError, ConnectionError) as e:
            b.result(timeout=5)  # the agent's own error says more, if it has one
            raise BenchError(f"no CustomerWaiting event for the benchmark's session: {e}") from e
        if waiting["routing"] != routing:
            raise BenchError(f"CustomerWaiting for {waiting['routing']}, expected {routing}")
        cipher = a.call("operator", port=self.port, ticket=waiting["ticket"])
        b.result()
        return cipher


def close(a: PeerProcess, b: PeerProcess) -> None:
    """Close both ends of the current connection."""
    a.call("close")
    b.call("close")
