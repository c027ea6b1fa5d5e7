"""
Synthetic 1920×1080 desktops for the recording benchmark, drawn with
Pillow (no display): each workload generates (time, picture, pointer)
steps, the pictures as a screen grab would give them.

  - L{support_minute}: a typical support minute.  A desktop with a vertical
    gradient wallpaper, desktop icons, a taskbar with a clock; a text editor
    with a document, a file manager, and a browser showing a photograph.
    Mostly still: the editor's caret blinks twice a second until 10 s
    after the last key (GNOME's default C{cursor-blink-timeout}).  Two
    bursts of typing (about 4 characters a second, 5–20 s and 31–45 s),
    two window changes (the file manager raised at 20 s, the editor again
    at 31 s), the pointer gliding over the file list for 2 s (the row under
    it lights up), a "Save changes?" dialog that comes (45 s) and goes
    (48 s), and the taskbar clock changing once.
  - L{scrolling_minute}: a maximised editor of anti-aliased text scrolling
    without a pause, C{lines_per_frame} lines of 20 pixels every frame, 10
    frames a second.
"""

import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH, HEIGHT = 1920, 1080
TASKBAR = 40
FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
MONO_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def _font(path: str, size: int):
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default(size)


UI = _font(FONT_PATH, 13)
TITLE = _font(FONT_PATH, 14)
MONO = _font(MONO_PATH, 14)
BLINK_TIMEOUT = 10.0

WORDS = (
    "the printer in the second floor office stopped working after the update and the queue shows "
    "jobs waiting forever while the driver reports an error about the spooler service which restarts "
    "but fails again when a document with pictures is sent from the accounting application"
).split()


