"""
The measurements: a session's start up to "verified", a file sent through a
whole session in either direction, and the same file's bytes pushed through
a plain paired relay of the same gateway (the baseline).
"""

import os
import time

import attrs
from twisted.internet import defer, reactor

from bench.relay import procstat
from bench.relay.errors import BenchError
from bench.session.harness import Gateway, RawPair, Session, within
from wire import session_commands as sc

MiB = 1024 * 1024
# Console -> agent (OfferFile from the console) and agent -> console (RequestFile).
TO_AGENT = "console->agent"
TO_CONSOLE = "agent->console"
SESSION = "session"
RAW = "raw relay"
# Bytes the raw relay's sender reads from the file and writes at once.
RAW_BLOCK = 256 * 1024


def make_file(path: str, size: int) -> None:
    """C{size} pseudo-random bytes (not compressible, not zeros) at C{path}."""
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            block = os.urandom(min(4 * MiB, remaining))
            f.write(block)
            remaining -= len(block)


def read_tail(path: str, count: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(-count, os.SEEK_END)
        return f.read()


@attrs.define
class Cpu:
    """CPU seconds (user + system, C{/proc}) used by this process and the gateway since C{start}."""

    pids: dict[str, int]
    before: dict[str, float] = attrs.field(factory=dict)

    def start(self) -> "Cpu":
        self.before = {name: procstat.cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def used(self) -> dict[str, float]:
        return {name: procstat.cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}


@attrs.define
class Transfer:
    """One measured transfer of C{size} bytes (times in seconds)."""

    path: str  # SESSION or RAW
    direction: str
    size: int
    total: float  # first action to the last byte stored (session) or received (raw)
    cpu: dict[str, float]
    # Session only: phases of C{total}.
    to_offer: float | None = None  # until the receiver has the offer (includes the sender's SHA-256 of the file)
    stream: float | None = None  # offer to the last chunk written by the receiver
    finish: float | None = None  # last chunk written to the file checked, synced and in place

    @property
    def mb_s(self) -> float:
        return self.size / self.total / 1e6

    @property
    def stream_mb_s(self) -> float | None:
        return self.size / self.stream / 1e6 if self.stream else None

    def line(self) -> str:
        text = f"{self.mb_s:7.1f} MB/s  ({self.total:6.2f} s"
        if self.stream is not None:
            text += (f": to offer {self.to_offer:5.2f} s, stream {self.stream:5.2f} s "
                     f"= {self.stream_mb_s:6.1f} MB/s, finish {self.finish:5.2f} s")
        cpu = ", ".join(f"{name} {seconds / self.size * 1e9:5.2f}" for name, seconds in self.cpu.items())
        return text + f")  CPU s/GB: {cpu}"


# -- session start ----------------------------------------------------------------------


async def start_session(gateway: Gateway) -> dict[str, float]:
    """One session up to "verified" on both sides, then ended; the agent's timings (seconds from Join)."""
    session = Session(gateway, gateway.fresh_directory("agent-received"))
    try:
        await session.start()
        return session.timings()
    finally:
        await session.end()


# -- file transfers through a session ----------------------------------------------------------


class _ReceiverWatch:
    """Times, on the receiving side's UI, the offer, the last chunk written and the file stored."""

    def __init__(self, ui, size: int):
        self.size = size
        self.offered = self.last_chunk = None
        self.stored = defer.Deferred()
        self.settled = False
        ui.hook = self._seen

    def _seen(self, name, arguments):
        if name != "transfer_changed":
            return
        outcome, transfer = arguments
        if transfer.direction != "in":
            return
        now = time.perf_counter()
        if self.offered is None:
            self.offered = now
        if outcome is None and transfer.done == self.size and self.last_chunk is None:
            self.last_chunk = now
        if outcome is not None and not self.settled:
            self.settled = True
            # Later, not from within the session core's call to its UI (which
            # does not expect the session to be closed under it).
            if outcome != "done":
                failed = BenchError(f"the file transfer ended {outcome}: {transfer.detail}")
                reactor.callLater(0, lambda: self.stored.called or self.stored.errback(failed))
            else:
                reactor.callLater(0, lambda: self.stored.called or self.stored.callback((now, transfer.detail)))


async def session_transfer(gateway: Gateway, direction: str, source: str, size: int, pids) -> Transfer:
    """
    Send C{source} through a fresh verified session in C{direction}: the
    console's C{send_file} (consent C{send_file}), or C{request_file}
    answered by the customer's double picking C{source} (consent
    C{receive_file}).  Timed from that call until the receiver stored the
    file (its size and SHA-256 checked by the receiving side).
    """
    session = Session(gateway, gateway.fresh_directory("agent-received"), picked=source)
    arrived = None
    try:
        await session.start()
        to_agent = direction == TO_AGENT
        await session.grant([sc.SEND_FILE if to_agent else sc.RECEIVE_FILE])
        watch = _ReceiverWatch(session.agent_ui if to_agent else session.console_ui, size)
        cpu = Cpu(pids).start()
        started = time.perf_counter()
        if to_agent:
            sent = session.console.send_file(source)
        else:
            sent = session.console.request_file("the benchmark's file")
        stored_at, arrived = await within(watch.stored, f"{direction} file transfer")
        await within(sent, f"{direction} file transfer's end")
        used = cpu.used()
        stored_size = os.path.getsize(arrived)
    finally:
        await session.end()
        if arrived is not None:
            os.unlink(arrived)
    # The receiving side checked the SHA-256 announced in the offer before storing the file.
    if stored_size != size:
        raise BenchError(f"{direction}: {stored_size} bytes stored instead of {size}")
    return Transfer(
        SESSION, direction, size, stored_at - started, used,
        to_offer=watch.offered - started,
        stream=watch.last_chunk - watch.offered,
        finish=stored_at - watch.last_chunk,
    )


# -- the same bytes through a plain relay ------------------------------------------------------------


class FileSender:
    """Writes a file's bytes to a transport as a streaming producer, reading it in blocks."""

    def __init__(self, transport, path: str):
        self.transport = transport
        self.file = open(path, "rb")
        self.paused = False
        self.finished = False

    def start(self):
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self):
        self.paused = False
        while not self.paused and not self.finished:
            data = self.file.read(RAW_BLOCK)
            if not data:
                self.finished = True
                self.file.close()
                self.transport.unregisterProducer()
                return
            self.transport.write(data)

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        self.paused = True
        self.file.close()


async def raw_transfer(gateway: Gateway, direction: str, source: str, size: int, pids) -> Transfer:
    """
    Push C{source}'s bytes through a fresh paired relay of the same gateway
    in C{direction} (the operator's data leg is the console's end); timed
    from the first read of the file until the last byte arrived.
    """
    pair = RawPair(gateway)
    try:
        await pair.start()
        if direction == TO_AGENT:
            sending, receiving = pair.operator_leg, pair.agent_leg.counter
        else:
            sending, receiving = pair.agent_leg, pair.operator_leg
        receiving.expect(size)
        cpu = Cpu(pids).start()
        started = time.perf_counter()
        FileSender(sending.transport, source).start()
        arrived_at = await within(receiving.done, f"{direction} raw relay")
        used = cpu.used()
    finally:
        await pair.end()
    if receiving.count != size or receiving.tail != read_tail(source, receiving.TAIL):
        raise BenchError(f"{direction} raw relay: {receiving.count} bytes of {size} arrived, or other bytes")
    return Transfer(RAW, direction, size, arrived_at - started, used)
