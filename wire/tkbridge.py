"""
Where a Tk program's two threads meet (the agent's panel, the console's
windows): Tk owns the main thread, the reactor runs in one background
thread.  Tk → network goes through C{reactor.callFromThread}; network → Tk
through a queue that Tk drains with C{after}.  Tk objects are touched only
on the Tk thread; network objects only on the reactor thread.
"""

import queue
import signal
import threading

from twisted.internet import defer

from wire import logs


class Bridge:
    """The one bridge between C{root}'s Tk thread and C{reactor}'s thread."""

    log = logs.logger(__name__)

    def __init__(self, root, reactor, interval_ms: int = 15, batch: int = 200, busy_interval_ms: int = 3,
                 busy_passes: int = 10):
        """
        @param interval_ms: how often an idle Tk thread looks at the queue.
        @param busy_interval_ms: how often while things arrive (a screen
            being shared): the wait adds to every update's latency, and a
            long one makes several frames land in one redraw.
        @param busy_passes: empty looks at the busy pace before going back
            to the idle one.
        """
        self.root = root
        self.reactor = reactor
        self.interval_ms = interval_ms
        self.busy_interval_ms = busy_interval_ms
        self.busy_passes = busy_passes
        self.batch = batch
        self._quiet = busy_passes  # empty passes since the last call: start idle
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._draining = None

    def start(self) -> None:
        """
        Run the reactor in its thread and start draining the queue.  The
        reactor cannot install signal handlers outside the main thread, so
        the bridge forwards SIGCHLD to it (child processes such as the
        customer's shell are reaped and report their exit).
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGCHLD, self._child_ended)
        self._thread = threading.Thread(
            target=self.reactor.run, kwargs={"installSignalHandlers": False}, name="reactor", daemon=True
        )
        self._thread.start()
        self._drain()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the reactor and wait for its thread (call from the Tk thread)."""
        if self._draining is not None:
            self.root.after_cancel(self._draining)
            self._draining = None
        if self._thread is not None and self._thread.is_alive():
            self.reactor.callFromThread(self.reactor.stop)
            self._thread.join(timeout)

    def _child_ended(self, number, frame) -> None:
        from twisted.internet import process

        self.reactor.callFromThread(process.reapAllProcesses)

    # -- Tk → network -----------------------------------------------------------

    def to_network(self, function, *args, **kwargs) -> None:
        """Call C{function} on the reactor thread."""
        self.reactor.callFromThread(function, *args, **kwargs)

    def run(self, async_function, *args, done=None, failed=None) -> None:
        """
        Run C{async_function(*args)} on the reactor thread; its result goes
        to C{done(result)} and its failure to C{failed(exception)}, both
        called on the Tk thread.
        """

        def start():
            d = defer.ensureDeferred(async_function(*args))
            d.addCallbacks(
                lambda result: done and self.to_ui(done, result),
                lambda failure: self._failed(failure, failed),
            )

        self.to_network(start)

    def _failed(self, failure, failed) -> None:
        if failed is None:
            self.log.failure("unhandled failure in a network call", failure)
        else:
            self.to_ui(failed, failure.value)

    # -- network → Tk -------------------------------------------------------------

    def to_ui(self, function, *args) -> None:
        """Call C{function(*args)} on the Tk thread soon (from any thread)."""
        self._queue.put((function, args))

    def _drain(self) -> None:
        done = 0
        for done in range(1, self.batch + 1):
            try:
                function, args = self._queue.get_nowait()
            except queue.Empty:
                done -= 1
                break
            try:
                function(*args)
            except Exception:
                self.log.failure("a window update failed")
        self._quiet = 0 if done else self._quiet + 1
        self._draining = self.root.after(self.next_interval(), self._drain)

    def next_interval(self) -> int:
        """Milliseconds until the next look at the queue: short while busy, longer when idle."""
        return self.busy_interval_ms if self._quiet < self.busy_passes else self.interval_ms


def open_root(class_name: str):
    """
    The program's Tk root window, or C{None} after saying on stderr why
    there is no display to open it on.
    """
    import sys
    import tkinter as tk

    try:
        return tk.Tk(className=class_name)
    except tk.TclError as e:
        sys.stderr.write(f"{class_name}: cannot open a window ({e})\n")
        return None


def run_program(root, app) -> int:
    """
    Start C{app} (which owns a L{Bridge} as C{app.bridge}), run Tk's main
    loop until C{app} quits it, then stop the network thread.  SIGTERM asks
    C{app.terminate()} to end what runs first.  Returns C{app.exit_status}.
    """
    signal.signal(signal.SIGTERM, lambda number, frame: root.after(0, app.terminate))
    app.start()
    try:
        root.mainloop()
    finally:
        app.bridge.stop()
    return app.exit_status
