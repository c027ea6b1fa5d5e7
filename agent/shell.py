"""
The customer's own shell in a pseudo-terminal, as the customer's user and
never elevated: what the operator's command prompt runs on.
"""

import fcntl
import os
import pwd
import struct
import termios

from twisted.internet import protocol
from zope.interface import implementer

from agent.interfaces import IShell, IShellFactory


def users_shell() -> str:
    """The customer's login shell ($SHELL, else the password database, else /bin/sh)."""
    return os.environ.get("SHELL") or pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"


class _ShellProtocol(protocol.ProcessProtocol):
    def __init__(self, output, exited):
        self._output = output
        self._exited = exited

    def childDataReceived(self, fd, data):
        self._output(data)

    def processEnded(self, reason):
        status = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        self._exited(status, signal)


@implementer(IShell)
class PtyShell:
    """One shell process on a pty."""

    def __init__(self, transport):
        self._transport = transport

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def resize(self, columns: int, rows: int) -> None:
        fcntl.ioctl(self._transport.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def close(self) -> None:
        if self._transport.pid is not None:
            self._transport.signalProcess("HUP")

    def pause(self) -> None:
        self._transport.pauseProducing()

    def resume(self) -> None:
        self._transport.resumeProducing()


@implementer(IShellFactory)
class PtyShellFactory:
    """Starts C{shell} (default: the customer's login shell) in a pty, in their home directory."""

    def __init__(self, reactor, shell: str | None = None):
        self._reactor = reactor
        self._shell = shell

    def open(self, columns, rows, output, exited) -> PtyShell:
        shell = self._shell or users_shell()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PONTE_")}
        environment.update(TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows))
        transport = self._reactor.spawnProcess(
            _ShellProtocol(output, exited), shell, [shell], env=environment,
            path=os.path.expanduser("~"), usePTY=True,
        )
        opened = PtyShell(transport)
        opened.resize(columns, rows)
        return opened
