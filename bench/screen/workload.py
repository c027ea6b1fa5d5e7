#!/usr/bin/env python3
"""
The benchmark's workload program: one scripted, deterministic scene on the
X display named by C{DISPLAY}, drawn with Tk (and Pillow for the pictures).

    workload.py KIND --stamps FILE [--rate N] [--seed N]

KIND is one of:

  - C{scroll}: a terminal-like window (black, monospaced, some coloured
    words) into which a line of log-like text is written every step, the
    text scrolling up by one line;
  - C{drag}: a window (a title bar, a paragraph of text, buttons) moved a
    few pixels every step by C{xdotool windowmove}, bouncing off the
    screen's edges;
  - C{photo}: a region showing a new picture every step, like a video: a
    pan along a circle over a generated natural-looking picture (clouds of
    colour at several scales, a gradient, soft shapes) with fresh grain on
    every frame, so that no frame is an exact copy of a part of another;
  - C{idle}: a terminal-like window full of text and nothing moving.

Every workload but C{idle} also changes the latency marker
(L{bench.screen.marker}) at every step, in the same drawing, and appends
C{step time} to the stamps file once the X server has processed the
step's drawing (a round trip after it), C{time} from C{time.monotonic}.
It prints C{ready} once the first picture is drawn, then runs until it is
terminated.  The same KIND, size and seed draw the same pictures.
"""

import argparse
import io
import math
import os
import random
import subprocess
import sys
import time
import tkinter as tk

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.screen import marker  # noqa: E402

KINDS = ("scroll", "drag", "photo", "idle")
RATES = {"scroll": 20.0, "drag": 20.0, "photo": 15.0, "idle": 0.0}  # steps per second
WORDS = (
    "connection accepted from peer session relay tile frame buffer update request worker thread "
    "cache miss hit flush queue pending complete retry timeout socket handshake certificate "
    "verified user login logout config reload service started stopped listening bytes packets "
    "kernel module loaded device mounted filesystem checkpoint transaction commit rollback index"
).split()
LEVELS = (("INFO ", "#6ad36a"), ("DEBUG", "#7f8fa6"), ("WARN ", "#e6c14a"), ("ERROR", "#ef5f5f"))
PHOTO_FRAMES = 45  # frames of the photo loop (3 s at 15 steps a second)
PAN = 40  # pixels, the radius of the photo pan's circle


def log_line(rnd: random.Random, number: int, columns: int) -> tuple[str, str, str]:
    """One line of a log: (prefix, level, message), at most C{columns} characters."""
    prefix = f"2024-05-{1 + number // 86400 % 28:02d} {number // 3600 % 24:02d}:{number // 60 % 60:02d}:" \
             f"{number % 60:02d}.{rnd.randrange(1000):03d} [{rnd.choice(('net', 'db', 'ui', 'io', 'auth'))}:" \
             f"{rnd.randrange(1, 9999):>4}] "
    level = rnd.choices(LEVELS, weights=(70, 15, 10, 5))[0][0]
    words = []
    room = columns - len(prefix) - 7
    length = rnd.randrange(min(8, room), max(9, room))
    while len(" ".join(words)) < length:
        word = rnd.choice(WORDS)
        if rnd.random() < 0.2:
            word = f"{word}={rnd.randrange(100000)}"
        words.append(word)
    message = " ".join(words)[: max(0, columns - len(prefix) - 7)]
    return prefix, level, message