def _sentence(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def photo(width: int, height: int) -> Image.Image:
    """A photograph-like picture: soft colour blobs over a radial gradient, with grain (thousands of colours)."""
    sky = Image.radial_gradient("L").resize((width, height))
    blobs = Image.effect_noise((width // 16 + 1, height // 16 + 1), 90).resize((width, height)).filter(
        ImageFilter.GaussianBlur(10))
    img = Image.merge("RGB", (blobs, sky.point(lambda v: 255 - v // 2), sky.point(lambda v: 120 + v // 3)))
    return Image.blend(img, Image.effect_noise((width, height), 20).convert("RGB"), 0.12)


def _window(img: Image.Image, box, title: str, focused: bool) -> tuple[int, int, int, int]:
    """Draw a window frame; returns its client area."""
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), fill=(90, 90, 90))
    draw.rectangle((x0, y0, x1 - 1, y0 + 30), fill=(53, 132, 228) if focused else (205, 205, 205))
    draw.text((x0 + 10, y0 + 7), title, font=TITLE, fill="white" if focused else (60, 60, 60))
    for i, colour in enumerate(((237, 51, 59), (246, 211, 45), (51, 209, 122))):
        cx = x1 - 20 - i * 24
        draw.ellipse((cx - 7, y0 + 8, cx + 7, y0 + 22), fill=colour)
    draw.rectangle((x0, y0 + 31, x1 - 1, y1 - 1), fill="white")
    return x0, y0 + 31, x1 - 1, y1 - 1


class Desktop:
    """The support desktop, redrawn from its state for each step."""

    EDITOR = (260, 120, 1180, 760)
    FILES = (700, 300, 1500, 860)
    BROWSER = (1000, 60, 1860, 620)

    def __init__(self):
        rnd = random.Random(7)
        self.background = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
        self.background = Image.merge("RGB", (
            self.background.point(lambda v: 20 + v // 6),
            self.background.point(lambda v: 60 + v // 4),
            self.background.point(lambda v: 120 + v // 3)))
        draw = ImageDraw.Draw(self.background)
        for i, name in enumerate(("Home", "Documents", "Trash", "Printer setup", "VPN")):
            y = 30 + i * 100
            draw.rounded_rectangle((40, y, 88, y + 48), 8, fill=(230, 230, 240), outline=(30, 30, 60))
            draw.text((64, y + 56), name, font=UI, fill="white", anchor="mt")
        self.photo = photo(820, 480)
        self.document = [_sentence(rnd, rnd.randrange(6, 13)) for _ in range(24)]
        self.files = [f"{_sentence(rnd, 2).replace(' ', '_')}.{rnd.choice(('pdf', 'docx', 'xlsx', 'png'))}"
                      for _ in range(22)]
        self.typed = ""
        self.caret = True
        self.order = ["browser", "editor"]  # bottom to top
        self.hover = None
        self.dialog = False
        self.clock = "10:41"

    def picture(self) -> Image.Image:
        img = self.background.copy()
        for name in self.order:
            getattr(self, "_draw_" + name)(img, name == self.order[-1] and not self.dialog)
        if self.dialog:
            self._draw_dialog(img)
        self._draw_taskbar(img)
        return img

    def _draw_editor(self, img, focused):
        x0, y0, x1, y1 = _window(img, self.EDITOR, "report.txt — Text Editor", focused)
        draw = ImageDraw.Draw(img)
        draw.rectangle((x0, y0, x1, y0 + 26), fill=(245, 245, 245))
        for i, item in enumerate(("File", "Edit", "View", "Search", "Tools", "Help")):
            draw.text((x0 + 10 + i * 60, y0 + 6), item, font=UI, fill=(40, 40, 40))
        lines = self.document + [self.typed]
        for i, line in enumerate(lines[-28:]):
            draw.text((x0 + 12, y0 + 36 + i * 20), line, font=MONO, fill=(20, 20, 20))
        if self.caret and focused:
            cx = x0 + 12 + int(MONO.getlength(self.typed))
            cy = y0 + 36 + (min(len(lines), 28) - 1) * 20
            draw.line((cx, cy, cx, cy + 17), fill="black", width=1)

    def _draw_files(self, img, focused):
        x0, y0, x1, y1 = _window(img, self.FILES, "Documents — Files", focused)
        draw = ImageDraw.Draw(img)
        draw.rectangle((x0, y0, x0 + 180, y1), fill=(240, 240, 244))
        for i, place in enumerate(("Recent", "Home", "Documents", "Downloads", "Pictures", "Network")):
            draw.text((x0 + 16, y0 + 16 + i * 28), place, font=UI, fill=(40, 40, 40))
        for i, name in enumerate(self.files):
            y = y0 + 10 + i * 24
            if i == self.hover:
                draw.rectangle((x0 + 190, y - 3, x1 - 10, y + 19), fill=(220, 232, 252))
            draw.rectangle((x0 + 196, y, x0 + 212, y + 16), fill=(120, 160, 220))
            draw.text((x0 + 222, y), name, font=UI, fill=(30, 30, 30))
            draw.text((x1 - 150, y), f"{(i * 37) % 900 + 12} KB", font=UI, fill=(110, 110, 110))

    def _draw_browser(self, img, focused):
        x0, y0, x1, y1 = _window(img, self.BROWSER, "Printer driver downloads — Web Browser", focused)
        draw = ImageDraw.Draw(img)
        draw.rectangle((x0 + 8, y0 + 6, x1 - 8, y0 + 30), outline=(180, 180, 180), fill=(250, 250, 250))
        draw.text((x0 + 16, y0 + 10), "https://support.example.com/printers/drivers", font=UI, fill=(60, 60, 60))
        img.paste(self.photo.crop((0, 0, x1 - x0 - 40, 300)), (x0 + 20, y0 + 44))
        for i in range(6):
            draw.text((x0 + 20, y0 + 360 + i * 22), _sentence(random.Random(i), 10), font=UI, fill=(30, 30, 30))

    def _draw_dialog(self, img):
        box = (760, 420, 1160, 580)
        x0, y0, x1, y1 = _window(img, box, "Save changes?", True)
        draw = ImageDraw.Draw(img)
        draw.text((x0 + 20, y0 + 24), "Save changes to report.txt before closing?", font=UI, fill=(20, 20, 20))
        for i, label in enumerate(("Cancel", "Don't save", "Save")):
            bx = x0 + 70 + i * 105
            draw.rounded_rectangle((bx, y1 - 46, bx + 95, y1 - 16), 5, fill=(240, 240, 240), outline=(150, 150, 150))
            draw.text((bx + 47, y1 - 31), label, font=UI, fill=(20, 20, 20), anchor="mm")

    def _draw_taskbar(self, img):
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, HEIGHT - TASKBAR, WIDTH, HEIGHT), fill=(36, 36, 40))
        for i, name in enumerate(("Text Editor", "Files", "Web Browser")):
            x = 60 + i * 170
            active = {"editor": 0, "files": 1, "browser": 2}[self.order[-1]] == i
            draw.rectangle((x, HEIGHT - 36, x + 160, HEIGHT - 4), fill=(70, 70, 80) if active else (48, 48, 54))
            draw.text((x + 10, HEIGHT - 28), name, font=UI, fill="white")
        draw.text((WIDTH - 70, HEIGHT - 28), self.clock, font=UI, fill="white")


def support_minute(fps: float = 10.0, seconds: float = 60.0):
    """The typical support minute: (time, picture, pointer) every 1/fps seconds, generated."""
    desk = Desktop()
    rnd = random.Random(11)
    line = _sentence(rnd, 30)
    typed_at = {}
    for start, end in ((5.0, 20.0), (31.0, 45.0)):
        t, i = start, 0
        while t < end:
            typed_at[round(t * fps)] = i
            t += rnd.uniform(0.15, 0.35)
            i += 1
    chars = 0
    last_key = 0.0
    for n in range(int(seconds * fps)):
        t = n / fps
        if n in typed_at:
            chars += 1
            desk.typed = line[:chars % len(line)]
            last_key = t
        # The caret blinks twice a second and stops blinking (shown) 10 s after the last key,
        # as GNOME's cursor-blink-timeout does.
        desk.caret = t - last_key > BLINK_TIMEOUT or int((t - last_key) * 2) % 2 == 0
        if 20.0 <= t < 31.0:
            desk.order = ["browser", "editor", "files"]
            # The pointer goes down the file list for 2 s (the row under it lights up), then rests.
            glide = min(t - 20.0, 2.0)
            pointer = (1000 + int(glide * 60), 330 + int(glide * 50))
            row = (pointer[1] - (Desktop.FILES[1] + 41)) // 24
            desk.hover = row if 0 <= row < len(desk.files) else None
        else:
            desk.order = ["browser", "files", "editor"] if t >= 31.0 else ["browser", "editor"]
            desk.hover = None
            pointer = (640 + int(MONO.getlength(desk.typed)) // 4, 560)
        desk.dialog = 45.0 <= t < 48.0
        if desk.dialog:
            pointer = (1100, 545)
        desk.clock = "10:42" if t >= 50.0 else "10:41"
        yield t, desk.picture(), pointer


def scrolling_minute(fps: float = 10.0, seconds: float = 60.0, lines_per_frame: int = 3):
    """A maximised editor scrolling by C{lines_per_frame} lines every frame."""
    rnd = random.Random(5)
    line_height = 20
    top, bottom = 31 + 26, HEIGHT - TASKBAR
    visible = (bottom - top) // line_height + 1
    total = visible + int(seconds * fps) * lines_per_frame + 1
    text = []
    for i in range(total):
        indent = " " * (4 * rnd.randrange(0, 4))
        text.append(f"{i + 1:5d}  {indent}{_sentence(rnd, rnd.randrange(3, 16))}")
    frame = Image.new("RGB", (WIDTH, HEIGHT), "white")
    _window(frame, (0, 0, WIDTH, HEIGHT - TASKBAR), "server.log — Text Editor", True)
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, 31, WIDTH, 31 + 25), fill=(245, 245, 245))
    draw.rectangle((0, HEIGHT - TASKBAR, WIDTH, HEIGHT), fill=(36, 36, 40))
    # The whole document drawn once, then cropped: every frame is a view of it.
    page = Image.new("RGB", (WIDTH - 20, total * line_height), "white")
    page_draw = ImageDraw.Draw(page)
    for i, line in enumerate(text):
        page_draw.text((10, i * line_height + 2), line, font=MONO, fill=(25, 25, 25))
    for n in range(int(seconds * fps)):
        offset = n * lines_per_frame * line_height
        picture = frame.copy()
        picture.paste(page.crop((0, offset, WIDTH - 20, offset + bottom - top)), (0, top))
        # The scroll bar's thumb moves with the text.
        thumb = top + int((bottom - top - 60) * offset / (total * line_height))
        ImageDraw.Draw(picture).rectangle((WIDTH - 14, thumb, WIDTH - 4, thumb + 60), fill=(150, 150, 150))
        yield n / fps, picture, (WIDTH // 2, HEIGHT // 2)
