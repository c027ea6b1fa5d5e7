"""
The latency marker: a small square on screen whose colour encodes a counter.

The workload paints step C{k} with the colour of C{k mod CODES} and notes
when the X server has drawn it; a viewer reads the colour at the marker's
centre in the picture it decoded.  Each channel has 4 levels (0, 85, 170,
255), so 64 codes, and a colour read back with an error up to 42 per
channel (a lossy tile) still gives the right code.
"""

CODES = 64
SIZE = 16  # pixels, the marker's side
LEVEL = 85


def place(width: int, height: int) -> tuple[int, int]:
    """The marker's top left corner on a screen of C{width} × C{height}: top right, clear of the workloads."""
    return width - 3 * SIZE, SIZE // 2


def centre(width: int, height: int) -> tuple[int, int]:
    """The pixel the viewers read."""
    x, y = place(width, height)
    return x + SIZE // 2, y + SIZE // 2


def colour(step: int) -> tuple[int, int, int]:
    """The (R, G, B) of step C{step}."""
    code = step % CODES
    return (code >> 4 & 3) * LEVEL, (code >> 2 & 3) * LEVEL, (code & 3) * LEVEL


def code(rgb) -> int:
    """The code of a colour read back (the nearest levels)."""
    r, g, b = (min(3, (int(v) + LEVEL // 2) // LEVEL) for v in rgb[:3])
    return r << 4 | g << 2 | b


def hex_colour(step: int) -> str:
    """Tk's spelling of L{colour}."""
    return "#%02x%02x%02x" % colour(step)


def match(stamps: list[tuple[int, float]], seen: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """
    For each change of the marker a viewer saw (C{(code, time)}): when the
    workload drew the latest step of that code drawn before it was seen,
    and the latency (seconds) since.  C{stamps} are C{(step, time)} in
    drawing order; times of one clock (C{time.monotonic}, shared by the
    processes of the machine).
    """
    latencies = []
    i, latest = 0, {}
    for seen_code, when in sorted(seen, key=lambda s: s[1]):
        while i < len(stamps) and stamps[i][1] <= when:
            step, drawn = stamps[i]
            latest[step % CODES] = drawn
            i += 1
        drawn = latest.pop(seen_code, None)
        if drawn is not None:
            latencies.append((drawn, when - drawn))
    return latencies
