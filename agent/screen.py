"""
The customer's screen as frames of changed tiles (L{IScreenSource}).

Two parts:

  - L{FrameDiffer}, pure logic without I/O: it keeps the previous picture
    of a monitor (4 bytes a pixel, as mss grabs it: B, G, R, X), finds the
    tiles that changed, finds the parts that only moved (scrolled text, a
    dragged window) and sends them as C{copy} tiles, and encodes the rest;
  - L{ScreenSource}: mss in one dedicated capture thread (an mss instance
    is made, used and closed in that thread only), python-xlib for the
    pointer, the window list and the geometry of the window shared alone.
    The reactor thread asks for a frame with a Deferred; the capture thread
    grabs at most C{max_fps} times a second until something changed, and
    hands the frame back with C{reactor.callFromThread}.

What to grab: with the X DAMAGE extension (L{agent.damage}, as x11vnc
uses it) only the tiles the X server reports drawn since the last grab,
and nothing at all while nothing is drawn; a drawing on a still screen is
grabbed C{settle} seconds after it starts, so that one frame holds it.  The
whole monitor is grabbed at the first frame, when sharing one window, and
every C{full_check} seconds in case something drew without DAMAGE knowing.
The differ then compares only those rectangles (L{FrameDiffer.update}); it
keeps two pictures and brings the spare one up to date only where the last
update changed it, so no frame copies a whole monitor.  Without DAMAGE the
whole monitor is grabbed and compared, less and less often on a still
screen (L{grab_interval}).  The top-level windows' places come from
C{SubstructureNotify} events on the same connection.

Tiles: the monitor is cut into C{tile_size} squares; for each column of
tiles ("strip") the rows that changed are found by comparing the pictures
as numpy arrays of 32-bit pixels, two pixels at a time, for all strips of
a region at once (L{strip_changes}).

Moved windows: a window the X server reports moved (same size, another
place) is checked row by row against the previous picture at its old place;
its runs of at least C{min_copy_rows} equal rows become C{copy} tiles of its
exact rectangle, and the rest is compared against the previous picture
with those copies applied: only the uncovered L and what changed inside
the window are left.

Scrolled rows: in strips that look text-like where they changed (a
photograph's rows hardly ever recur, and looking them up costs), up to
C{vote_rows} changed rows' segments get a 64-bit fingerprint
(L{strip_fingerprints}: the dot product of the pixels, two at a time, with
fixed random weights) and are looked up among the previous picture's
segments of the same strip; every match of a rare segment (one that occurs
at most C{max_hash_repeats} times) votes for a vertical shift.  The shifts
with at least C{min_shift_votes} votes and the moves not already copied are
the candidates; a changed row is "explained" by a candidate when its
segment is byte for byte the previous picture's segment at the shifted
place (L{explained_strips}, one array comparison per shift and region, each
later candidate only over the rows the ones before left).  Runs of at least
C{min_copy_rows} explained rows become C{copy} tiles (merged across
strips); only the rest is encoded, each lossless piece narrowed to the
columns that changed.

Encoding rule (per tile, cheap; counts on a 64×64 tile of a Tk window under
Xvfb): anti-aliased text and flat UI have few distinct colours (monospaced
text: 109–149, flat areas: 1–3), photographic content has many (a blurred
photo with noise: 3051, its edge: 706).  Pillow's C{getcolors} with a limit,
on a view of the grabbed pixels (no conversion), answers "more than
C{text_colours}" in a few microseconds, so:

  - at most C{text_colours} (256) colours: lossless, a PNG written by hand
    (L{wire.tiles.png_image}: unfiltered rows at zlib level C{png_level} 1,
    15 % smaller on screen content than Pillow's adaptive filters and three
    times faster); with a palette of exactly the colours counted when the
    piece has C{palette_pixels} (16384) or more: a palette saves 10–30 %
    of the bytes of text but takes two to three times as long, and the
    bytes are far below the target while the time is not.  Raw RGB when
    the PNG would not be smaller.
  - more colours: lossy, C{lossy_encoding} at C{lossy_quality} with
    C{lossy_subsampling}: JPEG 62 4:2:2 (libjpeg-turbo: 960×540 of a
    photograph in 1.3 ms, 39.0 KB, mean absolute error 4.07 of 255: what
    x11vnc Tight's quality level 4 sends, see C{bench/screen/quality.py})
    rather than WebP (8 times the CPU).  Optimised Huffman tables would
    save 11 % of the bytes but double the time, and the agent's CPU is
    the tighter target.

Pieces of the same kind in the same rows are merged up to C{merge_width}
tiles wide, and pieces of the same columns one under the other up to as
high (fewer tiles, better compression); any tile whose data would exceed
C{max_tile_bytes} is split until it fits.

Memory: every frame allocates buffers of up to a monitor's size; the
capture thread asks glibc to keep them in its heap (L{agent.memory}) rather
than to map and unmap them each time.

Application-only sharing (L{ScreenSource.share_window}): every grab is
blacked out outside the shared window's current rectangle, and where other
windows stacked above it cover it, before it is compared or encoded; no
pixel of another window ever reaches the differ.  If the window is gone or
not mapped, the whole picture is black.
"""

import os
import queue
import threading
import time

import attrs
import numpy as np
from PIL import Image
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from agent.damage import DamageWatch, dirty_regions, merge_ranges, root_children
from agent.interfaces import IScreenSource
from agent.memory import keep_freed_memory
from wire import tiles as wt
from wire.screen import Cursor, Frame, Monitor, Tile

BYTES_PER_PIXEL = 4
_WAKE_UP = 0.1  # seconds the capture thread waits for X events at most before it looks at its stop flag


@attrs.frozen
class ScreenSettings:
    """Every limit and threshold of screen capture and encoding."""

    tile_size: int = 64  # pixels, the side of a tile of the grid
    max_fps: float = 30.0  # grabs (and so frames) per second at most; the polling rate while things change
    idle_fps: float = 10.0  # the polling rate it falls to on a still screen (never above max_fps)
    idle_after: float = 1.0  # seconds without a change before the polling slows: max_fps * idle_after / still, down to idle_fps
    lossy_encoding: str = "jpeg"  # "jpeg" or "webp", for photographic tiles
    lossy_quality: int = 62  # 1–100
    lossy_subsampling: str = "4:2:2"  # JPEG chroma subsampling: "4:4:4", "4:2:2" or "4:2:0"
    text_colours: int = 256  # a tile with at most this many distinct colours is text-like: lossless
    palette_colours: int = 256  # lossless tiles with at most this many colours become palette PNGs
    palette_pixels: int = 16384  # ... if they have this many pixels (palettes save 10–30 % bytes at 2–3 × the time)
    png_level: int = 1  # zlib level of PNG tiles (0–9)
    merge_width: int = 32  # neighbouring tiles merged into one, at most this many tiles wide
    max_tile_bytes: int = 60 * 1024  # one tile's data at most (a session chunk)
    min_shift_votes: int = 4  # rare row segments that must agree on a vertical shift
    max_hash_repeats: int = 2  # a row segment found more often than this in the strip does not vote
    max_shift_candidates: int = 3  # shifts tried on each strip (besides window moves)
    vote_rows: int = 48  # changed rows of a strip (evenly spread) that vote, at most
    min_copy_rows: int = 16  # a shorter run of moved rows is encoded rather than copied (a tile costs too)
    monitors_refresh: float = 5.0  # seconds the monitor list is cached
    use_damage: bool = True  # grab only what X DAMAGE reports drawn (when the X server has it)
    full_check: float = 3.0  # with DAMAGE: seconds between grabs of the whole monitor, in case of missed damage
    settle: float = 0.01  # with DAMAGE: seconds from the first drawing on a still screen to its grab

    def __attrs_post_init__(self):
        if self.lossy_encoding not in wt.LOSSY:
            raise ValueError(f"lossy_encoding must be one of {wt.LOSSY}")
        if not 8 <= self.tile_size <= 1024 or self.max_fps <= 0 or not 1 <= self.lossy_quality <= 100:
            raise ValueError("tile_size 8–1024, max_fps > 0, lossy_quality 1–100")
        if self.lossy_subsampling not in ("4:4:4", "4:2:2", "4:2:0"):
            raise ValueError("lossy_subsampling is one of 4:4:4, 4:2:2, 4:2:0")
        if self.idle_fps <= 0 or self.idle_after < 0:
            raise ValueError("idle_fps > 0, idle_after ≥ 0")


