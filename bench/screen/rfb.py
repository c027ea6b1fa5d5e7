"""
A minimal RFB 3.8 client for the x11vnc baseline: blocking socket, no
authentication (security type None), 32 bits a pixel (B, G, R, X in
memory), one encoding (ZRLE or Tight) plus CopyRect and the cursor,
LastRect and DesktopSize pseudo-encodings.

It asks for incremental updates continuously (the next request as soon as
an update has been read, like the common viewers), counts the bytes and
updates received, and parses each update exactly far enough to know where
it ends: rectangle headers, ZRLE's length field, Tight's control byte,
palette and compact lengths.  It does not paint a framebuffer; it only
works out the colour of one pixel (the latency marker) whenever a
rectangle covers it: ZRLE's and Tight's zlib streams are inflated (they
must be, to stay in step), and only the tile holding that pixel is
decoded.
"""

import io
import select
import socket
import struct
import time
import zlib

RAW, COPYRECT, TIGHT, ZRLE = 0, 1, 7, 16
LAST_RECT, DESKTOP_SIZE, POINTER_POS, RICH_CURSOR, X_CURSOR = -224, -223, -232, -239, -240
CURSOR_PSEUDO = (RICH_CURSOR, POINTER_POS)
ENCODING_NAMES = {ZRLE: "ZRLE", TIGHT: "Tight"}


def tight_quality(level: int) -> int:
    """The pseudo-encoding of Tight's JPEG quality level 0–9."""
    return -32 + level


def tight_compression(level: int) -> int:
    """The pseudo-encoding of Tight's compression level 0–9."""
    return -256 + level


class RFBError(Exception):
    """The server said or sent something this client does not handle."""


class Update:
    """One FramebufferUpdate as read: when it was complete, its bytes and rectangles."""

    __slots__ = ("done", "size", "rects", "pixels", "marker", "cursor")

    def __init__(self):
        self.done = 0.0
        self.size = 0  # bytes of the whole message
        self.rects = 0  # rectangles with pixels (not pseudo-encodings)
        self.pixels = 0  # pixels they cover
        self.marker = None  # (R, G, B) of the marker pixel when a rectangle covered it
        self.cursor = False  # whether it carried the cursor's shape or position


