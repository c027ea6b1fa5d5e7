"""
The operator's keys, as the customer's side wants them: Tk key symbols
mapped to C{pynput} key names for remote control (a printable character
is sent as itself), the key combinations the console's own desktop would
catch, and the bytes a terminal sends for each key.
"""

import attrs

# Tk key symbols (X11 names) → pynput Key names, for keys that are not a
# character of their own.
PYNPUT_NAMES = {
    "Control_L": "ctrl_l", "Control_R": "ctrl_r",
    "Shift_L": "shift", "Shift_R": "shift_r",
    "Alt_L": "alt_l", "Alt_R": "alt_r", "Meta_L": "alt_l", "Meta_R": "alt_r",
    "ISO_Level3_Shift": "alt_gr", "Mode_switch": "alt_gr",
    "Super_L": "cmd", "Super_R": "cmd_r", "Hyper_L": "cmd", "Hyper_R": "cmd_r",
    "Return": "enter", "KP_Enter": "enter", "BackSpace": "backspace", "Tab": "tab", "ISO_Left_Tab": "tab",
    "Escape": "esc", "space": "space", "Delete": "delete", "KP_Delete": "delete",
    "Insert": "insert", "KP_Insert": "insert",
    "Home": "home", "KP_Home": "home", "End": "end", "KP_End": "end",
    "Prior": "page_up", "KP_Prior": "page_up", "Next": "page_down", "KP_Next": "page_down",
    "Left": "left", "KP_Left": "left", "Right": "right", "KP_Right": "right",
    "Up": "up", "KP_Up": "up", "Down": "down", "KP_Down": "down",
    "Caps_Lock": "caps_lock", "Num_Lock": "num_lock", "Scroll_Lock": "scroll_lock",
    "Print": "print_screen", "Pause": "pause", "Menu": "menu",
    **{f"F{n}": f"f{n}" for n in range(1, 21)},
}

# The operator's key that opens the menu of keys instead of going to the
# customer (like a VNC viewer's F8), even while controlling.
MENU_KEY = "F8"


def remote_key(keysym: str, char: str) -> str | None:
    """
    What to send the customer for a Tk key event (C{event.keysym},
    C{event.char}): a pynput key name, the character typed, or C{None}
    for a key that means nothing there.  With Ctrl held Tk gives a control
    character; the key's own character is sent instead (Ctrl is sent as a
    key of its own).
    """
    name = PYNPUT_NAMES.get(keysym)
    if name is not None:
        return name
    if len(char) == 1 and char.isprintable():
        return char
    if len(keysym) == 1 and keysym.isprintable():
        return keysym
    return None


@attrs.frozen
class Combination:
    """A key combination for the "Send keys" menu: its label and the keys, pressed in order."""

    label: str
    keys: tuple[str, ...]

    def events(self) -> list[tuple[str, bool]]:
        """(key, pressed) in order: every key down, then up in reverse order."""
        return [(k, True) for k in self.keys] + [(k, False) for k in reversed(self.keys)]


COMBINATIONS = (
    Combination("Ctrl+Alt+Del", ("ctrl_l", "alt_l", "delete")),
    Combination("Alt+Tab", ("alt_l", "tab")),
    Combination("Alt+F4", ("alt_l", "f4")),
    Combination("Ctrl+Esc", ("ctrl_l", "esc")),
    Combination("Super (Windows key)", ("cmd",)),
    Combination("Print Screen", ("print_screen",)),
    Combination("Ctrl+Alt+Backspace", ("ctrl_l", "alt_l", "backspace")),
    Combination("F8", ("f8",)),
)


# -- a terminal's keys ------------------------------------------------------------------------

_CSI = "\x1b["
# Keys whose sequence does not depend on the cursor key mode.
TERMINAL_KEYS = {
    "Return": "\r", "KP_Enter": "\r", "BackSpace": "\x7f", "Tab": "\t", "ISO_Left_Tab": _CSI + "Z",
    "Escape": "\x1b", "Insert": _CSI + "2~", "Delete": _CSI + "3~", "KP_Delete": _CSI + "3~",
    "Prior": _CSI + "5~", "Next": _CSI + "6~", "KP_Prior": _CSI + "5~", "KP_Next": _CSI + "6~",
    "F1": "\x1bOP", "F2": "\x1bOQ", "F3": "\x1bOR", "F4": "\x1bOS",
    "F5": _CSI + "15~", "F6": _CSI + "17~", "F7": _CSI + "18~", "F8": _CSI + "19~",
    "F9": _CSI + "20~", "F10": _CSI + "21~", "F11": _CSI + "23~", "F12": _CSI + "24~",
}
# Cursor keys: the final letter; CSI in normal mode, SS3 in application mode (DECCKM).
CURSOR_KEYS = {
    "Up": "A", "Down": "B", "Right": "C", "Left": "D", "Home": "H", "End": "F",
    "KP_Up": "A", "KP_Down": "B", "KP_Right": "C", "KP_Left": "D", "KP_Home": "H", "KP_End": "F",
}
# Tk's modifier bits in C{event.state}.
SHIFT, CONTROL, ALT = 0x1, 0x4, 0x8


def terminal_bytes(keysym: str, char: str, state: int, application_cursor: bool = False) -> bytes | None:
    """
    The bytes an xterm-like terminal sends for a key (C{None}: nothing,
    e.g. a lone modifier).  Ctrl+letter is its control character, Alt
    prefixes ESC, cursor keys follow the application cursor mode, and
    modified cursor keys carry xterm's modifier parameter.
    """
    modifier = 1 + (1 if state & SHIFT else 0) + (2 if state & ALT else 0) + (4 if state & CONTROL else 0)
    if keysym in CURSOR_KEYS:
        final = CURSOR_KEYS[keysym]
        if modifier > 1:
            return f"{_CSI}1;{modifier}{final}".encode()
        return (("\x1bO" if application_cursor else _CSI) + final).encode()
    if keysym in TERMINAL_KEYS:
        sequence = TERMINAL_KEYS[keysym]
        if keysym == "BackSpace" and state & CONTROL:
            sequence = "\x08"
        return (("\x1b" if state & ALT else "") + sequence).encode()
    if state & CONTROL:
        control = _control_character(keysym, char)
        if control is not None:
            return (("\x1b" if state & ALT else "") + control).encode()
    if char and (char.isprintable() or char in "\x1b\x7f" or ord(char) < 0x20):
        return (("\x1b" if state & ALT else "") + char).encode("utf-8")
    return None


def _control_character(keysym: str, char: str) -> str | None:
    """The control character of Ctrl with a key (Ctrl+C → ETX, Ctrl+Space → NUL, Ctrl+[ → ESC...)."""
    if len(char) == 1 and ord(char) < 0x20:
        return char
    base = keysym if len(keysym) == 1 else {"space": " ", "bracketleft": "[", "backslash": "\\",
                                              "bracketright": "]", "asciicircum": "^", "underscore": "_",
                                              "at": "@", "slash": "_", "question": "?"}.get(keysym)
    if base is None:
        return None
    if base == "?":
        return "\x7f"
    code = ord(base.upper())
    if 0x40 <= code <= 0x5F:
        return chr(code - 0x40)
    if base == " ":
        return "\x00"
    return None
