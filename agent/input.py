"""
The operator's input, carried out on the customer's X display with
C{pynput}'s mouse and keyboard controllers (its X11 backend).

Everything here runs on the reactor thread: each call is one or a few
short X requests on a local connection (XTest fake input, a keyboard
mapping change for an unusual character), so it does not need a thread of
its own and the events keep their order.

Characters are typed with XTest, like a real keyboard, and not with
C{XSendEvent} as C{pynput} does by itself: applications may ignore sent
events (they are marked synthetic; xterm and many others do, and
shortcuts handled by the window manager never see them).  A character
comes out exactly as sent, whatever the customer's layout, Shift or Caps
Lock: a character of the layout's first group is its key, with Shift
pressed or released for the moment of the press as that character needs;
any other one (C{ü} on a US layout, C{€}, C{中}, or every character while
another layout group is active) is put on a key code the layout leaves
empty, for as long as it is needed, and that key is pressed.  A layout
change during the session is followed (MappingNotify).  Named keys
(C{ctrl_l}, C{enter}, ...) and modifiers are C{pynput}'s own, already sent
with XTest.
"""

import collections
import os

import Xlib.error
from zope.interface import implementer

from agent.interfaces import IInputSink
from wire import logs
from wire.screen import BUTTONS, Monitor

# The most wheel steps one event may ask for (each is an X button click).
MAX_WHEEL_STEPS = 50


class NoDisplay(RuntimeError):
    """There is no X display to send input to."""


