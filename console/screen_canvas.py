"""
The customer's screen in the session window: frames are decoded and
scaled off the Tk thread by a L{ScreenDecoder} (its own thread, holding the
full-size picture), which hands the Tk thread only the changed region,
ready at the size shown; the L{ScreenCanvas} pastes it into one Tk photo
image, draws the customer's pointer, and in control mode turns the
operator's mouse and keys into L{InputEvent}s in the monitor's pixels.
"""

import math
import queue
import threading
import tkinter as tk
from tkinter import ttk

import attrs
from PIL import Image, ImageTk

from console import keys
from wire import logs, tiles
from wire.screen import Frame, InputEvent

# Pointer shape drawn where the customer's pointer is (points of an arrow).
ARROW = ((0, 0), (0, 17), (4, 13), (7, 20), (10, 19), (7, 12), (12, 12))
BACKGROUND = "#2b2b2b"
CONTROL_EDGE = "#c62828"
FOCUS_EDGE = "#1565c0"
RESAMPLE = Image.Resampling.BILINEAR
_STOP = object()


@attrs.frozen
class Update:
    """
    A part of the picture, ready to paste (from the decoder thread to the
    Tk thread).  C{image} is C{None} when nothing is to be drawn (a frame
    that failed to decode, or no picture yet); C{frames} is how many
    received frames it completes (each gives the agent one credit back).
    """

    generation: int
    monitor: int
    source_size: tuple[int, int]
    display_size: tuple[int, int]
    at: tuple[int, int]
    image: Image.Image | None
    frames: int
    problem: str | None = None

    @property
    def scale(self) -> tuple[float, float]:
        """Shown pixels per monitor pixel, horizontally and vertically."""
        return self.display_size[0] / self.source_size[0], self.display_size[1] / self.source_size[1]


