"""
Session recordings: the frames the console received, exactly as they
arrived (tiles still encoded, C{copy} tiles still copies), with chat,
events and the pointer, in one append-only file per session.
C{docs/recording.md} describes the format byte by byte.

  - L{Recorder} writes one session to a new file (mode 0600, a name that
    never collides) in the directory the operator chose, or in the one a
    policy forces.  Each record goes to the file in one C{write} as soon as
    it is made, so a crash loses at most the record being written; the
    reader stops cleanly at the last complete one.  Now and then it adds a
    I{keyframe}: the whole picture as a PNG, so that replay can seek
    without decoding from the start.
  - L{Recording} reads a file: C{Recording.read(path)} iterates over its
    records; C{Recording(path)} indexes it (frames, keyframes, chat,
    events, pointer) for replay and export, reading frames on demand.
"""

import bisect
import io
import json
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator

import attrs
from PIL import Image

from wire import logs
from wire import tiles as wt
from wire.screen import Cursor, Frame, Tile
from wire.session_core import ChatMessage, Event

MAGIC = b"PONTEREC"
VERSION = 1
SUFFIX = ".ponterec"

# Header: magic, version, monitor width and height (0 when not known yet),
# flags (0), start time (Unix seconds).
_HEADER = struct.Struct(">8sHHHHd")
# Record: body length, type, milliseconds since the start; then the body and
# a CRC-32 of type, time and body.
_RECORD = struct.Struct(">IBI")
_CRC = struct.Struct(">I")
_FRAME = struct.Struct(">BBHHH")  # monitor, flags, width, height, tile count
_TILE = struct.Struct(">HHHHBI")  # x, y, width, height, encoding, data length
_KEYFRAME = struct.Struct(">IHH")  # frames before it, width, height
_CURSOR = struct.Struct(">iiB")  # x, y, visible

# Record types.
META = ord("M")
FRAME = ord("F")
KEYFRAME = ord("K")
CHAT = ord("C")
EVENT = ord("E")
CURSOR = ord("P")
END = ord("Z")

FULL = 0x01  # frame flag: its image tiles cover the whole picture (a sync point)
ENCODING_CODES = {wt.RAW: 0, wt.PNG: 1, wt.JPEG: 2, wt.WEBP: 3, wt.COPY: 4}
_ENCODINGS = {code: name for name, code in ENCODING_CODES.items()}

MAX_BODY = 64 * 1024 * 1024  # a longer record is damage, not data
MAX_MILLISECONDS = 0xFFFFFFFF  # about 49 days


class RecordingError(Exception):
    """A file that is not a recording this program can read; the message says why."""


@attrs.frozen
class RecordingSettings:
    """
    When the recorder writes keyframes.  A keyframe is written with a frame
    once at least C{keyframe_interval} seconds have passed since the last
    sync point (a keyframe, or a frame that repaints everything), and
    either the frames since then hold at least C{keyframe_ratio} times the
    bytes of that sync point or there have been C{keyframe_frames} of them.
    So a still desktop gets no keyframes (replaying its few frames is
    cheap), and keyframes cost about C{1 / keyframe_ratio} of the frames'
    bytes at most (a keyframe is lossless: a PNG of a picture with a
    photograph in it is larger than the WebP tiles that painted it).
    """

    keyframe_interval: float = 30.0
    keyframe_ratio: float = 4.0
    keyframe_frames: int = 600
    png_level: int = 6


# -- records -------------------------------------------------------------------------


@attrs.frozen
class Header:
    """The file's header: format version, monitor size when recording started, start time."""

    version: int
    width: int
    height: int
    started_at: float


@attrs.frozen
class FrameRecord:
    """A frame as received, C{at} seconds after the start; C{full} if it repaints everything."""

    at: float
    frame: Frame
    full: bool


@attrs.frozen
class KeyframeRecord:
    """The whole picture after the first C{frames} frames of the file, as a PNG."""

    at: float
    frames: int
    width: int
    height: int
    png: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")

    def picture(self) -> Image.Image:
        """The keyframe's picture (RGB), checked to be of its size."""
        return decode_keyframe(self.png, self.width, self.height)


@attrs.frozen
class ChatRecord:
    at: float
    message: ChatMessage


@attrs.frozen
class EventRecord:
    at: float
    event: Event


@attrs.frozen
class CursorRecord:
    at: float
    cursor: Cursor