def grab_interval(settings: ScreenSettings, still: float) -> float:
    """
    Seconds from one grab to the next when nothing changed for C{still}
    seconds: 1 / C{max_fps} for C{idle_after} seconds, then the rate falls
    as C{max_fps * idle_after / still} (30 Hz, 15 Hz after 2 s, ...) down
    to C{idle_fps}.  The first change brings back C{max_fps}.
    """
    fastest = 1.0 / settings.max_fps
    if still <= settings.idle_after:
        return fastest
    slowest = 1.0 / min(settings.idle_fps, settings.max_fps)
    return min(max(fastest * still / settings.idle_after if settings.idle_after else slowest, fastest), slowest)


# -- pure logic -------------------------------------------------------------------------------


def black_out(pixels: bytes, width: int, height: int, visible, hidden=()) -> bytearray:
    """
    C{pixels} (4 bytes a pixel) with everything black except the rectangle
    C{visible} (x, y, width, height, or C{None}: nothing), minus the
    rectangles C{hidden}.  Rectangles are clipped to the picture.
    """
    out = bytearray(len(pixels))
    rect = _clip(visible, width, height)
    if rect is None:
        return out
    shown = np.frombuffer(out, dtype=np.uint32).reshape(height, width)
    x, y, w, h = rect
    shown[y : y + h, x : x + w] = np.frombuffer(pixels, dtype=np.uint32).reshape(height, width)[y : y + h, x : x + w]
    for other in hidden:
        rect = _clip(other, width, height)
        if rect is not None:
            x, y, w, h = rect
            shown[y : y + h, x : x + w] = 0
    return out


def _overlap(a, b):
    """The intersection of rectangles C{a} and C{b} (x, y, width, height), or C{None}."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _clip(rect, width, height):
    if rect is None:
        return None
    x, y, w, h = rect
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


@attrs.frozen
class _Picture:
    """A monitor's previous picture: its size, its rows of 32-bit pixels, and its bytes if it came whole."""

    width: int
    height: int
    rows: object  # numpy array, height × width, uint32
    raw: bytes | None


class _Canvas:
    """
    The picture being encoded (rows of 32-bit B, G, R, X pixels): colours
    are counted on a view of it that Pillow takes for R, G, B, X (no copy,
    no conversion; the colours come out as (b, g, r, x)), and only the
    pieces that are encoded are turned into RGB images.
    """

    def __init__(self, rows):
        self.rows = rows
        self._view = None
        self._counted: dict[tuple, list | None] = {}

    def colours(self, box, limit: int):
        """
        The colours of C{box} (left, top, right, bottom) as C{getcolors}
        lists them, (count, (b, g, r, x)), or C{None} if more than C{limit};
        counted once a box.
        """
        if self._view is None:
            height, width = self.rows.shape
            view = Image.frombuffer("RGBX", (width, height), np.ascontiguousarray(self.rows), "raw", "RGBX", 0, 1)
            # Pillow's core image: its crop and getcolors without Image's bookkeeping around
            # each call (a third of the time; this runs for every piece of every frame).
            self._view = view.im
        key = (*box, limit)
        if key not in self._counted:
            self._counted[key] = self._view.crop(box).getcolors(limit)
        return self._counted[key]

    def crop(self, box) -> Image.Image:
        """The rectangle C{box} (left, top, right, bottom) as an RGB image."""
        x0, y0, x1, y1 = box
        # From bytes: Pillow decodes a numpy array's buffer ten times slower.
        return Image.frombytes("RGB", (x1 - x0, y1 - y0), self.rows[y0:y1, x0:x1].tobytes(), "raw", "BGRX")

    def pixels(self, box):
        """The rectangle C{box} as rows of 32-bit pixels (a view)."""
        x0, y0, x1, y1 = box
        return self.rows[y0:y1, x0:x1]


@attrs.define
class _Pending:
    """A rectangle to encode: its place and whether it is text-like."""

    x: int
    y: int
    width: int
    height: int
    lossless: bool
    colours: list | None