class RFBClient:
    """One connection to an RFB server on 127.0.0.1."""

    def __init__(self, port: int, encodings: list[int], marker: tuple[int, int] | None, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.buffer = bytearray()
        self.received = 0  # bytes read from the socket so far
        self.marker = marker
        self.encodings = encodings
        self.zrle = zlib.decompressobj()
        self.tight = [None] * 4
        self.width = self.height = 0
        self.name = ""
        self._handshake()

    # -- bytes ------------------------------------------------------------------------------

    def _fill(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not ready:
                return False
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RFBError("the server closed the connection")
        self.received += len(chunk)
        self.buffer += chunk
        return True

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _unpack(self, fmt: str):
        return struct.unpack(fmt, self._read(struct.calcsize(fmt)))

    def close(self) -> None:
        self.sock.close()

    # -- handshake --------------------------------------------------------------------------

    def _handshake(self) -> None:
        version = self._read(12)
        if not version.startswith(b"RFB 003."):
            raise RFBError(f"not an RFB server: {version!r}")
        self.sock.sendall(b"RFB 003.008\n")
        (count,) = self._unpack("!B")
        if count == 0:
            (length,) = self._unpack("!I")
            raise RFBError(f"refused: {self._read(length).decode('latin-1')}")
        types = self._read(count)
        if 1 not in types:
            raise RFBError(f"no security type None offered ({list(types)}): start x11vnc with -nopw")
        self.sock.sendall(b"\x01")
        (result,) = self._unpack("!I")
        if result != 0:
            raise RFBError("security handshake failed")
        self.sock.sendall(b"\x01")  # ClientInit: shared
        self.width, self.height = self._unpack("!HH")
        self._read(16)  # the server's pixel format; ours follows
        (length,) = self._unpack("!I")
        self.name = self._read(length).decode("latin-1")
        # SetPixelFormat: 32 bpp, depth 24, little endian, true colour, 255 each, R<<16 G<<8 B.
        self.sock.sendall(struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        self.sock.sendall(struct.pack(f"!BxH{len(self.encodings)}i", 2, len(self.encodings), *self.encodings))

    def request(self, incremental: bool = True) -> None:
        """FramebufferUpdateRequest for the whole screen."""
        self.sock.sendall(struct.pack("!BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))

    # -- messages ---------------------------------------------------------------------------

    def next_update(self, deadline: float) -> Update | None:
        """
        Read messages until a whole FramebufferUpdate has been read (returned)
        or C{deadline} (C{time.monotonic}) passes (C{None}).
        """
        while True:
            while not self.buffer:
                if not self._fill(deadline - time.monotonic()):
                    return None
            (kind,) = self._unpack("!B")
            if kind == 0:
                return self._update()
            if kind == 1:  # SetColourMapEntries
                _, _, count = self._unpack("!xHH")
                self._read(6 * count)
            elif kind == 2:  # Bell
                pass
            elif kind == 3:  # ServerCutText
                (length,) = self._unpack("!3xI")
                self._read(length)
            else:
                raise RFBError(f"unknown server message {kind}")

    def _update(self) -> Update:
        update = Update()
        start = self.received - len(self.buffer) - 1
        (count,) = self._unpack("!xH")
        n = 0
        while count == 0xFFFF or n < count:
            n += 1
            x, y, w, h, encoding = self._unpack("!HHHHi")
            if encoding == LAST_RECT:
                break
            covers = self.marker is not None and x <= self.marker[0] < x + w and y <= self.marker[1] < y + h
            where = (self.marker[0] - x, self.marker[1] - y) if covers else None
            if encoding in (RAW, COPYRECT, ZRLE, TIGHT):
                update.rects += 1
                update.pixels += w * h
            if encoding == RAW:
                data = self._read(w * h * 4)
                if where:
                    o = (where[1] * w + where[0]) * 4
                    update.marker = (data[o + 2], data[o + 1], data[o])
            elif encoding == COPYRECT:
                self._read(4)  # the source; the marker's colour stays unknown
            elif encoding == ZRLE:
                (length,) = self._unpack("!I")
                data = self.zrle.decompress(self._read(length))
                if where:
                    update.marker = zrle_pixel(data, w, h, *where)
            elif encoding == TIGHT:
                colour = self._tight(w, h, where)
                if colour is not None:
                    update.marker = colour
            elif encoding == RICH_CURSOR:
                update.cursor = True
                self._read(w * h * 4 + (w + 7) // 8 * h)
            elif encoding == X_CURSOR:
                update.cursor = True
                if w * h:
                    self._read(6 + 2 * ((w + 7) // 8) * h)
            elif encoding == DESKTOP_SIZE:
                self.width, self.height = w, h
            elif encoding == POINTER_POS:
                update.cursor = True
            else:
                raise RFBError(f"a rectangle of encoding {encoding}, which was not asked for")
        update.done = time.monotonic()
        update.size = self.received - len(self.buffer) - start
        return update

    # -- Tight ------------------------------------------------------------------------------

    def _compact(self) -> int:
        length = 0
        for shift in (0, 7, 14):
            (byte,) = self._unpack("!B")
            length |= (byte & (0x7F if shift < 14 else 0xFF)) << shift
            if shift == 14 or not byte & 0x80:
                break
        return length

    def _tight(self, w: int, h: int, where):
        (control,) = self._unpack("!B")
        for stream in range(4):
            if control & (1 << stream):
                self.tight[stream] = None
        kind = control >> 4
        if kind == 0x8:  # fill
            r, g, b = self._read(3)
            return (r, g, b) if where else None
        if kind == 0x9:  # JPEG
            data = self._read(self._compact())
            if where:
                from PIL import Image

                return Image.open(io.BytesIO(data)).convert("RGB").getpixel(where)
            return None
        if kind & 0x8 and kind not in (0xA, 0xE):
            raise RFBError(f"Tight compression control {control:#x}")
        zlib_stream = None if kind & 0x8 else kind & 0x3  # 0xA, 0xE: no zlib (TurboVNC)
        filter_id, palette = 0, None
        if kind & 0x4:
            (filter_id,) = self._unpack("!B")
        if filter_id == 1:
            (n,) = self._unpack("!B")
            raw = self._read(3 * (n + 1))
            palette = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
            size = (w + 7) // 8 * h if len(palette) == 2 else w * h
        elif filter_id in (0, 2):
            size = w * h * 3
        else:
            raise RFBError(f"Tight filter {filter_id}")
        if size < 12:
            data = self._read(size)
        else:
            data = self._read(self._compact())
            if zlib_stream is not None:
                if self.tight[zlib_stream] is None:
                    self.tight[zlib_stream] = zlib.decompressobj()
                data = self.tight[zlib_stream].decompress(data)
        if not where:
            return None
        x, y = where
        if palette is not None:
            if len(palette) == 2:
                byte = data[y * ((w + 7) // 8) + x // 8]
                return palette[byte >> (7 - x % 8) & 1]
            return palette[data[y * w + x]]
        if filter_id == 0:
            o = (y * w + x) * 3
            return tuple(data[o : o + 3])
        return _gradient_pixel(data, w, x, y)


def _gradient_pixel(data: bytes, w: int, px: int, py: int):
    """Tight's gradient filter undone up to pixel (px, py)."""
    previous = [(0, 0, 0)] * w
    for y in range(py + 1):
        row, left, up_left = [], (0, 0, 0), (0, 0, 0)
        for x in range(w):
            up = previous[x]
            o = (y * w + x) * 3
            pixel = tuple(
                (data[o + c] + max(0, min(255, left[c] + up[c] - up_left[c]))) & 0xFF for c in range(3)
            )
            row.append(pixel)
            left, up_left = pixel, up
            if y == py and x == px:
                return pixel
        previous = row
    return None


# -- ZRLE ----------------------------------------------------------------------------------


def _run_length(data: bytes, i: int) -> tuple[int, int]:
    length = 1
    while True:
        byte = data[i]
        i += 1
        length += byte
        if byte != 255:
            return length, i


def zrle_pixel(data: bytes, w: int, h: int, px: int, py: int):
    """
    The (R, G, B) of pixel (px, py) of a ZRLE rectangle of C{w} × C{h}
    whose inflated data is C{data}: the tiles before it are skipped
    (walking their runs where they have any), only its own is decoded.
    CPIXELs are 3 bytes, B, G, R (32 bits a pixel, little endian, depth 24).
    """
    i = 0
    target = (py // 64, px // 64)
    for ty in range(0, h, 64):
        th = min(64, h - ty)
        for tx in range(0, w, 64):
            tw = min(64, w - tx)
            mine = (ty // 64, tx // 64) == target
            x, y = px - tx, py - ty
            sub = data[i]
            i += 1
            if sub == 0:  # raw
                if mine:
                    o = i + (y * tw + x) * 3
                    return data[o + 2], data[o + 1], data[o]
                i += tw * th * 3
            elif sub == 1:  # solid
                if mine:
                    return data[i + 2], data[i + 1], data[i]
                i += 3
            elif 2 <= sub <= 16:  # packed palette
                palette = data[i : i + 3 * sub]
                i += 3 * sub
                bits = 1 if sub == 2 else 2 if sub <= 4 else 4
                row = (tw * bits + 7) // 8
                if mine:
                    byte = data[i + y * row + x * bits // 8]
                    index = byte >> (8 - bits - (x * bits) % 8) & ((1 << bits) - 1)
                    o = index * 3
                    return palette[o + 2], palette[o + 1], palette[o]
                i += row * th
            elif sub == 128:  # plain RLE
                target_index, n = y * tw + x, 0
                while n < tw * th:
                    pixel = data[i : i + 3]
                    length, i = _run_length(data, i + 3)
                    if mine and n <= target_index < n + length:
                        return pixel[2], pixel[1], pixel[0]
                    n += length
            elif sub >= 130:  # palette RLE
                size = sub - 128
                palette = data[i : i + 3 * size]
                i += 3 * size
                target_index, n = y * tw + x, 0
                while n < tw * th:
                    index = data[i]
                    i += 1
                    length = 1
                    if index & 0x80:
                        index &= 0x7F
                        length, i = _run_length(data, i)
                    if mine and n <= target_index < n + length:
                        o = index * 3
                        return palette[o + 2], palette[o + 1], palette[o]
                    n += length
            else:
                raise RFBError(f"ZRLE subencoding {sub}")
    return None
