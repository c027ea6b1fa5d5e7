"""The customer's desktop as the session core acts on it (X11)."""

import os

from zope.interface import implementer

from agent.interfaces import IPlatform


def default_receive_directory() -> str:
    """Where received files go: a folder the customer sees, ~/Downloads/Ponte."""
    return os.path.join(os.path.expanduser("~"), "Downloads", "Ponte")


@implementer(IPlatform)
class DesktopPlatform:
    """mss for the screen, pynput for input, a pty for the shell, psutil for system information."""

    def __init__(self, reactor, clipboard, receive_directory: str):
        from agent.input import PynputInput
        from agent.screen import ScreenSource
        from agent.shell import PtyShellFactory
        from agent.sysinfo import SystemInfoCollector

        self.screen = ScreenSource(reactor=reactor)
        # The session core makes input coordinates absolute before applying them.
        self.input = PynputInput()
        self.shells = PtyShellFactory(reactor)
        self.system_info = SystemInfoCollector()
        self.clipboard = clipboard
        self.receive_directory = receive_directory
