"""
What changed on the X screen, as the X server reports it: the DAMAGE
extension (the rectangles drawn on the root window and its windows) and
the top-level windows' places (C{SubstructureNotify} on the root window).

With these the capture thread grabs only the parts of the screen that were
drawn since the last look, and nothing at all while nothing is drawn, as
x11vnc does; without DAMAGE (L{DamageWatch.start} answers C{None}) it
falls back to grabbing and comparing the whole monitor.

Two parts:

  - L{dirty_regions}, pure logic: damaged rectangles to the few
    tile-aligned rectangles of a monitor to grab;
  - L{DamageWatch}: the X side, on a python-xlib connection used by one
    thread only (the capture thread).
"""

import select

import attrs


def dirty_regions(rects, monitor, tile_size: int) -> list[tuple[int, int, int, int]]:
    """
    The rectangles (x, y, width, height, relative to C{monitor}) to grab
    so that every pixel of C{rects} (x, y, width, height on the root
    window) that lies on C{monitor} (left, top, width, height) is in one:
    the tiles of the monitor's grid of C{tile_size} that C{rects} touch,
    one rectangle per run of touched tiles in a row of tiles, runs with the
    same columns in consecutive rows of tiles joined.  Every rectangle's
    left edge is on the grid, and so is its right edge unless it is the
    monitor's; they do not overlap.
    """
    left, top, width, height = monitor
    touched: dict[int, list[tuple[int, int]]] = {}  # row of tiles -> column ranges touched
    for x, y, w, h in rects:
        x0, y0 = max(x - left, 0), max(y - top, 0)
        x1, y1 = min(x - left + w, width), min(y - top + h, height)
        if x1 > x0 and y1 > y0:
            columns = (x0 // tile_size, (x1 - 1) // tile_size + 1)
            for row in range(y0 // tile_size, (y1 - 1) // tile_size + 1):
                touched.setdefault(row, []).append(columns)
    out = []
    open_runs: dict[tuple[int, int], int] = {}  # runs of the row of tiles above -> index in out
    previous_row = None
    for row in sorted(touched):
        if previous_row is None or row != previous_row + 1:
            open_runs = {}
        previous_row = row
        runs = {}
        for c0, c1 in merge_ranges(touched[row]):
            y = row * tile_size
            h = min(tile_size, height - y)
            index = open_runs.get((c0, c1))
            if index is not None:
                x_, y_, w_, h_ = out[index]
                out[index] = (x_, y_, w_, h_ + h)
            else:
                index = len(out)
                out.append((c0 * tile_size, y, min(c1 * tile_size, width) - c0 * tile_size, h))
            runs[(c0, c1)] = index
        open_runs = runs
    return out


def merge_ranges(ranges):
    """Ranges (start, end) merged where they overlap or touch, in order."""
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


@attrs.define
class DamageWatch:
    """
    X DAMAGE on the root window (every drawing on the screen, as raw
    rectangles) and the places of the root window's children, both read
    from the events of one python-xlib connection.  Made and used in one
    thread.
    """

    xdisplay: object
    damage: int
    _windows: dict = attrs.field(factory=dict)  # window id -> [x, y, width, height, mapped]

    @classmethod
    def start(cls, xdisplay) -> "DamageWatch | None":
        """Watch the screen of C{xdisplay}; C{None} when the X server has no DAMAGE extension."""
        from Xlib import X
        from Xlib.ext import damage

        if not xdisplay.has_extension("DAMAGE"):
            return None
        xdisplay.damage_query_version()
        root = xdisplay.screen().root
        root.change_attributes(event_mask=X.SubstructureNotifyMask)
        watch = cls(xdisplay, root.damage_create(damage.DamageReportRawRectangles))
        watch._windows = root_children(xdisplay)
        xdisplay.sync()
        return watch

    def fileno(self) -> int:
        """The X connection's socket (readable when events may have come)."""
        return self.xdisplay.fileno()

    def wait(self, timeout: float) -> bool:
        """Block until the X server sent something (C{True}) or C{timeout} seconds passed (C{False})."""
        if self.xdisplay.pending_events():
            return True
        return bool(select.select([self.fileno()], [], [], max(timeout, 0))[0])

    def take(self) -> list[tuple[int, int, int, int]]:
        """
        The rectangles (x, y, width, height on the root window) drawn since
        the last call, the window places brought up to date on the way.
        """
        from Xlib import X

        rects = []
        xdisplay = self.xdisplay
        damage_event = xdisplay.extension_event.DamageNotify
        while xdisplay.pending_events():
            event = xdisplay.next_event()
            kind = event.type
            if kind == damage_event:
                a = event.area
                rects.append((a.x, a.y, a.width, a.height))
            elif kind == X.ConfigureNotify:
                self._place(event.window.id, event.x, event.y, event.width, event.height)
            elif kind == X.CreateNotify:
                self._windows[event.window.id] = [event.x, event.y, event.width, event.height, False]
            elif kind in (X.MapNotify, X.UnmapNotify):
                known = self._windows.get(event.window.id)
                if known is not None:
                    known[4] = kind == X.MapNotify
            elif kind == X.DestroyNotify:
                self._windows.pop(event.window.id, None)
            elif kind == X.ReparentNotify:
                # A window taken in by a window manager's frame, or given back to the root.
                self._windows = root_children(xdisplay)
        return rects

    def geometries(self) -> dict[int, tuple[int, int, int, int]]:
        """The mapped top-level windows' rectangles (x, y, width, height) as of the last L{take}, by id."""
        return {wid: tuple(w[:4]) for wid, w in self._windows.items() if w[4]}

    def close(self) -> None:
        """Stop watching (the connection stays open)."""
        from Xlib import X

        try:
            self.xdisplay.damage_destroy(self.damage)
            self.xdisplay.screen().root.change_attributes(event_mask=X.NoEventMask)
            self.xdisplay.flush()
        except Exception:
            pass

    def _place(self, wid, x, y, width, height):
        known = self._windows.get(wid)
        if known is None:
            self._windows[wid] = [x, y, width, height, False]
        else:
            known[:4] = [x, y, width, height]


def root_children(xdisplay) -> dict:
    """The root window's children (the top-level windows): id -> [x, y, width, height, mapped]."""
    from Xlib import X, error

    out = {}
    try:
        children = xdisplay.screen().root.query_tree().children
    except (error.XError, error.ConnectionClosedError):
        return out
    for child in children:
        try:
            mapped = child.get_attributes().map_state == X.IsViewable
            g = child.get_geometry()
        except (error.XError, error.ConnectionClosedError):
            continue
        out[child.id] = [g.x, g.y, g.width, g.height, mapped]
    return out
