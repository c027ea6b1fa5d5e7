"""
Value types of screen sharing and remote input, shared by the agent (which
produces frames and applies input) and the console (which shows frames and
sends input).
"""

import attrs

# Tile encodings: raw RGB bytes, an image file format Pillow reads, or a copy
# of another rectangle of the previous picture (wire.tiles describes each).
ENCODINGS = ("raw", "png", "jpeg", "webp", "copy")
INPUT_KINDS = ("move", "button", "wheel", "key")
BUTTONS = ("left", "middle", "right")
MAX_KEY_NAME = 32


@attrs.frozen
class Monitor:
    """One of the customer's monitors, in virtual-screen pixels."""

    index: int
    left: int
    top: int
    width: int
    height: int
    primary: bool = False


@attrs.frozen
class Tile:
    """A changed rectangle of a frame and its encoded pixels."""

    x: int
    y: int
    width: int
    height: int
    encoding: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")


@attrs.frozen
class Frame:
    """A frame update: the monitor's size and the tiles that changed."""

    monitor: int
    width: int
    height: int
    tiles: tuple[Tile, ...]


@attrs.frozen
class Cursor:
    """Where the pointer is on a monitor, whether it shows, and its shape's name."""

    x: int
    y: int
    visible: bool = True
    shape: str | None = None


@attrs.frozen
class InputEvent:
    """
    One input event from the operator: C{move} (x, y), C{button} (x, y,
    button, pressed), C{wheel} (dx, dy) or C{key} (key, pressed).  Keys are
    one character or a pynput key name (C{ctrl_l}, C{enter}, ...).
    """

    kind: str
    x: int | None = None
    y: int | None = None
    button: str | None = None
    dx: int | None = None
    dy: int | None = None
    key: str | None = None
    pressed: bool | None = None

    def problem(self) -> str | None:
        """What is wrong with this event, or C{None} if it is well formed."""
        needs = {
            "move": ("x", "y"),
            "button": ("x", "y", "button", "pressed"),
            "wheel": ("dx", "dy"),
            "key": ("key", "pressed"),
        }.get(self.kind)
        if needs is None:
            return f"unknown input kind {self.kind!r}"
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            return f"{self.kind} event without {', '.join(missing)}"
        if self.button is not None and self.button not in BUTTONS:
            return f"unknown button {self.button!r}"
        if self.key is not None and not 0 < len(self.key) <= MAX_KEY_NAME:
            return "key name empty or too long"
        return None
