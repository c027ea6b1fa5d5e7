"""
The traffic the two clients exchange over an established TLS socket: bulk
transfer one way, both ways at once, and 64-byte ping-pong.  Blocking
stdlib C{ssl} with large buffers, so that the clients are not the bottleneck.
"""

import selectors
import ssl
import time

from bench.relay import endpoints

CHUNK = 256 * 1024
_PAYLOAD = memoryview(bytes(range(256)) * (CHUNK // 256))
_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


def send(sock: ssl.SSLSocket, total: int) -> tuple[float, float]:
    """Send C{total} bytes; returns the start and end times (C{perf_counter})."""
    start = time.perf_counter()
    remaining = total
    while remaining:
        size = min(CHUNK, remaining)
        sock.sendall(_PAYLOAD[:size])
        remaining -= size
    return start, time.perf_counter()


def receive(sock: ssl.SSLSocket, total: int) -> tuple[float, float]:
    """Receive C{total} bytes; returns the times the first and the last arrived."""
    buffer = bytearray(CHUNK)
    first = None
    remaining = total
    while remaining:
        got = sock.recv_into(buffer, min(CHUNK, remaining))
        if not got:
            raise ConnectionError(f"connection closed with {remaining} of {total} bytes to come")
        if first is None:
            first = time.perf_counter()
        remaining -= got
    return first, time.perf_counter()


def duplex(sock: ssl.SSLSocket, total: int) -> tuple[float, float]:
    """
    Send and receive C{total} bytes at the same time on one socket (one
    thread, non-blocking); returns the start and end times.
    """
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    buffer = bytearray(CHUNK)
    sent = received = 0
    try:
        start = time.perf_counter()
        while sent < total or received < total:
            moved = False
            if sent < total:
                try:
                    sent += sock.send(_PAYLOAD[: min(CHUNK, total - sent)])
                    moved = True
                except _WOULD_BLOCK:
                    pass
            while received < total:
                try:
                    got = sock.recv_into(buffer, min(CHUNK, total - received))
                except _WOULD_BLOCK:
                    break
                if not got:
                    raise ConnectionError(f"connection closed after {received} of {total} bytes")
                received += got
                moved = True
            if not moved:
                _wait(selector, sock, sent < total, received < total)
        return start, time.perf_counter()
    finally:
        selector.close()
        sock.settimeout(endpoints.SOCKET_TIMEOUT)


def _wait(selector, sock, writing: bool, reading: bool) -> None:
    events = (selectors.EVENT_WRITE if writing else 0) | (selectors.EVENT_READ if reading else 0)
    selector.modify(sock, events)
    if not selector.select(endpoints.SOCKET_TIMEOUT):
        raise TimeoutError(f"no progress for {endpoints.SOCKET_TIMEOUT} s")


def _recv_into_exactly(sock: ssl.SSLSocket, view: memoryview) -> None:
    filled = 0
    while filled < len(view):
        got = sock.recv_into(view[filled:])
        if not got:
            raise ConnectionError("connection closed in the middle of a message")
        filled += got


def ping(sock: ssl.SSLSocket, count: int, size: int, warmup: int) -> list[float]:
    """
    Send C{size}-byte messages and wait for each echo; returns the round
    trips of the last C{count} in microseconds (the first C{warmup} are not kept).
    """
    message = bytes(_PAYLOAD[:size])
    view = memoryview(bytearray(size))
    clock = time.perf_counter_ns
    trips = []
    for i in range(warmup + count):
        start = clock()
        sock.sendall(message)
        _recv_into_exactly(sock, view)
        if i >= warmup:
            trips.append((clock() - start) / 1000.0)
    return trips


def pong(sock: ssl.SSLSocket, count: int, size: int) -> None:
    """Echo C{count} messages of C{size} bytes."""
    view = memoryview(bytearray(size))
    for _ in range(count):
        _recv_into_exactly(sock, view)
        sock.sendall(view)


def probe(first: ssl.SSLSocket, second: ssl.SSLSocket, size: int = 64) -> None:
    """One C{size}-byte message each way between the two ends of a path."""
    message = bytes(_PAYLOAD[:size])
    first.sendall(message)
    if endpoints.recv_exactly(second, size) != message:
        raise ConnectionError("the message arrived altered")
    second.sendall(message)
    if endpoints.recv_exactly(first, size) != message:
        raise ConnectionError("the message arrived altered")
