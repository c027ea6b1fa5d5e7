"""
Replay of a recording (L{console.recording}).

  - L{Player}, pure logic on a clock (C{seconds()} and C{callLater}, e.g.
    C{twisted.internet.task.Clock} in tests or L{TkClock} in the window):
    play, pause, speed 0.5–4×, and seek.  A seek starts from the nearest
    of three pictures: the one shown now (when it is before the target),
    the last keyframe before the target, or the last frame before it that
    repaints everything; it never decodes from the start when one of them
    is nearer.  C{decoded} counts the frames it decoded.
  - L{ReplayWindow}, a thin Tk window on a L{Player}: the picture scaled
    to fit, play/pause, a seek slider, the speed, the chat and events up
    to the current time, and export to a video file (in a thread).
"""

import bisect
import time

from PIL import Image, ImageDraw

from wire import tiles as wt
from wire.timers import cancel

SPEEDS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
MIN_SPEED, MAX_SPEED = 0.5, 4.0
# Decoding a keyframe's PNG costs about as much as this many small frames.
KEYFRAME_COST = 3

# The pointer drawn over replayed and exported pictures: an arrow, tip at (0, 0).
POINTER = [(0, 0), (0, 17), (4, 13), (7, 20), (10, 19), (7, 12), (12, 12)]


def with_pointer(picture: Image.Image, cursor) -> Image.Image:
    """A copy of C{picture} with an arrow at C{cursor} (a L{wire.screen.Cursor}) if it shows."""
    if cursor is None or not cursor.visible:
        return picture
    if not (-20 < cursor.x < picture.width and -20 < cursor.y < picture.height):
        return picture
    out = picture.copy()
    ImageDraw.Draw(out).polygon([(cursor.x + x, cursor.y + y) for x, y in POINTER], fill="white", outline="black")
    return out


class Player:
    """
    Plays a L{console.recording.Recording} on C{clock}.  C{show(picture)}
    is called whenever the picture changes (an RGB image, valid until the
    next call); C{finished()} when playing reaches the end.
    """

    def __init__(self, recording, clock, show=lambda picture: None, finished=lambda: None):
        self.recording = recording
        self.clock = clock
        self._show = show
        self._finished = finished
        self.speed = 1.0
        self.playing = False
        self.decoded = 0  # frames decoded (for tests and statistics)
        self.keyframes_used = 0
        self._applied: int | None = None  # the picture is the one after this many frames
        self._canvas: Image.Image | None = None
        self._position = 0.0  # while paused; while playing, at _started (clock time)
        self._started = 0.0
        self._timer = None
        self._keyframe_counts = [k.frames for k in recording.keyframes]
        self._full = [i for i, ref in enumerate(recording.frames) if ref.full]

    @property
    def duration(self) -> float:
        return self.recording.duration

    @property
    def position(self) -> float:
        """Seconds from the start of the recording."""
        if not self.playing:
            return self._position
        return min(self._position + (self.clock.seconds() - self._started) * self.speed, self.duration)

    @property
    def picture(self) -> Image.Image | None:
        """The picture at the current position (C{None} before the first frame)."""
        return self._canvas

    def cursor(self):
        """The pointer at the current position, or C{None}."""
        return self.recording.cursor_at(self.position)

    def chat_until(self, at: float | None = None):
        """The chat records up to C{at} (default: now)."""
        at = self.position if at is None else at
        return self.recording.chat[: bisect.bisect_right([c.at for c in self.recording.chat], at)]

    def events_until(self, at: float | None = None):
        """The event records up to C{at} (default: now)."""
        at = self.position if at is None else at
        return self.recording.events[: bisect.bisect_right([e.at for e in self.recording.events], at)]

    # -- controls -----------------------------------------------------------------------

    def play(self) -> None:
        """Play from the current position (from the start if at the end)."""
        if self.playing:
            return
        if self._position >= self.duration:
            self.seek(0.0)
        self.playing = True
        self._started = self.clock.seconds()
        self._tick()

    def pause(self) -> None:
        """Stop at the current position."""
        if not self.playing:
            return
        self._position = self.position
        self.playing = False
        cancel(self._timer)
        self._timer = None

    def set_speed(self, speed: float) -> None:
        """Play at C{speed} times real time (0.5 to 4)."""
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be from {MIN_SPEED} to {MAX_SPEED}")
        if self.playing:
            self._position, self._started = self.position, self.clock.seconds()
        self.speed = speed
        if self.playing:
            self._schedule()

    def seek(self, at: float) -> None:
        """Show the picture at C{at} seconds (clamped to the recording) and go on from there."""
        at = min(max(at, 0.0), self.duration)
        self._position, self._started = at, self.clock.seconds()
        self._go_to(self.recording.frames_until(at))
        if self.playing:
            self._schedule()

    # -- internals ------------------------------------------------------------------------

    def _tick(self) -> None:
        self._timer = None
        position = self.position
        self._go_to(self.recording.frames_until(position))
        if position >= self.duration:
            self._position = self.duration
            self.playing = False
            self._finished()
            return
        self._schedule()

    def _schedule(self) -> None:
        cancel(self._timer)
        times = self.recording.frame_times
        applied = self._applied or 0
        target = times[applied] if applied < len(times) else self.duration
        delay = max((target - self.position) / self.speed, 0.0)
        self._timer = self.clock.callLater(delay, self._tick)

    def _go_to(self, count: int) -> None:
        """Make the picture the one after the first C{count} frames, from the nearest start."""
        if count == self._applied:
            return
        # Candidates: (cost, start) where start is "current", a keyframe or a full frame.
        options = []
        if self._applied is not None and self._applied <= count:
            options.append((count - self._applied, "current", None))
        k = bisect.bisect_right(self._keyframe_counts, count) - 1
        if k >= 0:
            options.append((count - self._keyframe_counts[k] + KEYFRAME_COST, "keyframe", self.recording.keyframes[k]))
        f = bisect.bisect_left(self._full, count) - 1  # a full frame among the first `count`
        if f >= 0:
            options.append((count - self._full[f], "full", self._full[f]))
        if not self._keyframe_counts or self._keyframe_counts[0] > 0:
            # (A recording started in mid-session begins with a keyframe: not from black.)
            options.append((count, "start", None))
        _cost, how, where = min(options, key=lambda o: o[0])
        if how == "keyframe":
            self._canvas = self.recording.keyframe(where).picture()
            self._applied = where.frames
            self.keyframes_used += 1
        elif how == "full":
            self._canvas, self._applied = None, where
        elif how == "start":
            self._canvas, self._applied = None, 0
        while self._applied < count:
            frame = self.recording.frame(self._applied)
            self._canvas = wt.decode(frame, self._canvas)
            self.decoded += 1
            self._applied += 1
        if self._canvas is not None:
            self._show(self._canvas)


