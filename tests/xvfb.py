"""
A private X server for the tests that need a display: Xvfb on a free
display number, started and stopped by the test, never the developer's
own display.
"""

import os
import select
import shutil
import subprocess
import time

XVFB = shutil.which("Xvfb")
if XVFB is None:
    raise ImportError("Xvfb is needed for the display tests: make test installs it (package xvfb)")


class Xvfb:
    """One running Xvfb; C{display} is its name, e.g. C{:57}."""

    def __init__(self, width: int = 1280, height: int = 800, depth: int = 24):
        self.display = None
        self.process = None
        for number in range(50 + os.getpid() % 200, 400):
            if os.path.exists(f"/tmp/.X{number}-lock") or os.path.exists(f"/tmp/.X11-unix/X{number}"):
                continue
            read, write = os.pipe()
            process = subprocess.Popen(
                [XVFB, f":{number}", "-screen", "0", f"{width}x{height}x{depth}", "-nolisten", "tcp",
                 "-displayfd", str(write), "-noreset"],
                pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            os.close(write)
            started = self._wait_ready(read, process)
            os.close(read)
            if started:
                self.display, self.process = f":{number}", process
                return
            process.kill()
            process.wait()
        raise RuntimeError("no free X display number for Xvfb")

    @staticmethod
    def _wait_ready(read: int, process, timeout: float = 10.0) -> bool:
        """Whether Xvfb wrote its display number (it does once it accepts clients)."""
        deadline = time.monotonic() + timeout

        # Xvfb writes the number and the newline separately; closing the pipe
        # before the newline would kill it with SIGPIPE.
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read], [], [], 0.1)
            if ready:
                chunk = os.read(read, 16)
                if not chunk:
                    return False
                seen += chunk
                if seen.endswith(b"\n"):
                    return bool(seen.strip())
            elif process.poll() is not None:
                return False
        return False

    def environment(self) -> dict:
        """A copy of the environment pointing at this display."""
        return {**os.environ, "DISPLAY": self.display}

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(testcase, **size) -> Xvfb:
    """An Xvfb for C{testcase}, stopped when it ends; DISPLAY points at it meanwhile."""
    server = Xvfb(**size)
    testcase.addCleanup(server.stop)
    testcase.patch(os, "environ", server.environment())
    return server


def xdotool(server: Xvfb, *arguments: str) -> str:
    """Run xdotool on C{server}'s display; returns its output."""
    return subprocess.run(
        ["xdotool", *arguments], env=server.environment(), check=True, capture_output=True, text=True, timeout=10
    ).stdout