class FrameDiffer:
    """
    Turns grabs of monitors into frames of changed tiles.  Keeps the
    previous picture of the monitor it last saw; a grab of another monitor,
    of another size, or the first one is sent whole.
    """

    def __init__(self, settings: ScreenSettings = ScreenSettings()):
        self.settings = settings
        self._previous: dict[int, _Picture] = {}
        self._spare = None  # (rows, rectangles): a picture of its own, the previous one but for those
        self._shown = None

    def reset(self) -> None:
        """Forget the previous pictures: the next frame is a full one."""
        self._previous.clear()
        self._spare = None

    def has_previous(self, monitor: int, width: int, height: int) -> bool:
        """Whether the next picture of C{monitor} at this size is compared with a previous one."""
        previous = self._previous.get(monitor)
        return previous is not None and (previous.width, previous.height) == (width, height)

    def frame(self, monitor: int, width: int, height: int, pixels: bytes, moves=None, shown=None) -> Frame | None:
        """
        The frame that turns the previous picture of C{monitor} into
        C{pixels} (B, G, R, X bytes, C{width} × C{height}; C{bytes} or a
        C{bytearray} nobody changes afterwards), or C{None} when
        nothing changed.  C{moves}, when given, is called (only if something
        changed) for candidate shifts (dx, dy) of moved windows: the picture
        at (x, y) may be the previous one at (x - dx, y - dy).  C{shown},
        when only part of the picture is shared, is that part as given to
        L{black_out} (a rectangle and the rectangles hidden in it): tiles
        across its border are sent lossless, so that no lossy ringing
        lights up a pixel of the blacked-out area.
        """
        if len(pixels) != width * height * BYTES_PER_PIXEL:
            raise ValueError(f"{len(pixels)} bytes for a {width}×{height} picture")
        previous = self._previous.get(monitor)
        current = np.frombuffer(pixels, dtype=np.uint32).reshape(height, width)
        self._previous = {monitor: _Picture(width, height, current, pixels)}
        self._spare = None
        self._shown = shown
        if previous is None or (previous.width, previous.height) != (width, height):
            return self._make(monitor, None, current, None, moves)
        if previous.raw is not None:
            same = previous.raw == pixels
        else:
            same = np.array_equal(previous.rows, current)
        if same:
            return None
        whole = (0, 0, width, height, self._changed_rows(previous.rows, current))
        return self._make(monitor, previous.rows, current, [whole], moves)

    def update(self, monitor: int, width: int, height: int, patches, moves=None) -> Frame | None:
        """
        Like L{frame}, for a picture known only where it may have changed:
        C{patches} are rectangles (x, y, width, height, pixels as B, G, R,
        X bytes) of the new picture, which is the previous one everywhere
        else.  Each rectangle's left edge must be on the tile grid, and its
        right edge too unless it is the picture's.  Only the patches are
        compared; the previous picture of C{monitor} at this size must exist
        (L{has_previous}).  Not for a partly shared screen.
        """
        if not self.has_previous(monitor, width, height):
            raise ValueError(f"no previous picture of monitor {monitor} at {width}×{height}")
        ts = self.settings.tile_size
        old = self._previous[monitor].rows
        rects = []
        for x, y, w, h, data in patches:
            if (x % ts or (x + w) % ts and x + w != width or x < 0 or y < 0 or w <= 0 or h <= 0
                    or x + w > width or y + h > height or len(data) != w * h * BYTES_PER_PIXEL):
                raise ValueError(f"a patch at {x},{y} of {w}×{h} ({len(data)} bytes) off the grid or the picture")
            rects.append((x, y, w, h))
        current = self._unshared_copy(old, rects)
        for (x, y, w, h), (_, _, _, _, data) in zip(rects, patches):
            current[y : y + h, x : x + w] = np.frombuffer(data, dtype=np.uint32).reshape(h, w)
        self._previous = {monitor: _Picture(width, height, current, None)}
        self._spare = (old, rects) if old.flags.writeable and old.base is None else None
        self._shown = None
        regions = [(x, y, w, h, [rows + y for rows in self._changed_rows(old[y : y + h, x : x + w],
                                                                  current[y : y + h, x : x + w])])
                   for x, y, w, h in rects]
        regions = [r for r in regions if any(len(rows) for rows in r[4])]
        if not regions:
            return None
        return self._make(monitor, old, current, regions, moves)

    def _unshared_copy(self, rows, overwritten=()):
        """
        An array of the differ's own equal to C{rows} but inside the
        rectangles C{overwritten} (which the caller fills next): the spare
        picture (the one before C{rows}) brought up to date where it
        differs, or a new copy.
        """
        if self._spare is not None:
            spare, stale = self._spare
            self._spare = None
            if spare.shape == rows.shape and spare is not rows:
                for rect in stale:
                    if not any(_overlap(rect, other) == rect for other in overwritten):
                        x, y, w, h = rect
                        spare[y : y + h, x : x + w] = rows[y : y + h, x : x + w]
                return spare
        return rows.copy()

    def _make(self, monitor, old, current, regions, moves) -> Frame:
        """
        The frame from C{old} to C{current} (2-D arrays; C{old} None: all of
        it).  C{regions}: where they may differ, (x, y, width, height, the
        changed rows of each of its strips), left edges on the grid.
        """
        height, width = current.shape
        image = _Canvas(current)
        if old is None:
            copies, pending = [], self._full(image, width, height)
        else:
            hints = list(moves()) if moves is not None else []
            copies, covered = self._window_copies(old, current, [h for h in hints if len(h) == 6])
            bases = {}
            if covered:
                regions, bases = self._uncovered(old, current, regions, covered)
            shifts = self._shifts(old, current, regions, image)
            copied = {c[4:] for c in covered}
            for hint in hints:
                move = tuple(hint[:2])
                if move not in shifts and move != (0, 0) and move not in copied:
                    shifts.append(move)
            moved, pending = self._place(old, current, regions, shifts, image, bases)
            copies += moved
        tiles = copies + self._encode(image, pending)
        return Frame(monitor, width, height, tuple(tiles))

    def _window_copies(self, old, new, windows):
        """
        Copy tiles of the moved windows C{windows} (dx, dy, x, y, width,
        height: the window's place now and its shift): its runs of at least
        C{min_copy_rows} rows that are, pixel for pixel, the previous
        picture shifted; and those runs as (x, y, width, height, dx, dy).
        """
        height, width = new.shape
        tiles, covered = [], []
        for dx, dy, x, y, w, h in windows:
            x0, x1 = max(x, dx, 0), min(x + w, width + dx, width)
            y0, y1 = max(y, dy, 0), min(y + h, height + dy, height)
            if (dx, dy) == (0, 0) or x1 <= x0 or y1 - y0 < self.settings.min_copy_rows:
                continue
            same = ~(new[y0:y1, x0:x1] != old[y0 - dy : y1 - dy, x0 - dx : x1 - dx]).any(axis=1)
            edges = np.flatnonzero(np.diff(np.concatenate(([False], same, [False])).astype(np.int8)))
            for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()):
                if b - a >= self.settings.min_copy_rows:
                    tiles.append(Tile(x0, y0 + a, x1 - x0, b - a, wt.COPY, wt.copy_data(x0 - dx, y0 + a - dy)))
                    covered.append((x0, y0 + a, x1 - x0, b - a, dx, dy))
        return tiles, covered

    def _uncovered(self, old, new, regions, covered):
        """
        The regions with their changed rows found again against the previous
        picture with the copies C{covered} applied (what is left to send),
        those with no change left dropped; and those pictures of the regions
        ("bases"), by the regions' corners.
        """
        out, bases = [], {}
        for x, y, w, h, changed in regions:
            inside = [(c, _overlap((x, y, w, h), c[:4])) for c in covered]
            inside = [(c, o) for c, o in inside if o is not None]
            if not inside:
                out.append((x, y, w, h, changed))
                continue
            base = old[y : y + h, x : x + w].copy()
            for (_, _, _, _, dx, dy), (ox, oy, ow, oh) in inside:
                base[oy - y : oy - y + oh, ox - x : ox - x + ow] = old[oy - dy : oy - dy + oh, ox - dx : ox - dx + ow]
            changed = [rows + y for rows in self._changed_rows(base, new[y : y + h, x : x + w])]
            bases[(x, y)] = base
            if any(len(rows) for rows in changed):
                out.append((x, y, w, h, changed))
        return out, bases

    # -- finding changes --------------------------------------------------------------------

    def _strips(self, width):
        ts = self.settings.tile_size
        return [(x, min(x + ts, width)) for x in range(0, width, ts)]

    def _changed_rows(self, old, new) -> list:
        """For each strip, the rows whose segment in it changed (ascending, numpy)."""
        per_strip = strip_changes(old, new, self.settings.tile_size)
        rows_changed = np.flatnonzero(per_strip.any(axis=1))
        if len(rows_changed) == 0:
            return [_NO_ROWS for _ in range(per_strip.shape[1])]
        per_strip = per_strip[rows_changed]
        return [rows_changed[per_strip[:, i]] for i in range(per_strip.shape[1])]

    def _shifts(self, old, new, regions, image) -> list[tuple[int, int]]:
        """
        The vertical shifts (0, dy) most rare row segments agree on.  Only
        strips that look text-like vote (L{_votes}): rows of a photograph
        or a video hardly ever recur, and looking them up costs.
        """
        s = self.settings
        votes = []
        for x, y, w, h, changed in regions:
            # (Fewer changed rows than a copy needs are cheaper to encode than to look up.)
            least = max(s.min_shift_votes, s.min_copy_rows)
            eligible = [i for i, rows in enumerate(changed) if len(rows) >= least and self._votes(image, x, i, rows)]
            if not eligible:
                continue
            # Fingerprints of the row segments of those strips at once; the strips' keys are
            # salted so that one lookup serves them all without matching across strips.
            top = min(int(changed[i][0]) for i in eligible)
            bottom = max(int(changed[i][-1]) for i in eligible) + 1
            left = x + eligible[0] * s.tile_size
            right = min(x + (eligible[-1] + 1) * s.tile_size, x + w)
            before_all = strip_fingerprints(old[top:bottom, left:right], s.tile_size)
            after_all = strip_fingerprints(new[top:bottom, left:right], s.tile_size)
            before, before_rows, after, after_rows = [], [], [], []
            for i in eligible:
                rows = changed[i] - top
                r0, r1 = int(rows[0]), int(rows[-1]) + 1
                column = i - eligible[0]
                before.append(before_all[r0:r1, column] + _SALTS[i])
                before_rows.append(np.arange(r0, r1))
                rows = rows[:: -(-len(rows) // s.vote_rows)]  # enough votes from a sample
                after.append(after_all[rows, column] + _SALTS[i])
                after_rows.append(rows)
            votes.append(shift_votes(np.concatenate(before), np.concatenate(after), np.concatenate(after_rows),
                                     s.max_hash_repeats, np.concatenate(before_rows)))
        if not votes:
            return []
        return [(0, dy) for dy in top_shifts(np.concatenate(votes), s.max_shift_candidates, s.min_shift_votes)]

    def _votes(self, image, x, strip, rows) -> bool:
        """
        Whether strip C{strip} of a region at C{x} looks text-like where it
        changed: the row of tiles holding its middle changed row has at most
        C{text_colours} colours there.
        """
        ts = self.settings.tile_size
        middle = int(rows[len(rows) // 2])
        band = rows[(rows // ts) == middle // ts]
        x0 = x + strip * ts
        x1 = min(x0 + ts, image.rows.shape[1])
        return image.colours((x0, int(band[0]), x1, int(band[-1]) + 1), self.settings.text_colours) is not None

    def _place(self, old, new, regions, shifts, image, bases):
        """
        Copy tiles for the moved rows of each strip, and the rectangles left
        to encode, each narrowed to the columns that changed in its rows
        (against the region's base, if in C{bases}, or else C{old}).
        """
        ts = self.settings.tile_size
        runs: dict[tuple, list[tuple[int, int]]] = {}  # (y, height, dx, dy) -> strips' x ranges
        pending = []
        for x, y, w, h, changed in regions:
            explained = self._explained(old, new, (x, y, w, h), changed, shifts)
            base = bases.get((x, y))
            if base is None:
                base = old[y : y + h, x : x + w]
            now = new[y : y + h, x : x + w]
            strips = []  # per strip, its pieces left to encode: (x, y, width, height), one per row of tiles
            for i, rows in enumerate(changed):
                if not len(rows):
                    continue
                x0, x1 = x + i * ts, min(x + (i + 1) * ts, x + w)
                moved, encode = (), rows
                if shifts:
                    moved, encode = self._strip_runs(rows, y, [e[:, i] for e in explained], shifts)
                for y0, y1, (dx, dy) in moved:
                    runs.setdefault((y0, y1 - y0, dx, dy), []).append((x0, x1))
                if len(encode):
                    bands = encode // ts
                    starts = np.flatnonzero(np.diff(bands, prepend=-1))
                    ends = np.append(starts[1:], len(encode)) - 1
                    strips.append([(x0, a, x1 - x0, b + 1 - a)
                                   for a, b in zip(encode[starts].tolist(), encode[ends].tolist())])
            for piece in self._classify_region(image, strips):
                if not piece.lossless:  # (a photograph's pieces changed all over: not narrowed)
                    last = pending[-1] if pending else None
                    if last is not None and not last.lossless and last.x == piece.x and last.y + last.height == piece.y:
                        last.height += piece.height  # the same strip, the next row of tiles
                    else:
                        pending.append(piece)
                    continue
                x0, a, b = piece.x, piece.y, piece.y + piece.height
                columns = np.flatnonzero((base[a - y : b - y, x0 - x : x0 + piece.width - x]
                                          != now[a - y : b - y, x0 - x : x0 + piece.width - x]).any(axis=0))
                if len(columns):
                    piece.x, piece.width = x0 + int(columns[0]), int(columns[-1]) + 1 - int(columns[0])
                pending.append(piece)
        copies = []
        for (y, h, dx, dy), ranges in runs.items():
            for x0, x1 in merge_ranges(ranges):
                copies.append(Tile(x0, y, x1 - x0, h, wt.COPY, wt.copy_data(x0 - dx, y - dy)))
        return copies, pending

    def _explained(self, old, new, region, changed, shifts) -> list:
        """
        Per shift, L{explained_strips} for C{region}, computed only over the
        rows between the first and the last changed row that no shift
        before it explains (C{False} elsewhere): the first shift of a
        scrolled page explains all of it but the new lines.
        """
        x, y, w, h = region
        left = [rows - y for rows in changed]
        out = []
        for shift in shifts:
            explained = np.zeros((h, len(changed)), dtype=bool)
            out.append(explained)
            present = [rows for rows in left if len(rows)]
            if not present:
                continue
            top = min(int(rows[0]) for rows in present)
            bottom = max(int(rows[-1]) for rows in present) + 1
            explained[top:bottom] = explained_strips(old, new, (x, y + top, w, bottom - top), shift,
                                                     self.settings.tile_size)
            left = [rows[~explained[rows, i]] for i, rows in enumerate(left)]
        return out

    def _strip_runs(self, rows, top, explained, shifts):
        """
        The runs of rows (y0, y1, shift) of one strip that are the previous
        picture shifted, and the changed rows C{rows} left to encode
        (numpy).  C{explained}: per shift, whether it explains each row of
        the region (its first row is C{top}).  A run goes on through
        unchanged rows that the same shift explains too (the blank lines
        between lines of text), so a scrolled page is one run.
        """
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        is_changed = np.zeros(r1 - r0, dtype=bool)
        is_changed[rows - r0] = True
        moved, keep = copy_runs(is_changed, [e[r0 - top : r1 - top] for e in explained], self.settings.min_copy_rows)
        encode = rows[keep[rows - r0]] if moved else rows
        return [(r0 + a, r0 + b, shifts[i]) for a, b, i in moved], encode

    def _full(self, image, width, height):
        ts = self.settings.tile_size
        return [self._classify(image, x0, y, x1 - x0, min(ts, height - y))
                for y in range(0, height, ts) for x0, x1 in self._strips(width)]

    # -- encoding -------------------------------------------------------------------------

    def _classify_region(self, image, strips) -> list[_Pending]:
        """
        L{_classify} for the pieces of a region's C{strips} (per strip, its
        pieces one under the other).  Pieces of the same rows in strips side
        by side that have at most C{text_colours} colours all together are
        one lossless piece (one count, and the uncovered top of a moved
        window is one piece); the others are classified strip by strip
        (L{_classify_all}).
        """
        rows: dict[tuple, list] = {}  # (y, height) -> runs of pieces side by side
        for pieces in strips:
            for piece in pieces:
                runs = rows.setdefault(piece[1::2], [])
                if runs and runs[-1][-1][0] + runs[-1][-1][2] == piece[0]:
                    runs[-1].append(piece)
                else:
                    runs.append([piece])
        out, done = [], set()
        limit = self.settings.text_colours
        for (top, height), runs in rows.items():
            for run in runs:
                x0, _, w0, _ = run[0]
                # (Its first piece counted first, once for all: a photograph's run stops there.)
                if len(run) > 1 and image.colours((x0, top, x0 + w0, top + height), limit) is not None:
                    x1 = run[-1][0] + run[-1][2]
                    colours = image.colours((x0, top, x1, top + height), limit)
                    if colours is not None:
                        out.append(_Pending(x0, top, x1 - x0, height, True, colours))
                        done.update(run)
        for pieces in strips:
            left = [p for p in pieces if p not in done]
            if left:
                out.extend(self._classify_all(image, left))
        return out

    def _classify_all(self, image, pieces) -> list[_Pending]:
        """
        L{_classify} for C{pieces} (x, y, width, height) one under the other
        in a strip: when they have at most C{text_colours} colours all
        together, so has each (one count instead of one a piece).
        """
        first = self._classify(image, *pieces[0])
        rest = pieces[1:]
        limit = self.settings.text_colours
        if len(rest) > 1 and first.lossless:  # (a photograph's strip would only count once more)
            x, top, w, _ = rest[0]
            bottom = rest[-1][1] + rest[-1][3]
            if sum(p[3] for p in rest) * 2 >= bottom - top:
                colours = image.colours((x, top, x + w, bottom), limit)
                if colours is not None:
                    return [first] + [_Pending(*p, True, colours) for p in rest]
        if self._shown is not None:
            return [first] + [self._classify(image, *p) for p in rest]
        counts = [image.colours((x, y, x + w, y + h), limit) for x, y, w, h in rest]
        return [first] + [_Pending(x, y, w, h, c is not None, c) for (x, y, w, h), c in zip(rest, counts)]

    def _classify(self, image, x, y, w, h) -> _Pending:
        colours = image.colours((x, y, x + w, y + h), self.settings.text_colours)
        return _Pending(x, y, w, h, colours is not None or self._on_border((x, y, w, h)), colours)

    def _on_border(self, tile) -> bool:
        """Whether C{tile} holds shared pixels and blacked-out ones (only when sharing a part)."""
        if self._shown is None:
            return False
        rect, hidden = self._shown
        if rect is None or _overlap(tile, rect) is None:
            return False
        return _overlap(tile, rect) != tile or any(_overlap(tile, r) is not None for r in hidden)

    def _bands(self, pending: list[_Pending]) -> list[_Pending]:
        """
        Lossless pieces side by side (less than a tile apart) whose rows
        overlap, merged into their bounding box unless it is more than twice
        their area: a line of text newly scrolled in changes a different
        number of rows in each strip, and one PNG of the band is much
        smaller than a dozen slivers.  The box may take in unchanged pixels;
        they are the current picture too.
        """
        ts = self.settings.tile_size
        limit = self.settings.merge_width * ts
        out: list[_Pending] = []
        for p in sorted(pending, key=lambda p: (p.x, p.y)):
            if p.lossless:
                for i, q in enumerate(out):
                    top, bottom = min(p.y, q.y), max(p.y + p.height, q.y + q.height)
                    box = (p.x + p.width - q.x) * (bottom - top)
                    if (q.lossless and 0 <= p.x - (q.x + q.width) < ts and p.x + p.width - q.x <= limit
                            and p.y < q.y + q.height and q.y < p.y + p.height
                            and box <= 2 * (p.width * p.height + q.width * q.height)):
                        out[i] = _Pending(q.x, top, p.x + p.width - q.x, bottom - top, True, None)
                        # (No colours: the box takes in pixels neither piece counted.)
                        break
                else:
                    out.append(p)
            else:
                out.append(p)
        return out

    def _encode(self, image, pending: list[_Pending]) -> list[Tile]:
        merged = []
        for p in sorted(self._bands(pending), key=lambda p: (p.y, p.height, p.x)):
            last = merged[-1] if merged else None
            if (last is not None and last.y == p.y and last.height == p.height and last.lossless == p.lossless
                    and 0 <= p.x - (last.x + last.width) < (self.settings.tile_size if p.lossless else 1)
                    and p.x + p.width - last.x <= self.settings.merge_width * self.settings.tile_size):
                colours = _together(last.colours, p.colours, self.settings.text_colours)
                if last.lossless and colours is None:
                    merged.append(p)  # text-like on each side but too many colours together
                    continue
                if p.x != last.x + last.width:
                    colours = None  # the gap's colours are not counted
                merged[-1] = _Pending(last.x, last.y, p.x + p.width - last.x, p.height, p.lossless, colours)
            else:
                merged.append(p)
        tiles = []
        for p in self._columns(merged):
            tiles.extend(self._encode_one(image, p))
        return tiles

    def _columns(self, pending: list[_Pending]) -> list[_Pending]:
        """
        Pieces of the same kind and the same columns, one right under the
        other, merged (up to C{merge_width} tiles high): the side of a moved
        window is one tile, not one a row of tiles.
        """
        limit = self.settings.merge_width * self.settings.tile_size
        out: list[_Pending] = []
        for p in sorted(pending, key=lambda p: (p.x, p.width, p.y)):
            last = out[-1] if out else None
            if (last is not None and (last.x, last.width, last.lossless) == (p.x, p.width, p.lossless)
                    and last.y + last.height == p.y and last.height + p.height <= limit):
                colours = _together(last.colours, p.colours, self.settings.text_colours)
                out[-1] = _Pending(last.x, last.y, last.width, last.height + p.height, p.lossless, colours)
                continue
            out.append(p)
        return out

    def _encode_one(self, image, p: _Pending) -> list[Tile]:
        s = self.settings
        box = (p.x, p.y, p.x + p.width, p.y + p.height)
        if p.lossless:
            encoding, data, region = wt.PNG, None, None
            colours = p.colours
            if p.width * p.height >= s.palette_pixels:
                if colours is None:  # a merged band, or a tile on a shared window's border
                    colours = image.colours(box, s.palette_colours)
                if colours is not None and len(colours) <= s.palette_colours:
                    data = _palette_png(image.pixels(box), colours, s.png_level)
            if data is None:
                region = region or image.crop(box)
                data = wt.encode_tile(region, wt.PNG, compress_level=s.png_level)
            if len(data) >= p.width * p.height * 3:
                encoding, data = wt.RAW, (region or image.crop(box)).tobytes()
        else:
            encoding = s.lossy_encoding
            data = wt.encode_tile(image.crop(box), encoding, quality=s.lossy_quality,
                                  subsampling=s.lossy_subsampling)
        if len(data) <= s.max_tile_bytes:
            return [Tile(p.x, p.y, p.width, p.height, encoding, data)]
        if p.width >= p.height and p.width > 1:
            half = p.width // 2
            parts = [(p.x, p.y, half, p.height), (p.x + half, p.y, p.width - half, p.height)]
        elif p.height > 1:
            half = p.height // 2
            parts = [(p.x, p.y, p.width, half), (p.x, p.y + half, p.width, p.height - half)]
        else:
            raise ValueError("a one-pixel tile larger than a chunk")
        out = []
        for x, y, w, h in parts:
            out.extend(self._encode_one(image, _Pending(x, y, w, h, p.lossless, p.colours)))
        return out


def _together(a, b, limit: int):
    """The colours of two pieces together (as C{getcolors} lists them), or C{None} if unknown or more than C{limit}."""
    if a is None or b is None:
        return None
    together = {c for _, c in a} | {c for _, c in b}
    return [(0, c) for c in together] if len(together) <= limit else None


# -- the differ's vectorised parts (pure functions of numpy arrays) ---------------------------

_NO_ROWS = np.zeros(0, dtype=np.intp)
# Random odd 64-bit weights: a row segment's fingerprint is its pixels' dot product with them
# (modulo 2**64).  Equal segments have equal fingerprints; a collision only costs a wrong vote,
# since every copy is checked pixel for pixel.
_WEIGHTS = np.random.default_rng(0x50_4E_54_45).integers(1, 2**63, size=1024, dtype=np.uint64) | np.uint64(1)
# Added to a strip's fingerprints so that those of different strips can be looked up together.
_SALTS = np.random.default_rng(0x53_41_4C_54).integers(1, 2**63, size=2048, dtype=np.uint64)


def strip_changes(old, new, tile_size: int):
    """
    Whether each row's segment in each strip (C{tile_size} pixels wide, the
    last one what is left) differs between C{old} and C{new} (2-D arrays
    of 32-bit pixels of the same shape): a boolean array, rows × strips.
    Pixels are compared two at a time where the shapes allow it.
    """
    height, width = new.shape
    whole = width // tile_size
    if tile_size % 16 == 0 and width % 2 == 0 and old.strides[1] == new.strides[1] == 4:
        differs = old.view(np.uint64) != new.view(np.uint64)  # two pixels a word
        words = differs[:, : whole * tile_size // 2].view(np.uint64)  # eight pairs a word
        words = words.reshape(height, whole, tile_size // 16)
        merged = words[:, :, 0].copy()
        for i in range(1, tile_size // 16):
            merged |= words[:, :, i]
        per_strip = merged != 0
        rest = differs[:, whole * tile_size // 2 :]
    else:
        differs = old != new
        per_strip = differs[:, : whole * tile_size].reshape(height, whole, tile_size).any(axis=2)
        rest = differs[:, whole * tile_size :]
    if whole * tile_size < width:
        per_strip = np.concatenate([per_strip, rest.any(axis=1)[:, None]], axis=1)
    return per_strip


def strip_fingerprints(pixels, tile_size: int):
    """
    One 64-bit fingerprint per row and strip of C{pixels} (rows of 32-bit
    pixels; strips C{tile_size} wide, the last one what is left): rows ×
    strips.  Equal segments of the same width have equal fingerprints.
    """
    height, width = pixels.shape
    whole = width // tile_size
    out = np.empty((height, whole + (whole * tile_size < width)), dtype=np.uint64)
    if whole:
        segments = pixels[:, : whole * tile_size]
        if tile_size % 2 == 0 and pixels.strides[1] == 4:
            words = segments.view(np.uint64).reshape(height, whole, tile_size // 2)  # two pixels a word
            out[:, :whole] = np.einsum("rsk,k->rs", words, _WEIGHTS[: tile_size // 2])
        else:
            out[:, :whole] = np.einsum("rsk,k->rs", segments.reshape(height, whole, tile_size).astype(np.uint64),
                                       _WEIGHTS[:tile_size])
    if whole * tile_size < width:
        out[:, whole] = row_fingerprints(pixels[:, whole * tile_size :])
    return out


def explained_strips(old, new, region, shift, tile_size: int):
    """
    For each row and strip of C{region} (x, y, width, height; x on the
    grid) of C{new}, whether the segment is C{old}'s at the place shifted
    back by C{shift} (dx, dy); C{False} where that place is not inside
    C{old}.  Rows × strips.
    """
    x, y, w, h = region
    dx, dy = shift
    height, width = old.shape
    strips = -(-w // tile_size)
    out = np.zeros((h, strips), dtype=bool)
    a, b = max(y, dy), min(y + h, height + dy)
    first = max(0, -(-(dx - x) // tile_size))  # the first strip whose source starts at x ≥ 0
    last = strips
    while last > first and min(x + last * tile_size, x + w) - dx > width:
        last -= 1
    if a < b and first < last:
        x0, x1 = x + first * tile_size, min(x + last * tile_size, x + w)
        out[a - y : b - y, first:last] = ~strip_changes(old[a - dy : b - dy, x0 - dx : x1 - dx], new[a:b, x0:x1],
                                                        tile_size)
    return out


def row_fingerprints(segment, weights=None):
    """One 64-bit fingerprint per row of C{segment} (rows of 32-bit pixels)."""
    if weights is None:
        weights = _WEIGHTS[: segment.shape[1]]
    return np.dot(segment.astype(np.uint64), weights)


def shift_votes(before, after, after_rows, repeats: int, before_rows=None):
    """
    The votes (dy) of the fingerprints C{after} (of rows C{after_rows}) for
    the rows with the same fingerprint among C{before} (rows
    C{before_rows}: 0, 1, ... if not given), when that fingerprint occurs
    at most C{repeats} times in C{before}; no vote for a row matching
    itself.  In order of rows, then of sources.  (The few C{after} are
    sorted and the many C{before} looked up among them.)
    """
    if len(before) == 0 or len(after) == 0 or repeats < 1:
        return _NO_ROWS
    keys, key_of_after = np.unique(after, return_inverse=True)
    place = np.minimum(np.searchsorted(keys, before), len(keys) - 1)
    hits = np.flatnonzero(keys[place] == before)  # the rows of before with a key of after
    key_of_hit = place[hits]
    counts = np.bincount(key_of_hit, minlength=len(keys))
    sources_by_key = hits[np.argsort(key_of_hit, kind="stable")]  # ascending within each key
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    count = counts[key_of_after]
    k = np.arange(repeats)
    valid = ((count >= 1) & (count <= repeats))[:, None] & (k[None, :] < count[:, None])
    if not len(sources_by_key):
        return _NO_ROWS
    sources = sources_by_key[np.minimum(first[key_of_after][:, None] + k[None, :], len(sources_by_key) - 1)]
    if before_rows is not None:
        sources = np.asarray(before_rows)[sources]
    dy = np.asarray(after_rows)[:, None] - sources
    return dy[valid & (dy != 0)]


def top_shifts(votes, candidates: int, min_votes: int) -> list[int]:
    """The C{candidates} most frequent values of C{votes} (ties: first seen first) with at least C{min_votes}."""
    if len(votes) == 0:
        return []
    values, first, counts = np.unique(votes, return_index=True, return_counts=True)
    best = np.lexsort((first, -counts))[:candidates]
    return [int(values[i]) for i in best if counts[i] >= min_votes]


def copy_runs(changed, explained, min_rows: int):
    """
    Runs of rows that are shifted copies, from C{changed} (whether each row
    changed) and C{explained} (per candidate shift, whether it explains
    each row).  Going down: a run starts at a changed row with the first
    shift that explains it and goes on, through changed and unchanged rows,
    while that shift explains them.  Runs of at least C{min_rows} rows are
    kept.  Returns the runs (start, end, index of the shift) and, per row,
    whether it is a changed row left to encode.
    """
    keep = np.array(changed, dtype=bool)
    if not explained:
        return [], keep
    n = len(keep)
    starts = np.flatnonzero(keep & np.logical_or.reduce(explained))
    breaks = [np.flatnonzero(~e) for e in explained]
    runs = []
    y = 0
    while True:
        i = int(np.searchsorted(starts, y))
        if i == len(starts):
            break
        y = int(starts[i])
        shift = next(j for j, e in enumerate(explained) if e[y])
        j = int(np.searchsorted(breaks[shift], y))
        end = int(breaks[shift][j]) if j < len(breaks[shift]) else n
        if end - y >= min_rows:
            runs.append((y, end, shift))
            keep[y:end] = False
        y = end
    return runs, keep


def _palette_png(pixels, colours, level: int) -> bytes | None:
    """
    A palette PNG of C{pixels} (rows of 32-bit B, G, R, X pixels) whose
    colours are among C{colours} ((count, (b, g, r, x)) as
    L{_Canvas.colours} lists them, at most 256), or C{None} if a pixel's
    colour is not among them.  The palette holds only those colours, so
    the PNG is exact.
    """
    keys = np.unique(np.array([(c[2] << 16) | (c[1] << 8) | c[0] for _, c in colours], dtype=np.uint32))
    if not 0 < len(keys) <= 256:
        return None
    found = pixels & np.uint32(0xFFFFFF)
    index = np.minimum(np.searchsorted(keys, found), len(keys) - 1)
    if not np.array_equal(keys[index], found):
        return None
    height, width = pixels.shape
    palette = np.stack([keys >> 16, keys >> 8, keys], axis=1).astype(np.uint8).tobytes()
    return wt.png_image(width, height, index.astype(np.uint8).tobytes(), palette, level)


# -- X11 ------------------------------------------------------------------------------------


def _x_display(name):
    from Xlib import display

    return display.Display(name)


def _x_errors():
    from Xlib import error

    return (error.XError, error.ConnectionClosedError)


def window_area(xdisplay, window_id: int):
    """
    Where window C{window_id} shows on the root window: its rectangle
    (x, y, width, height) and the rectangles of the windows stacked above
    it; C{(None, [])} when it is gone or not mapped.
    """
    from Xlib import X

    root = xdisplay.screen().root
    try:
        window = xdisplay.create_resource_object("window", window_id)
        if window.get_attributes().map_state != X.IsViewable:
            return None, []
        geometry = window.get_geometry()
        origin = root.translate_coords(window, 0, 0)
        rect = (origin.x, origin.y, geometry.width, geometry.height)
        top = window
        while True:
            parent = top.query_tree().parent
            if parent is None or parent.id == root.id or parent.id == 0:
                break
            top = parent
        children = root.query_tree().children
        ids = [c.id for c in children]
        above = children[ids.index(top.id) + 1:] if top.id in ids else []
        hidden = []
        for other in above:
            attributes = other.get_attributes()
            if attributes.map_state != X.IsViewable or attributes.win_class == X.InputOnly:
                continue
            g = other.get_geometry()
            hidden.append((g.x, g.y, g.width + 2 * g.border_width, g.height + 2 * g.border_width))
        return rect, hidden
    except _x_errors():
        return None, []


def top_level_geometries(xdisplay) -> dict[int, tuple[int, int, int, int]]:
    """The mapped top-level windows' rectangles on the root window, by id."""
    return {wid: tuple(place[:4]) for wid, place in root_children(xdisplay).items() if place[4]}


def window_moves(before: dict, after: dict) -> list[tuple[int, int]]:
    """The shifts (dx, dy) of windows that kept their size and changed place."""
    moves = []
    for dx, dy, *_ in moved_windows(before, after):
        if (dx, dy) not in moves:
            moves.append((dx, dy))
    return moves


def moved_windows(before: dict, after: dict) -> list[tuple[int, int, int, int, int, int]]:
    """
    The windows (id -> x, y, width, height in C{before} and C{after}) that
    kept their size and changed place: (dx, dy, x, y, width, height), the
    shift and the place now.
    """
    moved = []
    for wid, (x, y, w, h) in after.items():
        old = before.get(wid)
        if old is not None and old[2:] == (w, h) and old[:2] != (x, y):
            moved.append((x - old[0], y - old[1], x, y, w, h))
    return moved


def _title(xdisplay, window) -> str | None:
    from Xlib import X

    try:
        name = window.get_full_text_property(xdisplay.intern_atom("_NET_WM_NAME"), X.AnyPropertyType)
        if not name:
            name = window.get_wm_name()
    except _x_errors():
        return None
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return name or None


def list_windows(xdisplay) -> list[tuple[int, str]]:
    """
    The top-level windows a customer could share, (id, title), topmost
    first: the window manager's client list when there is one, else the
    mapped children of the root window (or their first titled child) that
    have a title and are not override-redirect (menus, tooltips).
    """
    from Xlib import X

    root = xdisplay.screen().root
    found = []
    try:
        clients = root.get_full_property(xdisplay.intern_atom("_NET_CLIENT_LIST_STACKING"), X.AnyPropertyType) \
            or root.get_full_property(xdisplay.intern_atom("_NET_CLIENT_LIST"), X.AnyPropertyType)
        if clients:
            candidates = [xdisplay.create_resource_object("window", wid) for wid in clients.value]
        else:
            candidates = []
            for child in root.query_tree().children:
                try:
                    attributes = child.get_attributes()
                except _x_errors():
                    continue
                if attributes.map_state != X.IsViewable or attributes.override_redirect:
                    continue
                if _title(xdisplay, child) is None:
                    titled = [c for c in child.query_tree().children if _title(xdisplay, c)]
                    if titled:
                        child = titled[0]
                candidates.append(child)
    except _x_errors():
        return []
    for window in reversed(candidates):
        title = _title(xdisplay, window)
        if title:
            found.append((window.id, title))
    return found


# -- the capture thread ---------------------------------------------------------------------


class _Capture(threading.Thread):
    """
    The one thread that grabs the screen: it owns the mss instance, the
    differ and an X connection for window geometry, all made in the thread.
    """

    def __init__(self, source: "ScreenSource"):
        super().__init__(name="ponte screen capture", daemon=True)
        self.source = source
        self.settings = source.settings
        self.jobs: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.ended = defer.Deferred()
        self._last_grab = 0.0
        self._last_change = time.monotonic()  # of the picture grabbed, for the idle polling rate
        self._last_raw = None  # the previous grab as mss made it (before any black out)
        self._windows = None  # top-level windows' rectangles at the previous picture
        self._windows_now = None  # and at the picture being compared
        self._shared = source.shared_window
        self._x = None
        self._watch = None  # agent.damage.DamageWatch, once started
        self._watch_tried = False
        self._last_full = 0.0  # of the last grab of the whole monitor
        self._origin = (0, 0)  # the top left corner of the monitor grabbed
        self._memory_kept = False

    def run(self):
        import mss

        call = self.source.reactor.callFromThread
        grabber = None
        try:
            grabber = mss.MSS(display=self.source.display)
            differ = FrameDiffer(self.settings)
            while not self.stopping.is_set():
                try:
                    job = self.jobs.get(timeout=_WAKE_UP)
                except queue.Empty:
                    self._drain()
                    continue
                if job is None:
                    break
                monitor, deferred = job
                if not self._memory_kept:
                    # Buffers of up to a monitor's pixels come and go every frame.
                    self._memory_kept = True
                    keep_freed_memory(monitor.width * monitor.height * BYTES_PER_PIXEL + (1 << 20))
                try:
                    frame = self._next(grabber, differ, monitor)
                except Exception:
                    call(self.source._deliver, self, deferred, Failure())
                else:
                    if frame is not None:
                        call(self.source._deliver, self, deferred, frame)
        except Exception:
            call(self.source._failed, self, Failure())
        finally:
            for thing in (grabber, self._x):
                try:
                    if thing is not None:
                        thing.close()
                except Exception:
                    pass
            call(self.ended.callback, None)

    def _next(self, grabber, differ, monitor: Monitor) -> Frame | None:
        """
        Grab until something changed, at most C{max_fps} times a second; C{None} if stopped first.
        With X DAMAGE only what was drawn is grabbed, and nothing while
        nothing is drawn (L{_next_damaged}); otherwise the whole monitor,
        less often on a still screen (L{grab_interval}).
        """
        self._origin = (monitor.left, monitor.top)
        while True:
            watch = self._damage_watch()
            if watch is not None and self.source.shared_window is None and self._shared is None \
                    and differ.has_previous(monitor.index, monitor.width, monitor.height):
                frame = self._next_damaged(grabber, differ, monitor, watch)
                if frame is not None or self.stopping.is_set():
                    return frame
                continue
            interval = grab_interval(self.settings, time.monotonic() - self._last_change)
            wait = self._last_grab + interval - time.monotonic()
            if self.stopping.wait(max(wait, 0)):
                return None
            frame = self._grab_whole(grabber, differ, monitor, watch)
            if frame is not None:
                self._last_change = time.monotonic()
                return frame

    def _next_damaged(self, grabber, differ, monitor: Monitor, watch) -> Frame | None:
        """
        Wait for something drawn on the monitor (or the time of a check of
        the whole monitor, every C{full_check} seconds: in case something
        drew without DAMAGE knowing), at most C{max_fps} grabs a second;
        grab those parts and compare them.  C{None} if nothing changed or
        stopped.
        """
        wait = self._last_grab + 1.0 / self.settings.max_fps - time.monotonic()
        if self.stopping.wait(max(wait, 0)):
            return None
        area = (monitor.left, monitor.top, monitor.width, monitor.height)
        rects = watch.take()
        regions = dirty_regions(rects, area, self.settings.tile_size)
        now = time.monotonic()
        if now - self._last_full >= self.settings.full_check:
            regions, self._last_full = [(0, 0, monitor.width, monitor.height)], now
        if not regions:
            if watch.wait(min(_WAKE_UP, self._last_full + self.settings.full_check - now)):
                # Something is being drawn: give the drawing a moment to end, so that one
                # frame holds it rather than its first part (and the rest a frame later).
                self.stopping.wait(self.settings.settle)
            return None
        self._last_grab = now
        self._windows_now = watch.geometries()
        patches = []
        for x, y, w, h in regions:
            shot = grabber.grab({"left": monitor.left + x, "top": monitor.top + y, "width": w, "height": h})
            patches.append((x, y, w, h, shot.raw))
        frame = differ.update(monitor.index, monitor.width, monitor.height, patches, self._moves)
        self._windows = self._windows_now
        return frame

    def _grab_whole(self, grabber, differ, monitor: Monitor, watch) -> Frame | None:
        """Grab the whole monitor and compare it with the previous picture (blacked out when sharing a window)."""
        if watch is not None:
            watch.take()  # what was drawn up to now is in this grab
            self._last_full = time.monotonic()
        self._last_grab = time.monotonic()
        shot = grabber.grab({"left": monitor.left, "top": monitor.top,
                             "width": monitor.width, "height": monitor.height})
        width, height = shot.size
        pixels = shot.raw  # a new bytearray each grab, never changed afterwards
        raw_changed = self._last_raw is None or self._last_raw != pixels
        self._last_raw = pixels
        if raw_changed:
            # The windows' places at this very picture (read before the comparison, which
            # takes a while): the move hints must describe the moment of the grab.
            self._windows_now = watch.geometries() if watch is not None else self._geometries()
        shared = self.source.shared_window
        if shared != self._shared:
            # Another window (or all, or one instead of all): a whole frame, so that
            # nothing on the console's canvas, nor any copy, comes from before.
            self._shared = shared
            differ.reset()
        if shared is not None:
            rect, hidden = window_area(self._connection(), shared)

            def place(r):
                return (r[0] - monitor.left, r[1] - monitor.top, r[2], r[3])

            shown = (rect and place(rect), [place(r) for r in hidden])
            pixels = black_out(pixels, width, height, *shown)
        elif not raw_changed and differ.has_previous(monitor.index, width, height):
            return None  # the same picture: nothing to compare
        else:
            shown = None
        frame = differ.frame(monitor.index, width, height, pixels, self._moves, shown)
        if self._windows_now is not None:
            self._windows = self._windows_now
        return frame

    def _drain(self) -> None:
        """
        Read what DAMAGE reported while no frame is asked for (so that the X
        server does not keep it for us); what was drawn meanwhile is then
        found by comparing the whole monitor at the next frame.
        """
        if self._watch is not None and self._watch.take():
            self._last_full = 0.0

    def _damage_watch(self):
        """The X DAMAGE watch of this thread, started at the first call; C{None} without DAMAGE (or when off)."""
        if not self._watch_tried:
            self._watch_tried = True
            if self.settings.use_damage:
                try:
                    self._watch = DamageWatch.start(self._connection())
                except Exception as e:
                    self.source.log.info("no X DAMAGE, the whole screen is compared: {problem}", problem=str(e))
                    self._watch = None
        return self._watch

    def _moves(self) -> list[tuple[int, ...]]:
        """
        How top-level windows moved from the previous picture to this one
        (hints for the differ): (dx, dy, x, y, width, height), the window's
        place now relative to the monitor grabbed.
        """
        before, after = self._windows, self._windows_now
        if not before or not after:
            return []
        left, top = self._origin
        return [(dx, dy, x - left, y - top, w, h) for dx, dy, x, y, w, h in moved_windows(before, after)]

    def _geometries(self):
        try:
            return top_level_geometries(self._connection())
        except Exception:
            return {}

    def _connection(self):
        if self._x is None:
            self._x = _x_display(self.source.display)
        return self._x


@implementer(IScreenSource)
class ScreenSource:
    """
    The X11 screen through mss, one capture thread, python-xlib for the
    pointer and windows.  Made and used on the reactor thread.
    """

    log = Logger()

    def __init__(self, settings: ScreenSettings = ScreenSettings(), reactor=None, display: str | None = None):
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.reactor = reactor
        self.display = display if display is not None else os.environ.get("DISPLAY")
        self.shared_window: int | None = None
        self._capture: _Capture | None = None
        self._running: set[_Capture] = set()  # threads not yet ended (a stopped one may still finish a grab)
        self._waiting: defer.Deferred | None = None
        self._waiting_for: Monitor | None = None
        self._monitors: list[Monitor] | None = None
        self._monitors_at = 0.0
        self._x = None  # the reactor thread's own X connection

    # -- IScreenSource ---------------------------------------------------------------------

    def monitors(self) -> list[Monitor]:
        """
        The monitors mss sees, without its "all monitors" entry: index 0 is
        the first real monitor.  The first one is marked primary when none
        is.  Cached for C{monitors_refresh} seconds.
        """
        now = time.monotonic()
        if self._monitors is None or now - self._monitors_at > self.settings.monitors_refresh:
            import mss

            with mss.MSS(display=self.display) as grabber:
                found = grabber.monitors[1:]
            any_primary = any(m.get("is_primary") for m in found)
            self._monitors = [
                Monitor(i, m["left"], m["top"], m["width"], m["height"],
                        bool(m.get("is_primary")) or (not any_primary and i == 0))
                for i, m in enumerate(found)
            ]
            self._monitors_at = now
        return list(self._monitors)

    def next_frame(self, monitor: int) -> defer.Deferred:
        """
        The next frame of C{monitor}: the whole monitor after a start or
        L{stop}, then only what changed; it fires once something changed.
        """
        if self._waiting is not None:
            return defer.fail(RuntimeError("a frame is already being made"))
        try:
            chosen = [m for m in self.monitors() if m.index == monitor]
        except Exception:
            return defer.fail()
        if not chosen:
            return defer.fail(ValueError(f"no monitor {monitor}"))
        if self._capture is None:
            self._capture = capture = _Capture(self)
            self._running.add(capture)
            capture.ended.addBoth(lambda _: self._running.discard(capture))
            capture.start()
        d = defer.Deferred(self._cancel)
        self._waiting, self._waiting_for = d, chosen[0]
        self._capture.jobs.put((chosen[0], d))
        return d

    def cursor(self, monitor: int) -> Cursor:
        """
        The pointer relative to C{monitor}'s top left corner; not visible
        when it is outside the monitor, or outside the shared window.
        """
        chosen = [m for m in self.monitors() if m.index == monitor]
        try:
            x = self._x_connection()
            pointer = x.screen().root.query_pointer()
            px, py = pointer.root_x, pointer.root_y
            visible = bool(pointer.same_screen) and bool(chosen) and _inside((px, py), chosen[0])
            if visible and self.shared_window is not None:
                rect, hidden = window_area(x, self.shared_window)
                visible = rect is not None and _in_rect((px, py), rect) and not any(_in_rect((px, py), r) for r in hidden)
        except Exception as e:
            self.log.info("no pointer position: {problem}", problem=str(e))
            self._drop_x()
            return Cursor(0, 0, False)
        left, top = (chosen[0].left, chosen[0].top) if chosen else (0, 0)
        return Cursor(px - left, py - top, visible)

    def stop(self) -> None:
        """End the capture thread and forget the previous frames; a pending frame fires empty."""
        self._stop_capture()
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.called:
            m = self._waiting_for
            waiting.callback(Frame(m.index, m.width, m.height, ()))
        self._drop_x()

    def share_window(self, window_id: int | None) -> None:
        """
        Share only window C{window_id} (an X window id), or the whole screen
        with C{None}.  The next frame is a whole one.
        """
        self.shared_window = window_id

    # -- beyond the interface -------------------------------------------------------------

    def windows(self) -> list[tuple[int, str]]:
        """The top-level windows the customer can choose to share, (id, title), topmost first."""
        try:
            return list_windows(self._x_connection())
        except Exception as e:
            self.log.info("no window list: {problem}", problem=str(e))
            self._drop_x()
            return []

    def ended(self) -> defer.Deferred:
        """A Deferred firing once every capture thread started so far has ended (after L{stop})."""
        waits = []
        for capture in self._running:
            d = defer.Deferred()
            capture.ended.addBoth(lambda r, d=d: d.callback(None) or r)
            waits.append(d)
        return defer.gatherResults(waits).addCallback(lambda _: None)

    # -- thread plumbing ------------------------------------------------------------------

    def _deliver(self, capture, deferred, result):
        if deferred is not self._waiting or capture is not self._capture:
            return  # stopped or cancelled meanwhile
        self._waiting = None
        deferred.callback(result) if not isinstance(result, Failure) else deferred.errback(result)

    def _failed(self, capture, failure):
        """The capture thread could not start (no display, no mss backend)."""
        if capture is self._capture:
            self._capture = None
            waiting, self._waiting = self._waiting, None
            if waiting is not None:
                waiting.errback(failure)
                return
        self.log.failure("screen capture failed", failure)

    def _cancel(self, deferred):
        # The frame is no longer wanted: end the thread, so that the next frame is a full one.
        if deferred is self._waiting:
            self._waiting = None
            self._stop_capture()

    def _stop_capture(self):
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.stopping.set()
            capture.jobs.put(None)

    def _x_connection(self):
        if self._x is None:
            self._x = _x_display(self.display)
        return self._x

    def _drop_x(self):
        x, self._x = self._x, None
        if x is not None:
            try:
                x.close()
            except Exception:
                pass


def _inside(point, monitor: Monitor) -> bool:
    return _in_rect(point, (monitor.left, monitor.top, monitor.width, monitor.height))


def _in_rect(point, rect) -> bool:
    x, y = point
    return rect[0] <= x < rect[0] + rect[2] and rect[1] <= y < rect[1] + rect[3]