# -- Tk --------------------------------------------------------------------------------------


class _TkCall:
    def __init__(self, widget, delay, function, args):
        self._widget = widget
        self._called = False
        self._id = widget.after(max(int(delay * 1000), 1), self._run, function, args)

    def _run(self, function, args):
        self._called = True
        function(*args)

    def active(self) -> bool:
        return not self._called and self._id is not None

    def cancel(self) -> None:
        if self.active():
            self._widget.after_cancel(self._id)
            self._id = None


class TkClock:
    """C{seconds()} and C{callLater()} on a Tk widget's C{after}, for a L{Player} on the Tk thread."""

    def __init__(self, widget):
        self._widget = widget

    def seconds(self) -> float:
        return time.monotonic()

    def callLater(self, delay, function, *args):
        return _TkCall(self._widget, delay, function, args)


def _clock_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class ReplayWindow:
    """
    A window replaying the recording at C{path} (Tk thread only).  The
    picture is scaled to fit; the slider seeks (when released, or every
    0.1 s while dragged); export runs in a thread.
    """

    def __init__(self, master, path: str):
        import tkinter as tk
        from tkinter import ttk

        from console.recording import Recording

        self.recording = Recording(path)
        self.top = tk.Toplevel(master)
        self.top.title(f"Replay — {path.rsplit('/', 1)[-1]}")
        self.top.geometry("1024x700")
        self.canvas = tk.Canvas(self.top, background="black", highlightthickness=0)
        self.canvas.grid(row=0, column=0, columnspan=6, sticky="nsew")
        self.side = tk.Text(self.top, width=36, state="disabled", wrap="word")
        self.side.grid(row=0, column=6, sticky="ns")
        self.play_button = ttk.Button(self.top, text="Play", width=7, command=self.toggle)
        self.play_button.grid(row=1, column=0, padx=4, pady=4)
        self.slider_value = tk.DoubleVar(value=0.0)
        self.slider = ttk.Scale(self.top, from_=0.0, to=max(self.recording.duration, 0.001),
                                variable=self.slider_value, command=self._slid)
        self.slider.grid(row=1, column=1, sticky="ew", padx=4)
        self.slider.bind("<ButtonPress-1>", lambda e: setattr(self, "_dragging", True))
        self.slider.bind("<ButtonRelease-1>", self._released)
        self.time_label = ttk.Label(self.top, text="0:00 / " + _clock_text(self.recording.duration), width=18)
        self.time_label.grid(row=1, column=2, padx=4)
        ttk.Label(self.top, text="Speed").grid(row=1, column=3)
        self.speed = tk.StringVar(value="1×")
        speed = ttk.Combobox(self.top, textvariable=self.speed, width=5, state="readonly",
                             values=[f"{s:g}×" for s in SPEEDS])
        speed.grid(row=1, column=4, padx=4)
        speed.bind("<<ComboboxSelected>>", lambda e: self.player.set_speed(float(self.speed.get().rstrip("×"))))
        self.export_button = ttk.Button(self.top, text="Export…", command=self.export)
        self.export_button.grid(row=1, column=5, padx=4)
        self.status = ttk.Label(self.top, text=self._status_text())
        self.status.grid(row=2, column=0, columnspan=7, sticky="w", padx=4)
        self.top.columnconfigure(1, weight=1)
        self.top.rowconfigure(0, weight=1)
        self._photo = None
        self._dragging = False
        self._pending_seek: float | None = None
        self._side_count = -1
        self._job = None
        self.player = Player(self.recording, TkClock(self.top), show=lambda picture: self._draw(),
                             finished=lambda: self.play_button.configure(text="Play"))
        self.canvas.bind("<Configure>", lambda e: self._draw())
        self.player.seek(0.0)
        self._refresh()

    def _status_text(self) -> str:
        r = self.recording
        note = "" if r.complete else f" — the recording did not end normally ({r.damaged or 'cut short'})"
        return f"{len(r.frames)} frames, {len(r.chat)} chat messages, {len(r.events)} events{note}"

    def toggle(self) -> None:
        """Play or pause."""
        if self.player.playing:
            self.player.pause()
            self.play_button.configure(text="Play")
        else:
            self.player.play()
            self.play_button.configure(text="Pause")

    def _slid(self, value) -> None:
        self._pending_seek = float(value)
        if not self._dragging:
            self._seek_now()

    def _released(self, event) -> None:
        self._dragging = False
        self._seek_now()

    def _seek_now(self) -> None:
        if self._pending_seek is not None:
            self.player.seek(self._pending_seek)
            self._pending_seek = None
            self._draw()

    def _draw(self) -> None:
        from PIL import ImageTk

        picture = self.player.picture
        width, height = self.canvas.winfo_width(), self.canvas.winfo_height()
        if picture is None or width < 2 or height < 2:
            return
        picture = with_pointer(picture, self.player.cursor())
        scale = min(width / picture.width, height / picture.height)
        size = (max(int(picture.width * scale), 1), max(int(picture.height * scale), 1))
        if size != picture.size:
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        self._photo = ImageTk.PhotoImage(picture)
        self.canvas.delete("all")
        self.canvas.create_image(width // 2, height // 2, image=self._photo)

    def _refresh(self) -> None:
        """Every 0.1 s: seek while dragging, move the slider, update time, side pane and export progress."""
        if self._dragging:
            self._seek_now()
        else:
            self.slider_value.set(self.player.position)
        self.time_label.configure(
            text=f"{_clock_text(self.player.position)} / {_clock_text(self.recording.duration)}")
        chat, events = self.player.chat_until(), self.player.events_until()
        if len(chat) + len(events) != self._side_count:
            self._side_count = len(chat) + len(events)
            lines = sorted([(c.at, f"{c.message.author}: {c.message.text}") for c in chat]
                           + [(e.at, f"· {e.event.kind} {e.event.detail}".rstrip()) for e in events])
            self.side.configure(state="normal")
            self.side.delete("1.0", "end")
            self.side.insert("end", "\n".join(f"{_clock_text(at)} {text}" for at, text in lines))
            self.side.configure(state="disabled")
            self.side.see("end")
        if self._job is not None:
            if self._job.done:
                self.status.configure(text=f"Exported to {self._job.output}" if self._job.error is None
                                      else f"Export failed: {self._job.error}")
                self.export_button.configure(state="normal")
                self._job = None
            else:
                self.status.configure(text=f"Exporting… {self._job.progress:.0%}")
        self.top.after(100, self._refresh)

    def export(self) -> None:
        """Ask for a file name, then export to it in a thread."""
        from tkinter import filedialog

        from console.export import ExportJob

        output = filedialog.asksaveasfilename(
            parent=self.top, title="Export video", defaultextension=".mp4",
            filetypes=[("MP4 video", "*.mp4"), ("WebM video", "*.webm")])
        if not output:
            return
        self._job = ExportJob(self.recording.path, output)
        self._job.start()
        self.export_button.configure(state="disabled")