def _keyboard_class():
    """
    C{pynput}'s X11 keyboard controller, typing characters with XTest (see
    the module's docstring).  Built on first use: importing C{pynput} needs
    a display.
    """
    import Xlib.X
    import Xlib.XK
    import Xlib.ext.xtest
    from pynput._util.xorg import display_manager
    from pynput.keyboard import _xorg

    # XKB's group bits in a core state (the group also shows as the
    # modifier bound to Mode_switch for clients that do not use XKB).
    group_bits = 0x6000

    class XTestKeyboard(_xorg.Controller):
        """
        The X11 keyboard controller of C{pynput} (1.8), whose C{_handle}
        carries out characters with XTest on a key of the current layout
        or on a borrowed empty key code; keys with a key symbol of their own
        (the C{Key} members) go through C{pynput} unchanged.
        """

        def __init__(self):
            super().__init__()
            # key symbol -> (borrowed key code, Shift for it), least recently used first
            self._borrowed = collections.OrderedDict()
            # key symbol -> the key code its press went to, until released
            self._down = {}

        def _handle(self, key, is_press):
            if key.vk is not None or key.is_dead:
                return super()._handle(key, is_press)
            keysym = self._key_to_keysym(key)
            if not keysym:
                raise self.InvalidKeyException(key)
            with display_manager(self._display) as dm:
                if is_press:
                    self._press(dm, keysym, key.char)
                else:
                    self._release(dm, keysym, key.char)
            self._emit("_on_fake_event", key, is_press)

        def _press(self, dm, keysym, char):
            self._follow_layout(dm)
            state = dm.screen().root.query_pointer().mask
            keycode, shift = self._key_for(dm, keysym, char, state)
            if shift is not None and state & Xlib.X.LockMask and _case_pair(char):
                shift = not shift  # Caps Lock swaps the case of letters
            toggled = []
            if shift is not None and shift != bool(state & Xlib.X.ShiftMask):
                if shift:
                    toggled = [dm.keysym_to_keycode(Xlib.XK.XK_Shift_L)]
                else:
                    toggled = self._shift_keys_down(dm)
                if not toggled or not all(toggled):
                    raise ValueError("cannot set Shift as this character needs")
            for code in toggled:
                Xlib.ext.xtest.fake_input(dm, Xlib.X.KeyPress if shift else Xlib.X.KeyRelease, code)
            Xlib.ext.xtest.fake_input(dm, Xlib.X.KeyPress, keycode)
            for code in toggled:
                Xlib.ext.xtest.fake_input(dm, Xlib.X.KeyRelease if shift else Xlib.X.KeyPress, code)
            self._down[keysym] = keycode

        def _release(self, dm, keysym, char):
            keycode = self._down.pop(keysym, None)
            if keycode is None:
                # Not pressed through this controller: release where it would be.
                state = dm.screen().root.query_pointer().mask
                keycode, _ = self._key_for(dm, keysym, char, state)
            Xlib.ext.xtest.fake_input(dm, Xlib.X.KeyRelease, keycode)

        def _key_for(self, dm, keysym, char, state):
            """
            The key code to press for C{keysym} and whether Shift must be
            down (C{True}), up (C{False}) or does not matter (C{None}),
            before Caps Lock.  Keys of the layout's first group only: in
            another group (or with Mode_switch down) they would type
            something else.
            """
            if not state & (self.ALT_GR_MASK | group_bits):
                place = self.keyboard_mapping.get(keysym)
                if place is not None and not place[1] & ~Xlib.X.ShiftMask:
                    return place[0], bool(place[1] & Xlib.X.ShiftMask)
            return self._borrow(dm, keysym, char)

        def _borrow(self, dm, keysym, char):
            """
            A key code the layout leaves empty, made to type C{keysym}: a
            letter gets its lower and upper case (Shift and Caps Lock work
            as on any letter key), any other character is put in every
            position.  It stays until another character needs the key code
            (least recently used first, never one that is down) or
            L{restore_layout}.  Returns the key code and the Shift it needs.
            """
            if keysym in self._borrowed:
                self._borrowed.move_to_end(keysym)
                return self._borrowed[keysym]
            first = dm.display.info.min_keycode
            rows = dm.get_keyboard_mapping(first, dm.display.info.max_keycode - first + 1)
            ours = {code for code, _ in self._borrowed.values()}
            free = [first + i for i, row in enumerate(rows) if not any(row) and first + i not in ours]
            if free:
                keycode = free[-1]
            else:
                down = set(self._down.values())
                for code, _ in self._borrowed.values():
                    if code not in down:
                        keycode = code
                        break
                else:
                    raise ValueError("no free key to type this character: release some keys first")
                for old in [k for k, (code, _) in self._borrowed.items() if code == keycode]:
                    del self._borrowed[old]
            width = len(rows[0])
            pair = _case_pair(char)
            symbols = pair and [self._key_to_keysym(_xorg.KeyCode.from_char(c)) for c in pair]
            if symbols and all(symbols) and keysym in symbols and symbols[0] != symbols[1]:
                row = (symbols * width)[:width]
                for symbol, shift in zip(symbols, (False, True)):
                    self._borrowed[symbol] = (keycode, shift)
            else:
                row = [keysym] * width
                self._borrowed[keysym] = (keycode, None)
            dm.change_keyboard_mapping(keycode, [row])
            return self._borrowed[keysym]

        def _follow_layout(self, dm):
            """
            Forget the layout read before if it changed since (the server
            told every client with MappingNotify: the customer switched
            layouts, or a key code was borrowed), and the borrowed key
            codes a new layout took over.
            """
            changed = False
            while dm.pending_events():
                if dm.next_event().type == Xlib.X.MappingNotify:
                    changed = True
            if not changed:
                return
            self._keyboard_mapping = None
            first = dm.display.info.min_keycode
            rows = dm.get_keyboard_mapping(first, dm.display.info.max_keycode - first + 1)
            for symbol, (code, _) in list(self._borrowed.items()):
                if symbol not in rows[code - first]:
                    del self._borrowed[symbol]

        def _shift_keys_down(self, dm):
            """The key codes of the Shift modifier that are down now."""
            keymap = dm.query_keymap()
            shift_codes = dm.get_modifier_mapping()[Xlib.X.ShiftMapIndex]
            return [
                code for code in shift_codes
                if code and keymap[code // 8] & (1 << (code % 8))
            ]

        def restore_layout(self):
            """Give back every borrowed key code (empty again)."""
            with display_manager(self._display) as dm:
                first = dm.display.info.min_keycode
                width = len(dm.get_keyboard_mapping(first, 1)[0])
                for keycode in {code for code, _ in self._borrowed.values()}:
                    dm.change_keyboard_mapping(keycode, [[Xlib.X.NoSymbol] * width])
            self._borrowed.clear()
            self._down.clear()

    return XTestKeyboard


@implementer(IInputSink)
class PynputInput:
    """
    Applies the operator's L{wire.screen.InputEvent}s to the X display
    named by C{DISPLAY}.

    Coordinates: the session core (L{agent.session.AgentSession}) checks
    them against the shared monitor and makes them absolute (virtual-screen
    pixels) before calling L{apply}; that is the default here
    (C{monitor=None}).  Given C{monitor}, a callable returning the
    L{wire.screen.Monitor} shared now, event coordinates are taken as
    relative to it instead: its left/top offset is added and they are kept
    inside it.

    The controllers are made on the first event, once the display is known;
    without one, L{apply} raises L{NoDisplay}.  Every button and key
    pressed is remembered until it is released, so L{release_all} can let
    go of them when control is revoked in the middle of a drag or a
    shortcut.  L{close} also gives back the key codes borrowed for unusual
    characters.

    Called on the reactor thread only (see the module's docstring).
    """

    log = logs.logger(__name__)

    def __init__(self, monitor=None):
        self._monitor = monitor
        self._mouse = None
        self._keyboard = None
        self._keys = None  # pynput.keyboard.Key once loaded
        self._buttons = None  # pynput.mouse.Button once loaded
        self._held_buttons: dict[str, object] = {}
        self._held_keys: dict[str, object] = {}

    # -- IInputSink -----------------------------------------------------------------------------

    def apply(self, event) -> None:
        """
        Carry out one event.

        @raise ValueError: an unknown key name or button, or a character
            that cannot be typed.
        @raise NoDisplay: there is no X display (or it went away).
        """
        self._load()
        try:
            self._apply(event)
        except Xlib.error.ConnectionClosedError as e:
            self._keyboard = self._mouse = None  # a new display may come
            self._held_buttons.clear()
            self._held_keys.clear()
            raise NoDisplay(f"the X display went away: {e}") from e

    def _apply(self, event) -> None:
        if event.kind == "move":
            self._mouse.position = self._place(event.x, event.y)
        elif event.kind == "button":
            if event.button not in BUTTONS:
                raise ValueError(f"unknown button {event.button!r}")
            button = getattr(self._buttons, event.button)
            self._mouse.position = self._place(event.x, event.y)
            if event.pressed:
                self._mouse.press(button)
                self._held_buttons[event.button] = button
            else:
                self._held_buttons.pop(event.button, None)
                self._mouse.release(button)
        elif event.kind == "wheel":
            self._mouse.scroll(_bounded(event.dx), _bounded(event.dy))
        elif event.kind == "key":
            key = self._key(event.key)
            if event.pressed:
                self._touch(key, True)
                self._held_keys[event.key] = key
            else:
                self._held_keys.pop(event.key, None)
                self._touch(key, False)
        else:
            raise ValueError(f"unknown input kind {event.kind!r}")

    def release_all(self) -> None:
        """Release every button and key still pressed, keys last pressed first."""
        if self._keyboard is None:
            return
        keys, self._held_keys = self._held_keys, {}
        buttons, self._held_buttons = self._held_buttons, {}
        for name, key in reversed(list(keys.items())):
            try:
                self._touch(key, False)
            except Exception as e:
                self.log.warn("could not release a key: {problem}", problem=str(e))
        for name, button in buttons.items():
            try:
                self._mouse.release(button)
            except Exception as e:
                self.log.warn("could not release the {button} button: {problem}", button=name, problem=str(e))

    # -- the rest ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Release what is held, give back borrowed key codes and close the X connections."""
        if self._keyboard is None:
            return
        try:
            self.release_all()
            self._keyboard.restore_layout()
        except Exception as e:
            self.log.warn("could not tidy the keyboard up: {problem}", problem=str(e))
        for controller in (self._keyboard, self._mouse):
            display = controller.__dict__.pop("_display", None)  # pynput's __del__ closes it otherwise
            if display is not None:
                try:
                    display.close()
                except Exception:
                    pass
        self._keyboard = self._mouse = None

    def _load(self) -> None:
        if self._keyboard is not None:
            return
        display = os.environ.get("DISPLAY")
        if not display:
            raise NoDisplay("there is no X display to control (DISPLAY is not set)")
        try:
            from pynput import keyboard, mouse
            from pynput.mouse import _xorg as mouse_xorg

            keyboard_controller = _keyboard_class()()
            mouse_controller = mouse_xorg.Controller()
        except Exception as e:
            raise NoDisplay(f"cannot control the X display {display}: {str(e).splitlines()[0]}") from e
        self._keys, self._buttons = keyboard.Key, mouse.Button
        self._keyboard, self._mouse = keyboard_controller, mouse_controller

    def _place(self, x: int, y: int) -> tuple[int, int]:
        if self._monitor is None:
            return x, y
        monitor: Monitor = self._monitor()
        x = min(max(x, 0), monitor.width - 1)
        y = min(max(y, 0), monitor.height - 1)
        return monitor.left + x, monitor.top + y

    def _key(self, name: str):
        """The C{pynput} key for an event's key: a character or a C{Key} member's name."""
        from pynput.keyboard import _CONTROL_CODES

        if len(name) == 1:
            return _CONTROL_CODES.get(name, name)
        try:
            return self._keys[name]
        except KeyError:
            raise ValueError(f"unknown key name {name!r}") from None

    def _touch(self, key, pressed: bool) -> None:
        from pynput._util.xorg import X11Error

        try:
            self._keyboard.touch(key, pressed)
        except (self._keyboard.InvalidKeyException, X11Error) as e:
            raise ValueError(f"this key cannot be typed here: {e}") from None


def _case_pair(char: str) -> tuple[str, str] | None:
    """A letter's lower and upper case (one character each), or C{None}."""
    lower, upper = char.lower(), char.upper()
    if lower != upper and len(lower) == 1 and len(upper) == 1:
        return lower, upper
    return None


def _bounded(steps: int) -> int:
    return max(-MAX_WHEEL_STEPS, min(MAX_WHEEL_STEPS, steps))