class Scene:
    """A Tk root on the display, the marker window, and the scene's own windows."""

    def __init__(self, kind: str, stamps: str, rate: float, seed: int):
        self.kind = kind
        self.rnd = random.Random(seed)
        self.seed = seed
        self.root = tk.Tk()
        self.root.withdraw()
        self.width, self.height = self.root.winfo_screenwidth(), self.root.winfo_screenheight()
        self.rate = rate
        self.stamps = open(stamps, "w", encoding="ascii") if stamps else None
        self.step_number = 0
        self.marker = None
        self._wallpaper()
        if kind != "idle":
            self.marker = tk.Toplevel(self.root, width=marker.SIZE, height=marker.SIZE, bg=marker.hex_colour(0),
                                      highlightthickness=0, bd=0)
            self.marker.overrideredirect(True)
            x, y = marker.place(self.width, self.height)
            self.marker.geometry(f"{marker.SIZE}x{marker.SIZE}+{x}+{y}")
        getattr(self, f"make_{kind}")()

    def _wallpaper(self):
        """
        A desktop's wallpaper as the root window's background (a vertical
        gradient, dark blue to teal), so that the X server itself repaints
        what a moved window uncovers.
        """
        from Xlib import X, display

        self.x = display.Display()
        screen = self.x.screen()
        tile_w, h = 8, self.height
        rows = []
        for y in range(h):
            t = y / max(1, h - 1)
            r, g, b = (round(a + (z - a) * t) for a, z in ((0x1d, 0x45), (0x35, 0x8f), (0x57, 0x9d)))
            rows.append(bytes((b, g, r, 0)) * tile_w)
        pixmap = screen.root.create_pixmap(tile_w, h, screen.root_depth)
        gc = pixmap.create_gc()
        step = max(1, 60000 // (tile_w * 4))  # rows per request, well under the request size limit
        for y in range(0, h, step):
            chunk = rows[y : y + step]
            pixmap.put_image(gc, 0, y, tile_w, len(chunk), X.ZPixmap, screen.root_depth, 0, b"".join(chunk))
        screen.root.change_attributes(background_pixmap=pixmap)
        screen.root.clear_area(0, 0, 0, 0)
        self.x.sync()

    # -- the scenes -----------------------------------------------------------------------------

    def _terminal(self, x, y, w, h):
        window = tk.Toplevel(self.root, bg="black")
        window.overrideredirect(True)
        window.geometry(f"{w}x{h}+{x}+{y}")
        text = tk.Text(window, bg="#101010", fg="#c8c8c8", font=("DejaVu Sans Mono", 10), bd=0,
                       highlightthickness=0, wrap="none", padx=4, pady=2, insertwidth=0)
        text.pack(fill="both", expand=True)
        for name, c in LEVELS:
            text.tag_configure(name.strip(), foreground=c)
        text.tag_configure("prefix", foreground="#8aa9c8")
        self.columns = max(20, (w - 8) // 7)
        self.line_number = 0
        return text

    def _write_line(self, text):
        prefix, level, message = log_line(self.rnd, self.line_number, self.columns)
        self.line_number += 1
        text.insert("end", prefix, "prefix", level, level.strip(), " " + message + "\n")

    def make_scroll(self):
        w, h = int(self.width * 0.6), int(self.height * 0.8)
        self.text = self._terminal(self.width // 10, self.height // 10, w, h)
        for _ in range(h // 15 + 5):
            self._write_line(self.text)
        self.text.see("end")

    def step_scroll(self):
        self._write_line(self.text)
        if self.line_number % 200 == 0:
            self.text.delete("1.0", "100.0")  # keep the widget small
        self.text.see("end")

    def make_idle(self):
        self.make_scroll()

    def make_drag(self):
        w, h = int(self.width * 0.35), int(self.height * 0.4)
        self.window = window = tk.Toplevel(self.root, bg="#e8e8e8")
        window.overrideredirect(True)
        self.position = [self.width // 8, self.height // 6]
        self.size = (w, h)
        window.geometry(f"{w}x{h}+{self.position[0]}+{self.position[1]}")
        bar = tk.Frame(window, bg="#3465a4", height=28)
        bar.pack(fill="x")
        tk.Label(bar, text="Quarterly report.odt — Writer", bg="#3465a4", fg="white",
                 font=("DejaVu Sans", 10, "bold")).pack(side="left", padx=8, pady=4)
        body = tk.Text(window, bg="white", fg="#202020", font=("DejaVu Serif", 11), bd=0, wrap="word",
                       highlightthickness=0, padx=12, pady=8)
        paragraphs = []
        for _ in range(12):
            words = [self.rnd.choice(WORDS) for _ in range(self.rnd.randrange(25, 60))]
            paragraphs.append(" ".join(words).capitalize() + ".")
        body.insert("end", "\n\n".join(paragraphs))
        buttons = tk.Frame(window, bg="#e8e8e8")
        buttons.pack(side="bottom", fill="x")
        for label in ("Save", "Cancel"):
            tk.Button(buttons, text=label, width=8).pack(side="right", padx=6, pady=6)
        body.pack(fill="both", expand=True)
        self.velocity = [16, 6]
        self.root.update()
        # Tk's wrapper of the window (a child of the root window) is what moves.
        self.wrapper = self.x.create_resource_object("window", window.winfo_id()).query_tree().parent.id

    def step_drag(self):
        w, h = self.size
        top = marker.place(self.width, self.height)[1] + marker.SIZE + 8
        for axis, (low, high) in enumerate(((0, self.width - w), (top, self.height - h))):
            moved = self.position[axis] + self.velocity[axis]
            if not low <= moved <= high:
                self.velocity[axis] = -self.velocity[axis]
                moved = self.position[axis] + self.velocity[axis]
            self.position[axis] = moved
        subprocess.run(["xdotool", "windowmove", str(self.wrapper), str(self.position[0]), str(self.position[1])],
                       check=True)

    def make_photo(self):
        from PIL import Image

        w, h = self.width // 2, self.height // 2
        picture = natural_picture(w + 2 * PAN, h + 2 * PAN, self.seed)
        grains = [grain(w, h, self.seed * 1000 + i) for i in range(5)]
        self.frames = []
        for i in range(PHOTO_FRAMES):
            angle = 2 * math.pi * i / PHOTO_FRAMES
            x, y = round(PAN + PAN * math.cos(angle)), round(PAN + PAN * math.sin(angle))
            frame = Image.blend(picture.crop((x, y, x + w, y + h)), grains[i % len(grains)], 0.06)
            out = io.BytesIO()
            frame.save(out, "PPM")
            self.frames.append(tk.PhotoImage(master=self.root, data=out.getvalue(), format="ppm"))
        window = tk.Toplevel(self.root, bg="black")
        window.overrideredirect(True)
        window.geometry(f"{w}x{h}+{self.width // 4}+{self.height // 4}")
        self.screen = tk.Label(window, image=self.frames[0], bd=0, highlightthickness=0)
        self.screen.pack()
        # Something text-like around it, as in a video player's page.
        self.text = self._terminal(self.width // 4, self.height // 4 + h + 8, w, self.height // 6)
        for _ in range(8):
            self._write_line(self.text)

    def step_photo(self):
        self.screen.configure(image=self.frames[self.step_number % PHOTO_FRAMES])

    # -- running ----------------------------------------------------------------------------

    def run(self):
        self.root.update()
        self.root.winfo_pointerxy()  # a round trip: everything drawn
        print("ready", flush=True)
        if self.kind != "idle":
            self.started = time.monotonic()
            self.root.after(int(1000 / self.rate), self.tick)
        self.root.mainloop()

    def tick(self):
        self.step_number += 1
        getattr(self, f"step_{self.kind}")()
        self.marker.configure(bg=marker.hex_colour(self.step_number))
        self.root.update_idletasks()
        self.root.winfo_pointerxy()  # a round trip: the X server has drawn the step
        if self.stamps is not None:
            self.stamps.write(f"{self.step_number} {time.monotonic():.6f}\n")
            self.stamps.flush()
        due = self.started + (self.step_number + 1) / self.rate
        self.root.after(max(1, int((due - time.monotonic()) * 1000)), self.tick)


def natural_picture(w: int, h: int, seed: int):
    """A picture with the statistics of a photograph: smooth clouds of colour at several scales, soft edges."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rnd = random.Random(seed)

    def clouds(scale):
        cw, ch = max(2, w // scale), max(2, h // scale)
        bands = [Image.frombytes("L", (cw, ch), rnd.randbytes(cw * ch)) for _ in range(3)]
        return Image.merge("RGB", bands).resize((w, h), Image.Resampling.BICUBIC)

    picture = Image.blend(clouds(96), clouds(24), 0.35)
    picture = Image.blend(picture, clouds(6), 0.15)
    sky = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    picture = ImageChops.multiply(picture, ImageChops.invert(sky).point(lambda v: 90 + v * 165 // 255))
    shapes = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(shapes)
    for _ in range(30):
        x, y, r = rnd.randrange(w), rnd.randrange(h), rnd.randrange(10, max(11, w // 8))
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    picture = Image.blend(picture, shapes.filter(ImageFilter.GaussianBlur(6)), 0.3)
    return picture.filter(ImageFilter.GaussianBlur(0.8))


def grain(w: int, h: int, seed: int):
    """Sensor-like noise, a different one per seed."""
    from PIL import Image

    rnd = random.Random(seed)
    return Image.merge("RGB", [Image.frombytes("L", (w, h), rnd.randbytes(w * h)) for _ in range(3)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--stamps", help="file for the marker's step times")
    parser.add_argument("--rate", type=float, help="steps per second (default: the workload's own)")
    parser.add_argument("--seed", type=int, default=5)
    options = parser.parse_args(argv)
    rate = options.rate or RATES[options.kind]
    Scene(options.kind, options.stamps, rate, options.seed).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