@attrs.frozen
class MetaRecord:
    """Free-form facts about the session (JSON object), e.g. operator and customer."""

    at: float
    data: dict


@attrs.frozen
class EndRecord:
    """The recorder closed the file normally."""

    at: float


# -- encoding and decoding of record bodies --------------------------------------------------


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def frame_body(frame: Frame, full: bool) -> bytes:
    """The body of a frame record."""
    parts = [_FRAME.pack(frame.monitor, FULL if full else 0, frame.width, frame.height, len(frame.tiles))]
    for t in frame.tiles:
        parts.append(_TILE.pack(t.x, t.y, t.width, t.height, ENCODING_CODES[t.encoding], len(t.data)))
        parts.append(t.data)
    return b"".join(parts)


def parse_frame(body: bytes) -> tuple[Frame, bool]:
    """A frame record's frame and whether it is full."""
    try:
        monitor, flags, width, height, count = _FRAME.unpack_from(body, 0)
        offset = _FRAME.size
        tiles = []
        for _ in range(count):
            x, y, w, h, code, length = _TILE.unpack_from(body, offset)
            offset += _TILE.size
            data = body[offset : offset + length]
            if len(data) != length or code not in _ENCODINGS:
                raise RecordingError("a malformed tile")
            offset += length
            tiles.append(Tile(x, y, w, h, _ENCODINGS[code], data))
    except struct.error:
        raise RecordingError("a malformed frame record") from None
    if offset != len(body):
        raise RecordingError("a frame record with bytes left over")
    return Frame(monitor, width, height, tuple(tiles)), bool(flags & FULL)


def frame_is_full(frame: Frame) -> bool:
    """Whether C{frame}'s image tiles, without copies, cover its whole picture."""
    if any(t.encoding == wt.COPY for t in frame.tiles):
        return False
    if sum(t.width * t.height for t in frame.tiles) < frame.width * frame.height:
        return False
    mask = Image.new("L", (frame.width, frame.height), 0)
    for t in frame.tiles:
        mask.paste(255, (t.x, t.y, t.x + t.width, t.y + t.height))
    return mask.getextrema()[0] == 255


def encode_keyframe(picture: Image.Image, level: int = 6) -> bytes:
    """A keyframe's PNG: a palette PNG when 256 colours show the picture exactly, else RGB."""
    picture = picture.convert("RGB") if picture.mode != "RGB" else picture
    out = io.BytesIO()
    if picture.getcolors(256) is not None:
        paletted = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
        if paletted.convert("RGB").tobytes() == picture.tobytes():
            paletted.save(out, "PNG", compress_level=level)
            return out.getvalue()
    picture.save(out, "PNG", compress_level=level)
    return out.getvalue()


def decode_keyframe(png: bytes, width: int, height: int) -> Image.Image:
    """A keyframe's picture, through the same checks as a PNG tile."""
    return wt.decode_tile(Tile(0, 0, width, height, wt.PNG, png))


def _parse(kind: int, at: float, body: bytes):
    """The record of type C{kind}, or C{None} for a type this version does not know."""
    try:
        if kind == FRAME:
            frame, full = parse_frame(body)
            return FrameRecord(at, frame, full)
        if kind == KEYFRAME:
            frames, width, height = _KEYFRAME.unpack_from(body, 0)
            return KeyframeRecord(at, frames, width, height, body[_KEYFRAME.size :])
        if kind == CURSOR:
            x, y, visible = _CURSOR.unpack_from(body, 0)
            shape = body[_CURSOR.size :].decode("utf-8") or None
            return CursorRecord(at, Cursor(x, y, bool(visible), shape))
        if kind == CHAT:
            d = json.loads(body)
            return ChatRecord(at, ChatMessage(str(d["author"]), str(d["text"]), float(d["sent_at"])))
        if kind == EVENT:
            d = json.loads(body)
            return EventRecord(at, Event(float(d["at"]), str(d["kind"]), str(d["detail"])))
        if kind == META:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise RecordingError("a meta record that is not an object")
            return MetaRecord(at, data)
        if kind == END:
            return EndRecord(at)
    except (struct.error, ValueError, KeyError, TypeError) as e:
        raise RecordingError(f"a malformed record of type {chr(kind)!r}: {e}") from None
    return None


# -- writing ---------------------------------------------------------------------------------


def _safe_label(label: str) -> str:
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-")[:40]
    return label or "session"