def fit(source: tuple[int, int], area: tuple[int, int] | None) -> tuple[int, int]:
    """The size to show a C{source} picture at in C{area} (never enlarged; C{None}: 1:1)."""
    width, height = source
    if area is None:
        return source
    scale = min(area[0] / width, area[1] / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


class ScreenDecoder:
    """
    Decodes frames in a thread of its own.  C{deliver(update)} is called on
    that thread (it hands the L{Update} to the Tk thread); frames come from
    any thread through L{submit}, the size to show through L{show_in}.
    """

    log = logs.logger(__name__)

    def __init__(self, deliver):
        self.deliver = deliver
        self.canvas: Image.Image | None = None
        self.monitor = -1
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._generation = 0
        self._area: tuple[int, int] | None = None
        self._expected: int | None = None
        self._shown: tuple[int, tuple[int, int]] | None = None
        self._thread = threading.Thread(target=self._run, name="screen-decoder", daemon=True)
        self._thread.start()

    def submit(self, frame: Frame) -> None:
        """A frame to decode (any thread)."""
        self._queue.put(frame)

    def expect(self, monitor: int | None) -> None:
        """
        Draw frames of C{monitor} only (C{None}: of any); others, still on
        their way after a switch, are only counted.
        """
        self._queue.put(("expect", monitor))

    def show_in(self, generation: int, area: tuple[int, int] | None) -> None:
        """From now on show the picture fitted into C{area} (C{None}: 1:1), as C{generation}."""
        self._queue.put(("view", generation, area))

    def stop(self) -> None:
        """End the thread (what is queued is dropped)."""
        self._queue.put(_STOP)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                return
            try:
                self._work(batch)
            except Exception:
                self.log.failure("the screen decoder failed")

    def _work(self, batch) -> None:
        frames, problem, changed, full = 0, None, None, False
        for item in batch:
            if isinstance(item, tuple) and item[0] == "expect":
                self._expected = item[1]
                continue
            if isinstance(item, tuple):
                _, self._generation, self._area = item
                full = True
                continue
            frames += 1
            if self._expected is not None and item.monitor != self._expected:
                continue
            try:
                if item.monitor != self.monitor:
                    self.canvas, self.monitor, full = None, item.monitor, True
                before = self.canvas.size if self.canvas is not None else None
                self.canvas = tiles.decode(item, self.canvas)
                if self.canvas.size != before:
                    full = True
                for t in item.tiles:
                    box = (t.x, t.y, t.x + t.width, t.y + t.height)
                    changed = box if changed is None else _union(changed, box)
            except tiles.TileError as e:
                problem = str(e)
        if self.canvas is None:
            self.deliver(Update(self._generation, self.monitor, (1, 1), (1, 1), (0, 0), None, frames, problem))
            return
        source = self.canvas.size
        shown = fit(source, self._area)
        if self._shown != (self._generation, shown):
            self._shown = (self._generation, shown)
            full = True
        if full:
            changed = (0, 0) + source
        if changed is None:
            self.deliver(Update(self._generation, self.monitor, source, shown, (0, 0), None, frames, problem))
            return
        at, image = self._region(changed, source, shown)
        self.deliver(Update(self._generation, self.monitor, source, shown, at, image, frames, problem))

    def _region(self, box, source, shown):
        """The part of the shown picture that C{box} (monitor pixels) changed: its place and pixels."""
        if shown == source:
            return box[:2], self.canvas.crop(box)
        sx, sy = shown[0] / source[0], shown[1] / source[1]
        # One shown pixel more on each side: the filter reaches that far.
        x0, y0 = max(0, math.floor(box[0] * sx) - 1), max(0, math.floor(box[1] * sy) - 1)
        x1, y1 = min(shown[0], math.ceil(box[2] * sx) + 1), min(shown[1], math.ceil(box[3] * sy) + 1)
        if (x0, y0, x1, y1) == (0, 0) + shown:
            return (0, 0), self.canvas.resize(shown, RESAMPLE)
        # The same pixels as that part of the whole picture resized.
        part = self.canvas.resize((x1 - x0, y1 - y0), RESAMPLE, box=(x0 / sx, y0 / sy, x1 / sx, y1 / sy))
        return (x0, y0), part


def _union(a, b):
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


class ScreenCanvas(ttk.Frame):
    """
    The picture, scaled to fit or 1:1 with scroll bars.  C{send(event)}
    forwards an L{InputEvent} (Tk thread); C{frames_shown(count)} says that
    frames were drawn; C{menu_key()} is the operator's menu key (F8).
    Input is forwarded only while L{controlling} is set.
    """

    def __init__(self, parent, send, frames_shown, menu_key=lambda: None):
        super().__init__(parent)
        self.send = send
        self.frames_shown = frames_shown
        self.menu_key = menu_key
        self.fitting = True
        self.controlling = False
        self.generation = 0
        self.decoder: ScreenDecoder | None = None
        self.photo: tk.PhotoImage | None = None
        self.update_shown: Update | None = None  # the last update drawn: sizes and scale
        self.origin = (0, 0)
        self.frames_drawn = 0
        self.problem: str | None = None
        self._held_keys: dict[int, str] = {}
        self._held_buttons: set[str] = set()
        self._move: tuple[int, int] | None = None
        self._moving = None
        self._configuring = None
        self._cursor_at: tuple[int, int, bool] | None = None

        self.canvas = tk.Canvas(self, background=BACKGROUND, highlightthickness=2, highlightbackground=BACKGROUND,
                                highlightcolor=FOCUS_EDGE, takefocus=1, cursor="crosshair")
        self.xbar = ttk.Scrollbar(self, orient="horizontal", command=self.canvas.xview)
        self.ybar = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.canvas.configure(xscrollcommand=self.xbar.set, yscrollcommand=self.ybar.set)
        self.canvas.grid(row=0, column=0, sticky="nsew")
        self.rowconfigure(0, weight=1)
        self.columnconfigure(0, weight=1)
        self.image_item = self.canvas.create_image(0, 0, anchor="nw")
        self.pointer = self.canvas.create_polygon(ARROW, fill="white", outline="black", state="hidden")
        self.message = self.canvas.create_text(20, 20, anchor="nw", fill="#dddddd", font=("TkDefaultFont", 12),
                                               text="The customer's screen shows here once they allow viewing.")

        self.canvas.bind("<Configure>", self._configured)
        self.canvas.bind("<Motion>", self._motion)
        self.canvas.bind("<ButtonPress>", self._button_press)
        self.canvas.bind("<ButtonRelease>", self._button_release)
        self.canvas.bind("<MouseWheel>", self._wheel)
        self.canvas.bind("<KeyPress>", self._key_press)
        self.canvas.bind("<KeyRelease>", self._key_release)
        self.canvas.bind("<FocusOut>", lambda event: self.release_all())
        self.bind("<Destroy>", self._destroyed)

    # -- the picture ---------------------------------------------------------------------------------

    def start_decoder(self, deliver) -> ScreenDecoder:
        """Start the decoding thread; C{deliver(update)} must bring updates to L{show} on the Tk thread."""
        self.decoder = ScreenDecoder(deliver)
        self.refresh_view()
        return self.decoder

    def set_message(self, text: str) -> None:
        """A line over the picture (empty: none)."""
        self.canvas.itemconfigure(self.message, text=text)
        self.canvas.tag_raise(self.message)

    def set_fitting(self, fitting: bool) -> None:
        """Scale to fit (C{True}) or show 1:1 with scroll bars."""
        self.fitting = fitting
        if fitting:
            self.xbar.grid_remove()
            self.ybar.grid_remove()
        else:
            self.xbar.grid(row=1, column=0, sticky="ew")
            self.ybar.grid(row=0, column=1, sticky="ns")
        self.refresh_view()

    def _configured(self, event) -> None:
        self._place()
        if self.fitting:
            if self._configuring is not None:
                self.after_cancel(self._configuring)
            self._configuring = self.after(80, self.refresh_view)

    def refresh_view(self) -> None:
        """Have the decoder send the whole picture again, at the size that fits now."""
        self._configuring = None
        if self.decoder is None:
            return
        self.generation += 1
        area = (max(1, self.canvas.winfo_width() - 4), max(1, self.canvas.winfo_height() - 4)) if self.fitting else None
        self.decoder.show_in(self.generation, area)

    def show(self, update: Update) -> None:
        """Tk thread: draw a decoded update (or only count its frames when it is out of date)."""
        self.problem = update.problem or self.problem
        if update.generation == self.generation and update.image is not None:
            if self.photo is None or (self.photo.width(), self.photo.height()) != update.display_size:
                self.photo = tk.PhotoImage(master=self.canvas, width=update.display_size[0],
                                           height=update.display_size[1])
                self.canvas.itemconfigure(self.image_item, image=self.photo)
                self.set_message("")
            region = ImageTk.PhotoImage(update.image, master=self.canvas)
            self.photo.tk.call(str(self.photo), "copy", str(region), "-to", *update.at)
            first = self.update_shown is None
            self.update_shown = update
            if first or update.at == (0, 0) and update.image.size == update.display_size:
                self._place()
        if update.frames:
            self.frames_drawn += update.frames
            self.frames_shown(update.frames)

    def _place(self) -> None:
        """Centre the picture in the canvas, and set the scrolling region."""
        width, height = self.canvas.winfo_width() - 4, self.canvas.winfo_height() - 4
        shown = self.update_shown.display_size if self.update_shown else (0, 0)
        self.origin = (max(0, (width - shown[0]) // 2), max(0, (height - shown[1]) // 2))
        self.canvas.coords(self.image_item, *self.origin)
        self.canvas.configure(scrollregion=(0, 0, max(width, shown[0]), max(height, shown[1])))
        if self._cursor_at is not None:
            self.move_pointer(*self._cursor_at)

    def clear(self, message: str) -> None:
        """Forget the picture (sharing stopped): show C{message} instead."""
        self.photo = None
        self.update_shown = None
        self.canvas.itemconfigure(self.image_item, image="")
        self.canvas.itemconfigure(self.pointer, state="hidden")
        self.set_message(message)

    def move_pointer(self, x: int, y: int, visible: bool) -> None:
        """Draw the customer's pointer at (x, y) of the monitor."""
        self._cursor_at = (x, y, visible)
        if self.update_shown is None:
            return
        sx, sy = self.update_shown.scale
        px, py = self.origin[0] + x * sx, self.origin[1] + y * sy
        self.canvas.coords(self.pointer, *[c for dx, dy in ARROW for c in (px + dx, py + dy)])
        self.canvas.itemconfigure(self.pointer, state="normal" if visible else "hidden")
        self.canvas.tag_raise(self.pointer)

    # -- input -------------------------------------------------------------------------------

    def set_controlling(self, controlling: bool) -> None:
        """Forward input from now on (or stop, releasing what is held)."""
        if not controlling:
            self.release_all()
        self.controlling = controlling
        # A red frame round the picture while the operator's input goes to the customer.
        edge = CONTROL_EDGE if controlling else BACKGROUND
        self.canvas.configure(cursor="arrow" if controlling else "crosshair", highlightbackground=edge,
                              highlightcolor=CONTROL_EDGE if controlling else FOCUS_EDGE)
        if controlling:
            self.canvas.focus_set()

    def monitor_point(self, x: int, y: int) -> tuple[int, int] | None:
        """The monitor pixel under the canvas widget's point (x, y), or C{None} outside the picture."""
        shown = self.update_shown
        if shown is None:
            return None
        cx, cy = self.canvas.canvasx(x) - self.origin[0], self.canvas.canvasy(y) - self.origin[1]
        if not (0 <= cx < shown.display_size[0] and 0 <= cy < shown.display_size[1]):
            return None
        sx, sy = shown.scale
        width, height = shown.source_size
        return min(int(cx / sx), width - 1), min(int(cy / sy), height - 1)

    def _motion(self, event) -> None:
        if not self.controlling:
            return
        point = self.monitor_point(event.x, event.y)
        if point is None:
            return
        self._move = point
        if self._moving is None:
            # At most one move per 15 ms: the latest position wins.
            self._moving = self.after(15, self._flush_move)

    def _flush_move(self) -> None:
        self._moving = None
        if self._move is not None and self.controlling:
            self.send(InputEvent("move", x=self._move[0], y=self._move[1]))
        self._move = None

    def _button_press(self, event):
        self.canvas.focus_set()
        if not self.controlling:
            return None
        if event.num in (4, 5, 6, 7):
            dx, dy = {4: (0, 1), 5: (0, -1), 6: (-1, 0), 7: (1, 0)}[event.num]
            self.send(InputEvent("wheel", dx=dx, dy=dy))
            return "break"
        button = {1: "left", 2: "middle", 3: "right"}.get(event.num)
        point = self.monitor_point(event.x, event.y)
        if button is None or point is None:
            return "break"
        self._move = None
        self._held_buttons.add(button)
        self.send(InputEvent("button", x=point[0], y=point[1], button=button, pressed=True))
        return "break"

    def _button_release(self, event):
        if not self.controlling:
            return None
        button = {1: "left", 2: "middle", 3: "right"}.get(event.num)
        if button not in self._held_buttons:
            return "break"
        self._held_buttons.discard(button)
        point = self.monitor_point(event.x, event.y)
        if point is None and self.update_shown is not None:
            # Released outside the picture: at its nearest edge.
            width, height = self.update_shown.source_size
            sx, sy = self.update_shown.scale
            cx, cy = self.canvas.canvasx(event.x) - self.origin[0], self.canvas.canvasy(event.y) - self.origin[1]
            point = (min(max(int(cx / sx), 0), width - 1), min(max(int(cy / sy), 0), height - 1))
        if point is not None:
            self.send(InputEvent("button", x=point[0], y=point[1], button=button, pressed=False))
        return "break"

    def _wheel(self, event):
        if not self.controlling:
            return None
        steps = max(1, abs(event.delta) // 120) if event.delta else 0
        if steps:
            self.send(InputEvent("wheel", dx=0, dy=steps if event.delta > 0 else -steps))
        return "break"

    def _key_press(self, event):
        if event.keysym == keys.MENU_KEY:
            self.menu_key()
            return "break"
        if not self.controlling:
            return None
        key = keys.remote_key(event.keysym, event.char)
        if key is not None:
            self._held_keys[event.keycode] = key
            self.send(InputEvent("key", key=key, pressed=True))
        return "break"

    def _key_release(self, event):
        if not self.controlling:
            return None
        key = self._held_keys.pop(event.keycode, None)
        if key is not None:
            self.send(InputEvent("key", key=key, pressed=False))
        return "break"

    def release_all(self) -> None:
        """Let go of every key and button the customer's side holds for us."""
        for key in reversed(list(self._held_keys.values())):
            self.send(InputEvent("key", key=key, pressed=False))
        self._held_keys.clear()
        for button in self._held_buttons:
            x, y = self._cursor_at[:2] if self._cursor_at else (0, 0)
            self.send(InputEvent("button", x=x, y=y, button=button, pressed=False))
        self._held_buttons.clear()

    def _destroyed(self, event) -> None:
        if event.widget is self and self.decoder is not None:
            self.decoder.stop()
            self.decoder = None