def _create(directory: str, label: str, when: float) -> tuple[str, int]:
    """A new file (0600) in C{directory} whose name no other file has; its path and descriptor."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    base = f"ponte-{_safe_label(label)}-{stamp}"
    for n in range(1, 1000):
        name = base + (f"-{n}" if n > 1 else "") + SUFFIX
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            continue
        return path, fd
    raise RecordingError(f"no free file name for {base} in {directory}")


class Recorder:
    """
    Writes one session's recording.  All methods are called from one
    thread (the reactor's); C{clock} gives the time (C{seconds()}).

    @param directory: where the operator wants recordings.
    @param forced_directory: the directory the account's policy forces;
        when set, it is used and C{directory} is ignored.
    @param label: part of the file name (e.g. the code's fingerprint);
        anything but letters, digits, C{-} and C{_} is dropped.
    @param meta: facts to put in a meta record first (JSON object).
    @param picture: the picture as shown now, when recording starts in the
        middle of a session: it becomes the first keyframe.
    @param monitor_size: (width, height) for the header, if known.
    @param decode: whether the recorder decodes the frames itself to make
        keyframes; without it, keyframes are made only from the C{picture}
        given to L{frame}.
    @param run_in_thread: C{f(function, *args)} returning a Deferred (e.g.
        C{threads.deferToThread}) to encode keyframes off this thread;
        without it they are encoded at once.
    @param on_error: called with the exception when writing fails; the
        recording stops then, and the file keeps what was written.
    """

    log = logs.logger(__name__)

    def __init__(self, directory: str, clock, *, forced_directory: str | None = None, label: str = "session",
                 meta: dict | None = None, picture: Image.Image | None = None, monitor_size=(0, 0),
                 settings: RecordingSettings = RecordingSettings(), decode: bool = True,
                 run_in_thread=None, on_error=None):
        self.clock = clock
        self.settings = settings
        self.directory = forced_directory or directory
        self.forced = bool(forced_directory)
        self._decode = decode
        self._run_in_thread = run_in_thread
        self._on_error = on_error
        self.started_at = clock.seconds()
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.path, self._fd = _create(self.directory, label, self.started_at)
        self.bytes_written = 0
        self.frames = 0  # frame records written
        self.keyframes = 0
        self.error: Exception | None = None
        self._canvas: Image.Image | None = None
        self._sync_at = self.started_at  # the last sync point's time,
        self._sync_bytes = 0  # its size,
        self._since_bytes = 0  # and the frames' bytes and count since
        self._since_frames = 0
        self._encoding = False  # a keyframe is being encoded in a thread
        self._chat_seen = 0
        self._events_seen = 0
        width, height = monitor_size
        self._write_raw(_HEADER.pack(MAGIC, VERSION, width, height, 0, self.started_at))
        if meta:
            self._record(META, _json(meta))
        if picture is not None:
            self._canvas = picture.convert("RGB") if picture.mode != "RGB" else picture.copy()
            self._keyframe(self._canvas)

    @property
    def closed(self) -> bool:
        """Whether the file is closed (by L{close} or after an error)."""
        return self._fd is None

    # -- what the session tells it --------------------------------------------------------

    def frame(self, frame: Frame, picture: Image.Image | None = None) -> None:
        """
        Record a received frame.  C{picture}, if given, is the whole picture
        after this frame (read only during this call).
        """
        if self.closed:
            return
        full = frame_is_full(frame)
        body = frame_body(frame, full)
        self._record(FRAME, body)
        if self.closed:
            return
        self.frames += 1
        if self._decode and picture is None:
            try:
                self._canvas = picture = wt.decode(frame, None if full else self._canvas)
            except wt.TileError as e:
                # Recorded as received all the same; no keyframe until the next full frame.
                self.log.warn("a recorded frame does not decode: {problem}", problem=str(e))
                self._canvas = None
        if full:
            self._sync_at, self._sync_bytes = self.clock.seconds(), len(body)
            self._since_bytes = self._since_frames = 0
            return
        self._since_bytes += len(body)
        self._since_frames += 1
        if picture is not None and self._keyframe_due():
            self._keyframe(picture)

    def cursor(self, x: int, y: int, visible: bool = True, shape: str | None = None) -> None:
        """Record where the customer's pointer is (C{shape} C{None}: unchanged)."""
        if not self.closed:
            self._record(CURSOR, _CURSOR.pack(x, y, 1 if visible else 0) + (shape or "").encode("utf-8"))

    def chat(self, message: ChatMessage) -> None:
        """Record a chat message (either way)."""
        if not self.closed:
            self._record(CHAT, _json(attrs.asdict(message)))

    def event(self, event: Event) -> None:
        """Record a session event."""
        if not self.closed:
            self._record(EVENT, _json(attrs.asdict(event)))

    def catch_up(self, chat, events) -> None:
        """
        Record the chat messages and events of these lists (a session
        core's C{chat} and C{events}, which only grow) not recorded yet.
        """
        for message in chat[self._chat_seen :]:
            self.chat(message)
        for event in events[self._events_seen :]:
            self.event(event)
        self._chat_seen, self._events_seen = len(chat), len(events)

    def close(self) -> None:
        """Write the end record and close the file (again: nothing)."""
        if self.closed:
            return
        self._record(END, b"")
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    # -- internals ---------------------------------------------------------------------

    def _keyframe_due(self) -> bool:
        s = self.settings
        return (not self._encoding and self.clock.seconds() - self._sync_at >= s.keyframe_interval
                and (self._since_bytes >= s.keyframe_ratio * self._sync_bytes
                     or self._since_frames >= s.keyframe_frames))

    def _keyframe(self, picture: Image.Image) -> None:
        at, frames = self.clock.seconds(), self.frames
        snapshot = picture.copy()
        width, height = snapshot.size
        self._sync_at = at
        self._since_bytes = self._since_frames = 0

        def write(png: bytes) -> None:
            self._encoding = False
            self._sync_bytes = len(png)
            if not self.closed:
                self._record(KEYFRAME, _KEYFRAME.pack(frames, width, height) + png, at)
                self.keyframes += 1

        if self._run_in_thread is None:
            write(encode_keyframe(snapshot, self.settings.png_level))
            return
        self._encoding = True
        d = self._run_in_thread(encode_keyframe, snapshot, self.settings.png_level)
        d.addCallback(write)
        d.addErrback(self._keyframe_failed)

    def _keyframe_failed(self, failure) -> None:
        self._encoding = False
        self.log.failure("a keyframe could not be encoded", failure)

    def _record(self, kind: int, body: bytes, at: float | None = None) -> None:
        if at is None:
            at = self.clock.seconds()
        ms = min(max(int(round((at - self.started_at) * 1000)), 0), MAX_MILLISECONDS)
        head = _RECORD.pack(len(body), kind, ms)
        crc = zlib.crc32(body, zlib.crc32(head[4:]))
        self._write_raw(head + body + _CRC.pack(crc))

    def _write_raw(self, data: bytes) -> None:
        # One write per record: a crash leaves the file readable up to the last whole record.
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            self.error = e
            self.log.error("recording to {path} stopped: {problem}", path=self.path, problem=str(e))
            os.close(self._fd)
            self._fd = None
            if self._on_error is not None:
                self._on_error(e)
            return
        self.bytes_written += len(data)


# -- reading ---------------------------------------------------------------------------------


@attrs.frozen
class FrameRef:
    """Where a frame is in the file: its time, body offset and length, size and whether it is full."""

    at: float
    offset: int
    length: int
    width: int
    height: int
    full: bool


@attrs.frozen
class KeyframeRef:
    at: float
    frames: int
    offset: int
    length: int


def _read_header(f) -> Header:
    data = f.read(_HEADER.size)
    if len(data) < _HEADER.size or data[:8] != MAGIC:
        raise RecordingError("not a Ponte recording (no PONTEREC header)")
    magic, version, width, height, _flags, started_at = _HEADER.unpack(data)
    if version != VERSION:
        raise RecordingError(f"a recording of format version {version}; this program reads version {VERSION}")
    return Header(version, width, height, started_at)


def _scan(f, status: dict) -> Iterator[tuple[int, float, int, bytes]]:
    """
    The valid records after the header: (type, seconds, body offset, body).
    Stops at the end of the file, at a record cut short, or at one whose
    CRC does not match; C{status["damaged"]} then says why (C{None} at a
    clean end of file).
    """
    status["damaged"] = None
    while True:
        head = f.read(_RECORD.size)
        if not head:
            return
        if len(head) < _RECORD.size:
            status["damaged"] = "the last record is cut short"
            return
        length, kind, ms = _RECORD.unpack(head)
        if length > MAX_BODY:
            status["damaged"] = f"a record of {length} bytes (damaged file)"
            return
        offset = f.tell()
        body = f.read(length)
        tail = f.read(_CRC.size)
        if len(body) < length or len(tail) < _CRC.size:
            status["damaged"] = "the last record is cut short"
            return
        if _CRC.unpack(tail)[0] != zlib.crc32(body, zlib.crc32(head[4:])):
            status["damaged"] = "a record whose checksum does not match"
            return
        yield kind, ms / 1000.0, offset, body


class Recording:
    """
    An indexed recording: its header, frames (read on demand), keyframes,
    chat, events, pointer and meta records.  C{complete} is whether it was
    closed normally; C{damaged} says why reading stopped early (a crash
    cuts the last record short), or is C{None}.
    """

    def __init__(self, path: str):
        self.path = path
        self.frames: list[FrameRef] = []
        self.keyframes: list[KeyframeRef] = []
        self.chat: list[ChatRecord] = []
        self.events: list[EventRecord] = []
        self.cursors: list[CursorRecord] = []
        self.meta: dict = {}
        self.complete = False
        self.duration = 0.0
        status: dict = {}
        with open(path, "rb") as f:
            self.header = _read_header(f)
            last = 0.0
            for kind, at, offset, body in _scan(f, status):
                last = max(last, at)
                if kind == FRAME:
                    try:
                        _monitor, flags, width, height, _count = _FRAME.unpack_from(body, 0)
                    except struct.error:
                        status["damaged"] = "a malformed frame record"
                        break
                    self.frames.append(FrameRef(at, offset, len(body), width, height, bool(flags & FULL)))
                    continue
                if kind == KEYFRAME:
                    try:
                        frames, _w, _h = _KEYFRAME.unpack_from(body, 0)
                    except struct.error:
                        status["damaged"] = "a malformed keyframe record"
                        break
                    if frames <= len(self.frames):
                        self.keyframes.append(KeyframeRef(at, frames, offset, len(body)))
                    continue
                try:
                    record = _parse(kind, at, body)
                except RecordingError as e:
                    status["damaged"] = str(e)
                    break
                if isinstance(record, ChatRecord):
                    self.chat.append(record)
                elif isinstance(record, EventRecord):
                    self.events.append(record)
                elif isinstance(record, CursorRecord):
                    self.cursors.append(record)
                elif isinstance(record, MetaRecord):
                    self.meta.update(record.data)
                elif isinstance(record, EndRecord):
                    self.complete = True
        self.damaged: str | None = status.get("damaged")
        self.duration = last
        self.keyframes.sort(key=lambda k: k.frames)
        self.frame_times = [ref.at for ref in self.frames]
        self._cursor_times = [c.at for c in self.cursors]
        self._cursor_shapes = []  # the last shape reported by each pointer record
        shape = None
        for c in self.cursors:
            shape = c.cursor.shape or shape
            self._cursor_shapes.append(shape)

    @staticmethod
    def read(path: str) -> Iterator:
        """
        The file's L{Header}, then its records in file order (frames with
        their tiles), up to the last complete one.

        @raise RecordingError: if the file is not a recording this program reads,
            or a complete record is malformed.
        """
        with open(path, "rb") as f:
            yield _read_header(f)
            status: dict = {}
            for kind, at, _offset, body in _scan(f, status):
                record = _parse(kind, at, body)
                if record is not None:
                    yield record

    def _body(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def frame(self, index: int) -> Frame:
        """Frame number C{index} (from 0), read from the file."""
        ref = self.frames[index]
        return parse_frame(self._body(ref.offset, ref.length))[0]

    def keyframe(self, ref: KeyframeRef) -> KeyframeRecord:
        """A keyframe, read from the file."""
        body = self._body(ref.offset, ref.length)
        frames, width, height = _KEYFRAME.unpack_from(body, 0)
        return KeyframeRecord(ref.at, frames, width, height, body[_KEYFRAME.size :])

    def frames_until(self, at: float) -> int:
        """How many frames were received by C{at} seconds after the start."""
        return bisect.bisect_right(self.frame_times, at)

    def cursor_at(self, at: float) -> Cursor | None:
        """The pointer as last reported by C{at}, with its last known shape."""
        i = bisect.bisect_right(self._cursor_times, at)
        if i == 0:
            return None
        return attrs.evolve(self.cursors[i - 1].cursor, shape=self._cursor_shapes[i - 1])
