"""
Screen sharing: the tile encodings and their decoder (no display), the
differ's pure logic on synthetic pictures (no display), and the agent's
L{agent.screen.ScreenSource} on a private Xvfb showing a Tk test window
that paints known patterns — solid blocks, monospaced text and a
photographic area — run in its own process so this test's reactor is
never blocked.
"""

import io
import random
import sys

import attrs
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat
from twisted.internet import defer, protocol, reactor, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from agent.interfaces import IScreenSource
import numpy as np

from agent import screen
from agent.damage import DamageWatch, dirty_regions
from agent.memory import keep_freed_memory
from agent.screen import (FrameDiffer, ScreenSettings, ScreenSource, black_out, copy_runs, explained_strips,
                          grab_interval, moved_windows, row_fingerprints, shift_votes, strip_changes,
                          strip_fingerprints, top_shifts, window_moves)
from tests import xvfb
from wire import tiles as wt
from wire.screen import ENCODINGS, Cursor, Frame, Monitor, Tile

# The largest mean absolute error (0–255, over the three channels) of the
# lossy tiles against the screen.  JPEG at quality 75 (the default) measures
# about 3.1 on the test window's photographic picture, WebP 75 about 3.4.
LOSSY_ERROR = 6.0


# -- helpers -------------------------------------------------------------------------------


def photo(width: int, height: int, seed: int = 1) -> Image.Image:
    """A photograph-like picture: smooth colours, blurred discs and grain (thousands of colours)."""
    rnd = random.Random(seed)
    grey = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                              grey.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y, r = rnd.randrange(width), rnd.randrange(height), rnd.randrange(5, 40)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    img = img.filter(ImageFilter.GaussianBlur(3))
    return Image.blend(img, Image.effect_noise((width, height), 24).convert("RGB"), 0.15)


WORDS = "the quick brown fox jumps over a lazy dog while seven odd zebras quietly wave".split()


def words(n: int) -> str:
    """Line C{n} of a text: its number and a few words, different from line to line."""
    rnd = random.Random(n)
    return f"{n:3d} " + " ".join(rnd.choice(WORDS) for _ in range(5))


def text_picture(width: int, height: int, first_line: int = 1) -> Image.Image:
    """Black text on white, one line every 14 pixels."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for n, y in enumerate(range(2, height, 14), first_line):
        draw.text((4, y), words(n), fill=(20, 20, 20))
    return img


def bgrx(image: Image.Image) -> bytes:
    """An RGB picture as mss grabs it: B, G, R, X bytes."""
    r, g, b = image.convert("RGB").split()
    return Image.merge("RGBA", (b, g, r, Image.new("L", image.size, 255))).tobytes()


def worst(a: Image.Image, b: Image.Image, mask: Image.Image | None = None) -> Image.Image:
    """Per pixel, the largest channel difference of C{a} and C{b} (zero where C{mask} is set)."""
    d = ImageChops.difference(a, b).split()
    largest = ImageChops.lighter(ImageChops.lighter(d[0], d[1]), d[2])
    if mask is not None:
        largest = Image.composite(Image.new("L", a.size, 0), largest, mask)
    return largest


def mean_error(a: Image.Image, b: Image.Image, mask: Image.Image) -> float:
    """Mean absolute error of C{a} against C{b} where C{mask} is set."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b), mask=mask).mean) / 3


class Picture:
    """The console's side: the decoded canvas and a mask of where it holds lossy pixels."""

    def __init__(self):
        self.canvas = None
        self.mask = None

    def apply(self, frame: Frame) -> Image.Image:
        self.canvas = wt.decode(frame, self.canvas)
        if self.mask is None or self.mask.size != self.canvas.size:
            self.mask = Image.new("L", self.canvas.size, 0)
        before = self.mask.copy()
        for t in frame.tiles:
            if t.encoding == wt.COPY:
                sx, sy = wt.copy_source(t.data)
                self.mask.paste(before.crop((sx, sy, sx + t.width, sy + t.height)), (t.x, t.y))
            else:
                self.mask.paste(255 if t.encoding in wt.LOSSY else 0, (t.x, t.y, t.x + t.width, t.y + t.height))
        return self.canvas

    def check(self, testcase, truth: Image.Image) -> None:
        """Lossless pixels are exact, lossy ones within L{LOSSY_ERROR}."""
        testcase.assertEqual(self.canvas.size, truth.size)
        testcase.assertIsNone(worst(self.canvas, truth, self.mask).getbbox(), "lossless pixels differ")
        if self.mask.getbbox() is not None:
            testcase.assertLess(mean_error(self.canvas, truth, self.mask), LOSSY_ERROR)


def area(tiles, encodings=None) -> int:
    return sum(t.width * t.height for t in tiles if encodings is None or t.encoding in encodings)


# -- wire.tiles: no display ---------------------------------------------------------------


class TileEncodingTests(unittest.TestCase):
    def setUp(self):
        self.picture = Image.new("RGB", (96, 64), (30, 60, 90))
        ImageDraw.Draw(self.picture).rectangle((10, 10, 40, 30), fill=(250, 0, 0))

    def test_copy_is_an_encoding(self):
        self.assertIn("copy", ENCODINGS)
        for encoding in ("raw", "png", "jpeg", "webp"):
            self.assertIn(encoding, ENCODINGS)

    def test_lossless_encodings_decode_exactly(self):
        for kind in (wt.RAW, wt.PNG):
            data = wt.encode_tile(self.picture, kind)
            canvas = wt.decode(Frame(0, 96, 64, (Tile(0, 0, 96, 64, kind, data),)))
            self.assertEqual(canvas.tobytes(), self.picture.tobytes(), kind)
        paletted = self.picture.convert("P", palette=Image.Palette.ADAPTIVE)
        data = wt.encode_tile(paletted, wt.PNG)
        canvas = wt.decode(Frame(0, 96, 64, (Tile(0, 0, 96, 64, wt.PNG, data),)))
        self.assertEqual(canvas.tobytes(), self.picture.tobytes())

    def test_png_images_made_by_hand_decode_exactly(self):
        picture = photo(37, 21)
        data = wt.png_image(37, 21, picture.tobytes(), compress_level=1)
        self.assertEqual(wt.decode_tile(Tile(0, 0, 37, 21, wt.PNG, data)).tobytes(), picture.tobytes())
        palette = bytes([0, 0, 0, 255, 0, 0, 10, 20, 30])
        indices = bytes(i % 3 for i in range(5 * 4))
        image = wt.decode_tile(Tile(0, 0, 5, 4, wt.PNG, wt.png_image(5, 4, indices, palette)))
        self.assertEqual(image.tobytes(), b"".join(palette[3 * i : 3 * i + 3] for i in indices))
        self.assertRaises(wt.TileError, wt.png_image, 5, 4, indices[1:], palette)
        self.assertRaises(wt.TileError, wt.png_image, 5, 4, indices, palette + b"\0")
        self.assertRaises(wt.TileError, wt.png_image, 0, 4, b"", palette)

    def test_lossy_encodings_decode_closely(self):
        picture = photo(128, 64)
        for kind in (wt.JPEG, wt.WEBP):
            data = wt.encode_tile(picture, kind, quality=75)
            canvas = wt.decode(Frame(0, 128, 64, (Tile(0, 0, 128, 64, kind, data),)))
            self.assertLess(mean_error(canvas, picture, Image.new("L", (128, 64), 255)), LOSSY_ERROR, kind)

    def test_tiles_land_in_place_on_the_previous_canvas(self):
        canvas = Image.new("RGB", (96, 64), (1, 2, 3))
        patch = Image.new("RGB", (8, 4), (200, 100, 50))
        out = wt.decode(Frame(0, 96, 64, (Tile(88, 60, 8, 4, wt.RAW, patch.tobytes()),)), canvas)
        self.assertIs(out, canvas)
        self.assertEqual(canvas.getpixel((90, 62)), (200, 100, 50))
        self.assertEqual(canvas.getpixel((87, 62)), (1, 2, 3))

    def test_copy_reads_the_canvas_as_it_was_before_the_frame(self):
        canvas = self.picture.copy()
        red = Image.new("RGB", (32, 32), (0, 255, 0)).tobytes()
        # A green tile first paints over the copy's source; the copy still takes the old pixels.
        frame = Frame(0, 96, 64, (
            Tile(0, 0, 32, 32, wt.RAW, red),
            Tile(50, 20, 40, 30, wt.COPY, wt.copy_data(5, 5)),
        ))
        expected = self.picture.copy()
        expected.paste(self.picture.crop((5, 5, 45, 35)), (50, 20))
        expected.paste((0, 255, 0), (0, 0, 32, 32))
        wt.decode(frame, canvas)
        self.assertEqual(canvas.tobytes(), expected.tobytes())

    def test_overlapping_copy_scrolls(self):
        canvas = text_picture(96, 64)
        before = canvas.copy()
        wt.decode(Frame(0, 96, 64, (Tile(0, 0, 96, 50, wt.COPY, wt.copy_data(0, 14)),)), canvas)
        self.assertEqual(canvas.crop((0, 0, 96, 50)).tobytes(), before.crop((0, 14, 96, 64)).tobytes())

    def test_copy_data(self):
        self.assertEqual(wt.copy_data(3, 513), b"\x00\x03\x02\x01")
        self.assertEqual(wt.copy_source(b"\x00\x03\x02\x01"), (3, 513))
        self.assertEqual(wt.copy_data(70000, 1), b"\x00\x01\x11\x70\x00\x00\x00\x01")
        self.assertEqual(wt.copy_source(wt.copy_data(70000, 1)), (70000, 1))
        self.assertRaises(wt.TileError, wt.copy_data, -1, 0)

    def test_a_new_size_makes_a_new_canvas(self):
        first = wt.decode(Frame(0, 4, 2, (Tile(0, 0, 4, 2, wt.RAW, b"\xff" * 24),)))
        self.assertEqual(first.size, (4, 2))
        second = wt.decode(Frame(0, 6, 3, (Tile(5, 2, 1, 1, wt.RAW, b"\x01\x02\x03"),)), first)
        self.assertEqual(second.size, (6, 3))
        self.assertEqual(second.getpixel((0, 0)), (255, 255, 255))  # the old picture, top left
        self.assertEqual(second.getpixel((4, 2)), (0, 0, 0))
        self.assertEqual(second.getpixel((5, 2)), (1, 2, 3))

    def assertRefused(self, frame, words, canvas=None):
        canvas = canvas if canvas is not None else Image.new("RGB", (frame.width, frame.height), (9, 9, 9))
        before = canvas.tobytes() if canvas.size == (frame.width, frame.height) else None
        e = self.assertRaises(wt.TileError, wt.decode, frame, canvas)
        self.assertIn(words, str(e))
        if before is not None:
            self.assertEqual(canvas.tobytes(), before, "a refused frame changed the canvas")

    def test_bad_tiles_are_refused_and_change_nothing(self):
        png = wt.encode_tile(self.picture, wt.PNG)
        good = Tile(0, 0, 4, 4, wt.RAW, b"\x00" * 48)
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 4, 4, wt.RAW, b"\x00" * 47))), "47 bytes")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 32, 32, wt.PNG, png))), "holding a 96×64 image")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 96, 64, wt.JPEG, png))), "does not decode")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 96, 64, wt.PNG, png[:60]))), "does not decode")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 96, 64, wt.WEBP, b"RIFF nonsense"))), "does not decode")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(90, 0, 8, 4, wt.RAW, b"\x00" * 96))), "outside")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(-1, 0, 1, 1, wt.RAW, b"\x00" * 3))), "outside")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 0, 4, wt.RAW, b""))), "empty tile")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 4, 4, "gif", b""))), "unknown tile encoding")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 4, 4, wt.COPY, b"\x00\x01\x02"))), "copy data of 3 bytes")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 10, 10, wt.COPY, wt.copy_data(90, 0)))), "a copy from 90,0")
        self.assertRefused(Frame(0, 96, 64, (good, Tile(0, 0, 10, 10, wt.COPY, wt.copy_data(0, 60)))), "outside")
        self.assertRefused(Frame(0, 0, 64, ()), "a frame of 0×64")

    def test_an_image_bomb_is_refused_before_it_is_decompressed(self):
        big = Image.new("RGB", (8000, 8000))
        out = io.BytesIO()
        big.save(out, "PNG", compress_level=9)
        self.assertRefused(Frame(0, 64, 64, (Tile(0, 0, 64, 64, wt.PNG, out.getvalue()),)), "holding a 8000×8000")

    def test_only_known_encodings_are_made(self):
        self.assertRaises(wt.TileError, wt.encode_tile, self.picture, wt.COPY)


# -- the differ: pure logic, no display ---------------------------------------------------


class DifferTests(unittest.TestCase):
    def setUp(self):
        self.differ = FrameDiffer()
        self.seen = Picture()

    def show(self, image, moves=None):
        frame = self.differ.frame(0, image.width, image.height, bgrx(image), moves)
        if frame is not None:
            self.seen.apply(frame)
            self.seen.check(self, image)
            for t in frame.tiles:
                self.assertLessEqual(len(t.data), self.differ.settings.max_tile_bytes)
        return frame

    def update(self, image, rects, moves=None):
        """L{FrameDiffer.update} with the parts C{rects} of C{image}, checked like L{show}."""
        pixels = np.frombuffer(bgrx(image), dtype=np.uint32).reshape(image.height, image.width)
        patches = [(x, y, w, h, pixels[y : y + h, x : x + w].tobytes()) for x, y, w, h in rects]
        frame = self.differ.update(0, image.width, image.height, patches, moves)
        if frame is not None:
            self.seen.apply(frame)
        self.seen.check(self, image)
        return frame

    def desktop(self):
        picture = Image.new("RGB", (320, 256), (40, 40, 48))
        picture.paste(text_picture(200, 180), (10, 10))
        picture.paste(photo(96, 96), (220, 150))
        return picture

    def test_the_first_frame_is_whole_and_an_unchanged_picture_sends_nothing(self):
        picture = self.desktop()
        frame = self.show(picture)
        self.assertEqual((frame.width, frame.height), (320, 256))
        self.assertEqual(area(frame.tiles), 320 * 256)
        self.assertIsNone(self.show(picture))

    def test_text_is_lossless_and_photographs_lossy(self):
        frame = self.show(self.desktop())
        for t in frame.tiles:
            inside_photo = t.x >= 224 and t.y >= 152 and t.x + t.width <= 316 and t.y + t.height <= 246
            inside_text = t.x + t.width <= 210 and t.y + t.height <= 190
            if inside_text:
                self.assertIn(t.encoding, wt.LOSSLESS, t)
            if inside_photo:
                self.assertIn(t.encoding, wt.LOSSY, t)
        self.assertTrue(any(t.encoding == ScreenSettings().lossy_encoding for t in frame.tiles))

    def test_a_small_change_sends_one_tile(self):
        picture = self.desktop()
        self.show(picture)
        ImageDraw.Draw(picture).rectangle((70, 70, 75, 72), fill=(255, 0, 0))
        frame = self.show(picture)
        self.assertEqual(len(frame.tiles), 1)
        (t,) = frame.tiles
        self.assertTrue(t.x <= 70 and t.y <= 70 and t.x + t.width > 75 and t.y + t.height > 72)
        self.assertLessEqual(t.width * t.height, 64 * 64)

    def test_scrolled_text_is_copied_and_only_new_lines_are_encoded(self):
        picture = Image.new("RGB", (320, 256), (40, 40, 48))
        picture.paste(text_picture(300, 240), (10, 8))
        self.show(picture)
        scrolled = Image.new("RGB", (320, 256), (40, 40, 48))
        scrolled.paste(text_picture(300, 240 + 42).crop((0, 42, 300, 282)), (10, 8))
        frame = self.show(scrolled)
        copies = [t for t in frame.tiles if t.encoding == wt.COPY]
        self.assertTrue(copies)
        self.assertEqual({(wt.copy_source(t.data)[1] - t.y) for t in copies}, {42})
        left, top, right, bottom = worst(picture, scrolled).getbbox()
        changed = (right - left) * (bottom - top)
        self.assertGreater(area(copies), changed * 0.75)
        self.assertLess(area(frame.tiles, wt.LOSSLESS + wt.LOSSY), changed * 0.3)

    def test_a_moved_window_is_copied_given_the_move(self):
        background = Image.new("RGB", (320, 256), (40, 40, 48))
        window = text_picture(150, 100)
        window.paste(photo(60, 40), (80, 50))
        before, after = background.copy(), background.copy()
        before.paste(window, (20, 30))
        after.paste(window, (90, 110))
        self.show(before)
        frame = self.show(after, moves=lambda: [(70, 80)])
        copies = [t for t in frame.tiles if t.encoding == wt.COPY]
        self.assertGreater(area(copies), 150 * 100 / 2)
        self.assertEqual({(t.x - wt.copy_source(t.data)[0], t.y - wt.copy_source(t.data)[1]) for t in copies},
                         {(70, 80)})

    def test_moves_are_asked_only_when_something_changed(self):
        asked = []
        picture = self.desktop()
        self.show(picture, moves=lambda: asked.append(1) or [])
        self.assertIsNone(self.show(picture, moves=lambda: asked.append(1) or []))
        self.assertEqual(asked, [])

    def test_a_new_size_or_another_monitor_sends_a_whole_frame(self):
        picture = self.desktop()
        self.show(picture)
        smaller = picture.crop((0, 0, 200, 100))
        frame = self.differ.frame(0, 200, 100, bgrx(smaller))
        self.assertEqual(area(frame.tiles), 200 * 100)
        frame = self.differ.frame(1, 200, 100, bgrx(smaller))
        self.assertEqual(area(frame.tiles), 200 * 100)
        self.differ.reset()
        self.assertEqual(area(self.differ.frame(1, 200, 100, bgrx(smaller)).tiles), 200 * 100)

    def test_tiles_too_large_for_a_chunk_are_split(self):
        self.differ = FrameDiffer(ScreenSettings(tile_size=256, max_tile_bytes=12000, lossy_quality=95))
        noise = Image.effect_noise((512, 256), 90).convert("RGB")
        frame = self.show(noise)
        self.assertGreater(len(frame.tiles), 2)
        self.assertEqual(area(frame.tiles), 512 * 256)

    def test_a_picture_of_the_wrong_length_is_refused(self):
        self.assertRaises(ValueError, self.differ.frame, 0, 10, 10, b"\x00" * 399)

    def test_black_out_keeps_only_the_visible_part(self):
        picture = Image.new("RGB", (40, 30), (200, 10, 200))
        out = black_out(bgrx(picture), 40, 30, (5, 4, 20, 10), [(15, 8, 100, 100)])
        shown = Image.frombuffer("RGB", (40, 30), bytes(out), "raw", "BGRX", 0, 1)
        expected = Image.new("RGB", (40, 30))
        expected.paste((200, 10, 200), (5, 4, 25, 14))
        expected.paste((0, 0, 0), (15, 8, 40, 30))
        self.assertEqual(shown.tobytes(), expected.tobytes())
        self.assertEqual(bytes(black_out(bgrx(picture), 40, 30, None)), bytes(40 * 30 * 4))
        self.assertEqual(bytes(black_out(bgrx(picture), 40, 30, (50, 50, 10, 10))), bytes(40 * 30 * 4))

    def test_window_moves(self):
        before = {1: (0, 0, 100, 50), 2: (10, 10, 20, 20), 3: (5, 5, 5, 5), 5: (1, 1, 8, 8)}
        after = {1: (30, -4, 100, 50), 2: (10, 10, 20, 20), 3: (9, 9, 6, 6), 4: (0, 0, 1, 1), 5: (31, -3, 8, 8)}
        self.assertEqual(window_moves(before, after), [(30, -4)])
        self.assertEqual(moved_windows(before, after), [(30, -4, 30, -4, 100, 50), (30, -4, 31, -3, 8, 8)])

    def test_palette_pngs_are_exact_or_not_made(self):
        picture = text_picture(64, 64)
        pixels = np.frombuffer(bgrx(picture), dtype=np.uint32).reshape(64, 64)
        colours = screen._Canvas(pixels).colours((0, 0, 64, 64), 256)
        data = screen._palette_png(pixels, colours, 1)
        decoded = wt.decode_tile(Tile(0, 0, 64, 64, wt.PNG, data))
        self.assertEqual(decoded.tobytes(), picture.tobytes())
        self.assertIsNone(screen._palette_png(pixels, colours[1:], 1))

    def test_freed_memory_is_kept_on_linux(self):
        kept = keep_freed_memory(8 * 1024 * 1024)
        self.assertEqual(kept, sys.platform.startswith("linux"))

    def test_settings_are_checked(self):
        self.assertRaises(ValueError, ScreenSettings, lossy_encoding="gif")
        self.assertRaises(ValueError, ScreenSettings, tile_size=4)
        self.assertRaises(ValueError, ScreenSettings, max_fps=0)
        self.assertRaises(ValueError, ScreenSettings, idle_fps=0)
        self.assertRaises(ValueError, ScreenSettings, idle_after=-1)

    def test_an_update_compares_only_its_patches(self):
        picture = self.desktop()
        self.show(picture)
        ImageDraw.Draw(picture).rectangle((70, 70, 75, 72), fill=(255, 0, 0))
        ImageDraw.Draw(picture).rectangle((300, 5, 310, 9), fill=(0, 255, 0))
        # Only the first change is in a patch: the second is not seen (the caller vouches for
        # the rest of the picture), and the frame is the first change's tile alone.
        frame = self.differ.update(0, 320, 256, [(64, 64, 64, 64, self.part(picture, (64, 64, 64, 64)))])
        self.assertEqual(len(frame.tiles), 1)
        t = frame.tiles[0]
        self.assertTrue(64 <= t.x and t.x + t.width <= 128 and 64 <= t.y and t.y + t.height <= 128, t)
        # An unchanged patch sends nothing.
        self.assertIsNone(self.differ.update(0, 320, 256, [(0, 0, 64, 64, self.part(picture, (0, 0, 64, 64)))]))

    def part(self, image, rect):
        x, y, w, h = rect
        return bgrx(image.crop((x, y, x + w, y + h)))

    def test_updates_in_a_row_reproduce_the_picture(self):
        # The differ keeps two pictures and brings the spare one up to date where the
        # patches were: every frame must still be the whole truth.
        picture = self.desktop()
        self.show(picture)
        rnd = random.Random(3)
        for step in range(12):
            # Every third change in the same place (its patch covers the last one's), others anywhere.
            x, y = (100, 100) if step % 3 else (rnd.randrange(0, 280), rnd.randrange(0, 220))
            ImageDraw.Draw(picture).rectangle((x, y, x + 30, y + 20), fill=(rnd.randrange(256), 0, step * 30))
            rects = dirty_regions([(x, y, 31, 21)], (0, 0, 320, 256), 64)
            self.assertIsNotNone(self.update(picture, rects))
        self.assertIsNone(self.update(picture, [(0, 0, 320, 256)]))

    def test_an_update_needs_a_previous_picture_and_patches_on_the_grid(self):
        picture = self.desktop()
        self.assertRaises(ValueError, self.differ.update, 0, 320, 256, [])
        self.show(picture)
        for rect in ((10, 0, 64, 64), (0, 0, 60, 64), (256, 200, 128, 56)):
            patch = rect + (self.part(picture, (0, 0, 64, 64)),)
            self.assertRaises(ValueError, self.differ.update, 0, 320, 256, [patch])
        # The right edge of the picture ends a patch off the grid.
        self.assertIsNone(self.update(picture, [(256, 0, 64, 256)]))

    def test_a_moved_window_is_one_copy_of_its_rectangle(self):
        background = Image.new("RGB", (320, 256), (40, 40, 48))
        window = text_picture(150, 100)
        before, after = background.copy(), background.copy()
        before.paste(window, (20, 30))
        after.paste(window, (37, 41))
        self.show(before)
        frame = self.update(after, [(0, 0, 256, 192)], moves=lambda: [(17, 11, 37, 41, 150, 100)])
        copies = [t for t in frame.tiles if t.encoding == wt.COPY]
        self.assertEqual([(t.x, t.y, t.width, t.height, wt.copy_source(t.data)) for t in copies],
                         [(37, 41, 150, 100, (20, 30))])
        # What is left is about the uncovered L of the background (in a row of tiles, pieces
        # side by side are merged into their bounding box), far less than the window.
        self.assertLess(area(frame.tiles, wt.LOSSLESS + wt.LOSSY), 150 * 100 / 2)
        encoded = [t for t in frame.tiles if t.encoding != wt.COPY]
        self.assertEqual(min(t.x for t in encoded), 20)
        self.assertEqual(min(t.y for t in encoded), 30)

    def test_a_window_whose_content_changed_too_is_copied_only_where_it_did_not(self):
        background = Image.new("RGB", (320, 256), (40, 40, 48))
        window = text_picture(150, 100)
        before, after = background.copy(), background.copy()
        before.paste(window, (20, 30))
        window.paste((200, 0, 0), (0, 40, 150, 60))
        after.paste(window, (60, 70))
        self.show(before)
        frame = self.show(after, moves=lambda: [(40, 40, 60, 70, 150, 100)])
        copies = sorted((t.y, t.height) for t in frame.tiles if t.encoding == wt.COPY and t.x == 60)
        self.assertEqual(copies, [(70, 40), (130, 40)])

    def test_a_changed_column_of_tiles_is_one_tile(self):
        picture = self.desktop()
        self.show(picture)
        ImageDraw.Draw(picture).rectangle((130, 0, 140, 255), fill=(250, 250, 0))
        frame = self.show(picture)
        self.assertEqual([(t.x, t.y, t.width, t.height) for t in frame.tiles], [(130, 0, 11, 256)])

    def test_a_photograph_does_not_vote_for_shifts(self):
        picture = Image.new("RGB", (256, 256), (40, 40, 48))
        picture.paste(photo(256, 200, seed=2), (0, 0))
        self.show(picture)
        scrolled = picture.copy()
        scrolled.paste(picture.crop((0, 20, 256, 200)), (0, 0))
        asked = []
        self.differ._shifts = lambda *a: asked.append(FrameDiffer._shifts(self.differ, *a)) or asked[-1]
        self.show(scrolled)
        self.assertEqual(asked, [[]])
        # The same with text: the scroll is found.
        text = text_picture(256, 256)
        self.show(text)
        scrolled = text.copy()
        scrolled.paste(text.crop((0, 28, 256, 256)), (0, 0))
        self.show(scrolled)
        self.assertEqual(asked[-1][0], (0, -28))

    def test_the_differ_knows_whether_it_has_a_previous_picture(self):
        self.assertFalse(self.differ.has_previous(0, 320, 256))
        self.show(self.desktop())
        self.assertTrue(self.differ.has_previous(0, 320, 256))
        self.assertFalse(self.differ.has_previous(1, 320, 256))
        self.assertFalse(self.differ.has_previous(0, 320, 255))
        self.differ.reset()
        self.assertFalse(self.differ.has_previous(0, 320, 256))


class DifferPartsTests(unittest.TestCase):
    """The differ's vectorised helpers, on small arrays of 32-bit pixels."""

    def test_equal_rows_have_equal_fingerprints_and_different_rows_different_ones(self):
        rows = np.random.default_rng(5).integers(0, 2**32, size=(200, 64), dtype=np.uint32)
        rows[7] = rows[3]
        prints = row_fingerprints(rows)
        self.assertEqual(prints.shape, (200,))
        self.assertEqual(prints[7], prints[3])
        self.assertEqual(len(set(prints.tolist())), 199)
        one_pixel = rows[:2].copy()
        one_pixel[1] = one_pixel[0]
        one_pixel[1, 40] ^= 1 << 31
        self.assertNotEqual(*row_fingerprints(one_pixel).tolist())
        self.assertEqual(row_fingerprints(rows[:, :10]).tolist(), row_fingerprints(rows[:, :10].copy()).tolist())

    def test_shift_votes_come_from_rare_rows_only(self):
        before = np.array([10, 11, 12, 13, 5, 5, 5, 20, 21], dtype=np.uint64)
        # Row 2 is before's row 0 (dy 2), row 3 is before's row 3 (itself: no vote), row 4 is 5
        # (three times in before: too common), row 5 is 20 (before's row 7: dy -2), row 6 is new.
        after = np.array([10, 13, 5, 20, 99], dtype=np.uint64)
        votes = shift_votes(before, after, np.array([2, 3, 4, 5, 6]), repeats=2)
        self.assertEqual(votes.tolist(), [2, -2])
        twice = np.array([10, 1, 10], dtype=np.uint64)
        self.assertEqual(shift_votes(twice, np.array([10], dtype=np.uint64), np.array([5]), 2).tolist(), [5, 3])
        self.assertEqual(shift_votes(twice, np.array([10], dtype=np.uint64), np.array([5]), 1).tolist(), [])
        self.assertEqual(shift_votes(before[:0], after, np.arange(5), 2).tolist(), [])

    def test_top_shifts_are_the_most_voted_first_seen_first(self):
        votes = np.array([3, 7, 7, -2, 3, 7, 9, -2, 3, 1])
        self.assertEqual(top_shifts(votes, 3, 2), [3, 7, -2])
        self.assertEqual(top_shifts(votes, 2, 2), [3, 7])
        self.assertEqual(top_shifts(votes, 5, 3), [3, 7])
        self.assertEqual(top_shifts(np.array([], dtype=int), 3, 1), [])

    def test_explained_strips_compare_with_the_shifted_previous_picture(self):
        old = np.arange(8 * 48, dtype=np.uint32).reshape(8, 48)
        new = np.zeros_like(old)
        new[3:8, 16:48] = old[1:6, 14:46]  # moved by (2, 2)
        self.assertEqual(explained_strips(old, new, (16, 0, 32, 8), (2, 2), 16).tolist(),
                         [[False, False]] * 3 + [[True, True]] * 5)
        self.assertEqual(explained_strips(old, new, (16, 4, 32, 2), (2, 2), 16).tolist(), [[True, True]] * 2)
        # Where the source would be outside the previous picture nothing is explained.
        self.assertEqual(explained_strips(old, new, (0, 0, 32, 8), (2, 2), 16)[:, 0].tolist(), [False] * 8)
        self.assertEqual(explained_strips(old, old, (0, 0, 48, 8), (0, -7), 16).tolist(), [[False] * 3] * 8)
        self.assertEqual(explained_strips(old, old, (32, 0, 16, 8), (-3, 0), 16).tolist(), [[False]] * 8)
        # An odd shift and a last strip narrower than the others.
        new = np.zeros((8, 40), dtype=np.uint32)
        new[:, 3:40] = old[:, 0:37]
        self.assertEqual(explained_strips(old[:, :40], new, (0, 0, 40, 8), (3, 0), 16).tolist(),
                         [[False, True, True]] * 8)

    def test_strip_changes_and_fingerprints_match_the_plain_computation(self):
        rng = np.random.default_rng(7)
        for width, tile in ((128, 64), (100, 16), (37, 8), (64, 64)):
            old = rng.integers(0, 4, size=(30, width), dtype=np.uint32)
            new = old.copy()
            new[rng.integers(0, 30, 12), rng.integers(0, width, 12)] += 1
            strips = [(x, min(x + tile, width)) for x in range(0, width, tile)]
            expected = np.array([[(old[r, a:b] != new[r, a:b]).any() for a, b in strips] for r in range(30)])
            self.assertEqual(strip_changes(old, new, tile).tolist(), expected.tolist())
            self.assertEqual(strip_changes(old[:, 1:], new[:, 1:], tile).shape, (30, len(range(0, width - 1, tile))))
            prints = strip_fingerprints(new, tile)
            self.assertEqual(prints.shape, (30, len(strips)))
            for i, (a, b) in enumerate(strips):
                segments = {}
                for r in range(30):
                    segments.setdefault(new[r, a:b].tobytes(), set()).add(int(prints[r, i]))
                self.assertTrue(all(len(p) == 1 for p in segments.values()))
                self.assertEqual(len({p for ps in segments.values() for p in ps}), len(segments))

    def test_copy_runs(self):
        changed = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=bool)
        a = np.array([0, 1, 1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
        b = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=bool)
        # Rows 1–5 by a (through the unchanged row 3), then row 6 starts a run of b to the end,
        # too short with min_rows 5: its changed rows are encoded.
        runs, encode = copy_runs(changed, [a, b], 4)
        self.assertEqual(runs, [(1, 6, 0), (6, 10, 1)])
        self.assertEqual(np.flatnonzero(encode).tolist(), [])
        runs, encode = copy_runs(changed, [a, b], 5)
        self.assertEqual(runs, [(1, 6, 0)])
        self.assertEqual(np.flatnonzero(encode).tolist(), [6, 8, 9])
        runs, encode = copy_runs(changed, [], 1)
        self.assertEqual((runs, encode.tolist()), ([], changed.tolist()))
        # An unexplained changed row is encoded; an unchanged row never starts a run.
        runs, encode = copy_runs(np.array([1, 0, 0, 0, 0], dtype=bool), [np.array([0, 1, 1, 1, 1], dtype=bool)], 1)
        self.assertEqual((runs, np.flatnonzero(encode).tolist()), ([], [0]))

    def test_the_grab_rate_falls_on_a_still_screen(self):
        s = ScreenSettings(max_fps=30, idle_fps=10, idle_after=1.0)
        self.assertAlmostEqual(grab_interval(s, 0), 1 / 30)
        self.assertAlmostEqual(grab_interval(s, 1.0), 1 / 30)
        self.assertAlmostEqual(grab_interval(s, 1.5), 1 / 20)
        self.assertAlmostEqual(grab_interval(s, 2.0), 1 / 15)
        self.assertAlmostEqual(grab_interval(s, 3.0), 1 / 10)
        self.assertAlmostEqual(grab_interval(s, 60.0), 1 / 10)
        self.assertAlmostEqual(grab_interval(ScreenSettings(max_fps=5, idle_fps=10), 60.0), 1 / 5)
        self.assertAlmostEqual(grab_interval(ScreenSettings(idle_after=0), 0.5), 1 / 10)


class DirtyRegionsTests(unittest.TestCase):
    """Damaged rectangles to the rectangles of a monitor to grab."""

    def test_damage_is_rounded_out_to_tiles_of_the_monitor(self):
        monitor = (100, 50, 300, 256)
        self.assertEqual(dirty_regions([(110, 60, 10, 10)], monitor, 64), [(0, 0, 64, 64)])
        self.assertEqual(dirty_regions([(163, 50, 2, 1)], monitor, 64), [(0, 0, 128, 64)])
        # Clipped to the monitor; the last column is what is left of the monitor's width.
        self.assertEqual(dirty_regions([(390, 290, 500, 500)], monitor, 64), [(256, 192, 44, 64)])
        self.assertEqual(dirty_regions([(0, 0, 100, 50), (400, 50, 5, 5), (100, 306, 5, 5)], monitor, 64), [])
        self.assertEqual(dirty_regions([], monitor, 64), [])

    def test_runs_of_tiles_make_rectangles_joined_down_the_rows(self):
        monitor = (0, 0, 320, 256)
        # Rows 0 and 1 touch columns 1–2; row 2 columns 1–3; row 3 column 0 and columns 2–3.
        rects = [(70, 10, 100, 100), (70, 130, 180, 10), (10, 200, 1, 1), (140, 200, 100, 10)]
        self.assertEqual(dirty_regions(rects, monitor, 64), [
            (64, 0, 128, 128), (64, 128, 192, 64), (0, 192, 64, 64), (128, 192, 128, 64)])
        # Every damaged pixel is in exactly one rectangle.
        covered = np.zeros((256, 320), dtype=int)
        for x, y, w, h in dirty_regions(rects, monitor, 64):
            covered[y : y + h, x : x + w] += 1
        self.assertLessEqual(covered.max(), 1)
        for x, y, w, h in rects:
            self.assertTrue((covered[y : y + h, x : x + w] == 1).all())


class DamageWatchTests(unittest.TestCase):
    """X DAMAGE and the windows' places, on a private Xvfb, drawn with python-xlib."""

    def setUp(self):
        from Xlib import X, display

        self.X = X
        self.server = xvfb.start(self, width=320, height=240)
        self.mine = display.Display(self.server.display)
        self.theirs = display.Display(self.server.display)
        self.addCleanup(self.mine.close)
        self.addCleanup(self.theirs.close)
        self.watch = DamageWatch.start(self.mine)

    def settled(self):
        """What the watch saw once the other client's requests were all processed."""
        self.theirs.sync()
        self.mine.sync()
        return self.watch.take()

    def window(self, x, y, w, h):
        root = self.theirs.screen().root
        window = root.create_window(x, y, w, h, 0, self.theirs.screen().root_depth,
                                    background_pixel=self.theirs.screen().white_pixel, override_redirect=True)
        window.map()
        return window

    def test_drawing_in_a_window_is_reported_on_the_root_window(self):
        self.assertIsNotNone(self.watch)
        self.assertTrue(self.settled())  # the whole root window at first
        self.assertEqual(self.settled(), [])
        window = self.window(20, 30, 100, 80)
        self.settled()
        gc = window.create_gc(foreground=self.theirs.screen().black_pixel)
        window.fill_rectangle(gc, 10, 5, 7, 3)
        rects = self.settled()
        self.assertTrue(rects)
        for x, y, w, h in rects:
            self.assertTrue(20 <= x and x + w <= 120 and 30 <= y and y + h <= 110, rects)
        self.assertTrue(any(x <= 30 and 35 <= y and 37 <= x + w and 38 <= y + h for x, y, w, h in rects), rects)

    def test_windows_places_follow_their_moves(self):
        window = self.window(20, 30, 100, 80)
        self.settled()
        before = self.watch.geometries()
        self.assertEqual(before[window.id], (20, 30, 100, 80))
        window.configure(x=50, y=20)
        rects = self.settled()
        self.assertIn((50, 20, 100, 80), rects)
        self.assertEqual(moved_windows(before, self.watch.geometries()), [(30, -10, 50, 20, 100, 80)])
        window.unmap()
        self.settled()
        self.assertNotIn(window.id, self.watch.geometries())
        window.destroy()
        self.settled()
        self.assertNotIn(window.id, self.watch._windows)

    def test_waiting_ends_when_something_comes(self):
        self.settled()
        self.assertFalse(self.watch.wait(0.05))
        window = self.window(0, 0, 10, 10)
        self.theirs.sync()
        self.assertTrue(self.watch.wait(5))
        self.assertTrue(self.watch.take())
        del window


class _StandInWatch:
    """A DamageWatch that reports what the test says."""

    def __init__(self):
        self.rects = []
        self.waits = 0

    def take(self):
        rects, self.rects = self.rects, []
        return rects

    def wait(self, timeout):
        self.waits += 1
        return False

    def geometries(self):
        return {}


class DamagedCaptureTests(unittest.TestCase):
    """The capture thread's loop with X DAMAGE, with a stand-in grabber and watch."""

    def setUp(self):
        self.source = ScreenSource(ScreenSettings(max_fps=1000), display=":0")
        self.capture = screen._Capture(self.source)
        self.watch = _StandInWatch()
        self.capture._watch, self.capture._watch_tried = self.watch, True
        self.differ = FrameDiffer(self.source.settings)
        self.monitor = Monitor(0, 1000, 500, 160, 120, True)  # a second monitor, right of a first
        self.picture = Image.new("RGB", (160, 120), (40, 40, 48))
        self.picture.paste(text_picture(100, 80), (20, 20))
        self.grabs = []
        self.seen = Picture()

    def grab(self, area):
        self.grabs.append((area["left"], area["top"], area["width"], area["height"]))
        x, y = area["left"] - self.monitor.left, area["top"] - self.monitor.top
        return _Shot(self.picture.crop((x, y, x + area["width"], y + area["height"])))

    def next(self):
        frame = self.capture._next(self, self.differ, self.monitor)
        self.seen.apply(frame)
        self.seen.check(self, self.picture)
        return frame

    def test_only_the_damaged_tiles_are_grabbed(self):
        self.next()
        self.assertEqual(self.grabs, [(1000, 500, 160, 120)])  # the first picture is whole
        ImageDraw.Draw(self.picture).rectangle((70, 70, 72, 75), fill=(255, 0, 0))
        self.watch.rects = [(1070, 570, 3, 6), (10, 10, 5, 5)]  # the second is on another monitor
        frame = self.next()
        self.assertEqual(self.grabs[1:], [(1064, 564, 64, 56)])
        self.assertEqual([(t.x, t.y, t.width, t.height) for t in frame.tiles], [(70, 70, 3, 6)])

    def test_nothing_is_grabbed_while_nothing_is_drawn_but_for_the_whole_check(self):
        self.next()
        self.assertIsNone(self.capture._next_damaged(self, self.differ, self.monitor, self.watch))
        self.assertEqual((len(self.grabs), self.watch.waits), (1, 1))
        # Drawn without DAMAGE seeing it: found by the check of the whole monitor.
        ImageDraw.Draw(self.picture).rectangle((5, 100, 8, 110), fill=(0, 255, 0))
        self.capture._last_full -= self.source.settings.full_check
        frame = self.next()
        self.assertEqual(self.grabs[1:], [(1000, 500, 160, 120)])
        self.assertEqual([(t.x, t.y, t.width, t.height) for t in frame.tiles], [(5, 100, 4, 11)])

    def test_what_is_drawn_while_no_frame_is_asked_for_is_read_and_compared_whole(self):
        self.next()
        self.capture._drain()  # nothing drawn: nothing to do
        self.assertGreater(self.capture._last_full, 0)
        ImageDraw.Draw(self.picture).rectangle((150, 110, 155, 115), fill=(0, 0, 255))
        self.watch.rects = [(1150, 610, 6, 6)]
        self.capture._drain()
        self.assertEqual(self.watch.rects, [])  # read, not left with the X server
        frame = self.next()
        self.assertEqual(self.grabs[1:], [(1000, 500, 160, 120)])  # the whole monitor
        self.assertEqual([(t.x, t.y, t.width, t.height) for t in frame.tiles], [(150, 110, 6, 6)])

    def test_a_shared_window_is_grabbed_whole(self):
        self.next()
        self.capture._x = object()  # never asked: the window is gone
        self.patch(screen, "window_area", lambda x, window: (None, []))
        self.source.share_window(1234)
        frame = self.capture._next(self, self.differ, self.monitor)
        self.assertEqual(self.grabs[1:], [(1000, 500, 160, 120)])
        self.assertEqual(area(frame.tiles), 160 * 120)  # a whole frame, after a reset
        self.assertEqual(wt.decode(frame).getbbox(), None)  # all black


class _Shot:
    def __init__(self, image):
        self.size = image.size
        self.raw = bytearray(bgrx(image))


class CaptureLoopTests(unittest.TestCase):
    """The capture thread's loop, with a stand-in grabber and window list."""

    def setUp(self):
        self.events = []
        self.pictures = []
        self.geometries = []
        self.source = ScreenSource(ScreenSettings(max_fps=1000, idle_fps=1000, use_damage=False), display=":0")
        self.capture = screen._Capture(self.source)
        self.capture._geometries = lambda: self.events.append("geometry") or self.geometries.pop(0)
        self.differ = FrameDiffer(self.source.settings)
        self.monitor = Monitor(0, 0, 0, 160, 120, True)

    def grab(self, _area):
        self.events.append("grab")
        return _Shot(self.pictures.pop(0))

    def next(self):
        return self.capture._next(self, self.differ, self.monitor)

    def test_the_windows_are_read_right_after_the_grab_and_moves_compare_two_pictures(self):
        background = Image.new("RGB", (160, 120), (40, 40, 48))
        window = text_picture(60, 50)
        before, after = background.copy(), background.copy()
        before.paste(window, (10, 10))
        after.paste(window, (40, 30))
        self.pictures = [before, before, after]
        self.geometries = [{1: (10, 10, 60, 50)}, {1: (40, 30, 60, 50)}]
        self.next()
        self.assertEqual(self.events, ["grab", "geometry"])
        moves = []
        original = self.differ.frame
        self.differ.frame = lambda *a: moves.append(a[4]()) or original(*a)
        frame = self.next()
        # The unchanged picture read no windows; the changed one did, before it was compared.
        self.assertEqual(self.events, ["grab", "geometry", "grab", "grab", "geometry"])
        self.assertEqual(moves, [[(30, 20, 40, 30, 60, 50)]])  # the shift, and where the window is now
        self.assertTrue(any(t.encoding == wt.COPY for t in frame.tiles))


# -- the real screen, on Xvfb --------------------------------------------------------------

# The test window: 640×480 at (100, 100).  Solid blocks along the top, text
# lines below, a photographic picture at (470, 220) of 256×200.  Commands on
# its standard input, each answered with "ok" once drawn (an X round trip
# after Tk's update):  "scroll N" shifts everything up N pixels and writes
# new lines in the uncovered strip; "bright X Y W H" opens a magenta window
# there; "sync" only answers.
WINDOW = (100, 100, 640, 480)
PHOTO = (470, 220, 256, 200)
TK_WINDOW = r'''
import random, sys, tkinter
from PIL import Image, ImageDraw, ImageFilter, ImageTk

W, H = 640, 480
root = tkinter.Tk()
root.title("ponte screen test")
root.geometry(f"{W}x{H}+100+100")
canvas = tkinter.Canvas(root, width=W, height=H, bg="white", highlightthickness=0, borderwidth=0)
canvas.place(x=0, y=0)
PHOTO_SOURCE
for x0, colour in ((0, "#e02020"), (160, "#20c040"), (320, "#2040e0"), (480, "#000000")):
    canvas.create_rectangle(x0, 0, x0 + 159, 79, fill=colour, outline=colour)
lines = 0
def line(y):
    global lines
    lines += 1
    canvas.create_text(10, y, anchor="nw", font=("DejaVu Sans Mono", 11), fill="#202020",
                       text=words(lines))
for y in range(96, 470, 18):
    line(y)
image = ImageTk.PhotoImage(photo(256, 200))
canvas.create_image(370, 120, anchor="nw", image=image)
windows = []

def command(text):
    words = text.split()
    if not text or words == ["quit"]:
        root.destroy()
        return
    if words[0] == "scroll":
        n = int(words[1])
        canvas.move("all", 0, -n)
        for y in range(H - n, H, 18):
            line(y)
    elif words[0] == "bright":
        x, y, w, h = map(int, words[1:])
        top = tkinter.Toplevel(root, bg="#ff00ff")
        top.title("bright")
        top.geometry(f"{w}x{h}+{x}+{y}")
        windows.append(top)
    root.update_idletasks()
    root.update()
    root.winfo_pointerxy()  # a round trip: the X server has drawn everything asked before
    print("ok", flush=True)

def ready():
    root.update_idletasks()
    root.update()
    root.winfo_pointerxy()
    print("ready", flush=True)
    root.tk.createfilehandler(sys.stdin, tkinter.READABLE, lambda f, m: command(sys.stdin.readline()))

root.after(50, ready)
root.mainloop()
'''


def _tk_script() -> str:
    import inspect

    return TK_WINDOW.replace("PHOTO_SOURCE", "\n".join(
        [f"WORDS = {WORDS!r}", inspect.getsource(words), inspect.getsource(photo)]))


class TkWindow(protocol.ProcessProtocol):
    """The test window's process: send a command, wait for its answer."""

    def __init__(self):
        self.buffer = b""
        self.answers: list[defer.Deferred] = []
        self.exited = defer.Deferred()
        self.errors = b""

    @classmethod
    async def start(cls, testcase, server) -> "TkWindow":
        window = cls()
        window.answers.append(defer.Deferred())
        reactor.spawnProcess(window, sys.executable, [sys.executable, "-c", _tk_script()], env=server.environment())
        testcase.addCleanup(window.stop)
        testcase.assertEqual(await window.answers[0].addTimeout(30, reactor), "ready", window.errors)
        window.id = find_window(server, "ponte screen test")
        return window

    def outReceived(self, data):
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if self.answers:
                self.answers.pop(0).callback(line.decode())

    def errReceived(self, data):
        self.errors += data

    def processEnded(self, reason):
        for d in self.answers:
            d.errback(RuntimeError(f"the test window ended: {self.errors.decode(errors='replace')}"))
        self.answers = []
        self.exited.callback(None)

    async def command(self, text: str) -> str:
        d = defer.Deferred()
        self.answers.append(d)
        self.transport.write(text.encode() + b"\n")
        answer = await d.addTimeout(20, reactor)
        if not answer.startswith("ok"):
            raise RuntimeError(f"the test window answered {answer!r}")
        return answer

    async def stop(self):
        if not self.exited.called:
            self.transport.closeStdin()
            await self.exited.addTimeout(10, reactor)


def find_window(server, title: str) -> int:
    """The id of the top-level window called C{title}."""

    (found,) = xvfb.xdotool(server, "search", "--name", f"^{title}$").split()
    return int(found)


def grab(server) -> Image.Image:
    """The screen now, through its own mss instance."""
    import mss

    with mss.MSS(display=server.display) as grabber:
        shot = grabber.grab(grabber.monitors[1])
        return Image.frombytes("RGB", shot.size, shot.rgb)


def covered(rect, tiles) -> bool:
    x, y, w, h = rect
    return any(t.x < x + w and x < t.x + t.width and t.y < y + h and y < t.y + t.height for t in tiles)


class ScreenSourceTests(unittest.TestCase):
    timeout = 120

    async def start(self, settings: ScreenSettings = ScreenSettings()):
        self.server = xvfb.start(self, width=1280, height=800)
        self.window = await TkWindow.start(self, self.server)
        self.source = ScreenSource(settings, display=self.server.display)

        async def stop():
            self.source.stop()
            await self.source.ended()

        self.addCleanup(stop)
        self.seen = Picture()

    async def frame(self, wait: float = 15) -> Frame:
        frame = await self.source.next_frame(0).addTimeout(wait, reactor)
        self.seen.apply(frame)
        return frame

    def test_it_is_a_screen_source(self):
        verifyObject(IScreenSource, ScreenSource(display=":0"))

    async def test_monitors_are_mss_monitors_without_the_all_in_one_entry(self):
        await self.start()
        self.assertEqual(self.source.monitors(), [Monitor(0, 0, 0, 1280, 800, True)])
        e = await self.assertFailure(self.source.next_frame(1), ValueError)
        self.assertIn("no monitor 1", str(e))

    async def test_the_first_frame_reproduces_the_screen(self):
        await self.start()
        frame = await self.frame()
        self.assertEqual((frame.monitor, frame.width, frame.height), (0, 1280, 800))
        self.assertEqual(area(frame.tiles), 1280 * 800)
        self.seen.check(self, grab(self.server))
        # Text and blocks came lossless, the photograph lossy.
        x, y, w, h = WINDOW
        mask = self.seen.mask
        self.assertIsNone(mask.crop((x, y, x + 340, y + h)).getbbox(), "text sent lossy")
        px, py, pw, ph = PHOTO
        inner = mask.crop((px + 64, py + 64, px + pw - 64, py + ph - 64))
        self.assertEqual(inner.getextrema(), (255, 255), "the photograph sent lossless")

    async def test_an_idle_screen_sends_nothing(self):
        await self.start()
        await self.frame()
        waiting = self.source.next_frame(0)
        await task.deferLater(reactor, 1.0, lambda: None)
        self.assertFalse(waiting.called, "a frame of an idle screen")
        # Stopping answers the waiting request with an empty frame; the next one is whole again.
        self.source.stop()
        self.assertEqual((await waiting).tiles, ())
        frame = await self.frame()
        self.assertEqual(area(frame.tiles), 1280 * 800)

    async def test_a_change_is_sent_once_it_happens(self):
        await self.start()
        await self.frame()
        waiting = self.source.next_frame(0)
        await task.deferLater(reactor, 0.3, lambda: None)
        self.assertFalse(waiting.called)
        await self.window.command("bright 900 600 100 50")
        frame = await waiting.addTimeout(10, reactor)
        self.seen.apply(frame)
        self.seen.check(self, grab(self.server))
        self.assertEqual(self.seen.canvas.getpixel((950, 625)), (255, 0, 255))
        self.assertLessEqual(area(frame.tiles), 3 * 2 * 64 * 64)

    async def test_a_moved_window_sends_only_tiles_of_changed_areas(self):
        await self.start()
        await self.frame()
        before = grab(self.server)

        xvfb.xdotool(self.server, "windowmove", str(self.window.id), "180", "150")
        await self.window.command("sync")
        frame = await self.frame()
        after = grab(self.server)
        self.seen.check(self, after)
        changed = worst(before, after).getbbox()
        self.assertEqual(changed[:2], (100, 100))
        left, top, right, bottom = changed
        for t in frame.tiles:
            self.assertTrue(covered((left, top, right - left, bottom - top), [t]), f"{t} outside the change")
        full_grid = 20 * 13
        self.assertLess(len(frame.tiles), full_grid / 10)
        copies = [t for t in frame.tiles if t.encoding == wt.COPY]
        self.assertGreater(area(copies), 640 * 480 * 0.8)
        self.assertLess(area(frame.tiles, wt.LOSSLESS + wt.LOSSY), 640 * 480 * 0.5)
        self.assertLess(sum(len(t.data) for t in frame.tiles), 10_000)

    async def test_scrolled_content_is_sent_as_copies(self):
        await self.start()
        await self.frame()
        await self.window.command("scroll 36")
        frame = await self.frame()
        self.seen.check(self, grab(self.server))
        scrolled = [t for t in frame.tiles if t.encoding == wt.COPY and wt.copy_source(t.data) == (t.x, t.y + 36)]
        self.assertGreater(area(scrolled), 640 * 480 * 0.6)
        encoded = [t for t in frame.tiles if t.encoding != wt.COPY]
        self.assertLess(area(encoded), 640 * 100)
        for t in encoded:  # only the uncovered strip at the bottom of the window and the blocks' edge
            self.assertTrue(t.y + t.height > 580 - 36 or t.y < 180, t)
        # Again: the copies decode from what the console shows, frame after frame.
        await self.window.command("scroll 54")
        frame = await self.frame()
        self.seen.check(self, grab(self.server))
        self.assertIn(wt.COPY, {t.encoding for t in frame.tiles})

    async def test_sharing_one_window_blacks_out_everything_else(self):
        await self.start()
        await self.frame()
        await self.window.command("bright 600 400 400 300")
        bright = find_window(self.server, "bright")
        listed = dict(self.source.windows())
        self.assertEqual(listed.get(self.window.id), "ponte screen test")
        self.assertEqual(listed.get(bright), "bright")
        self.assertEqual(list(listed)[0], bright, "topmost first")
        truth = grab(self.server)
        self.assertEqual(truth.getpixel((900, 650)), (255, 0, 255))
        self.assertEqual(truth.getpixel((650, 450)), (255, 0, 255))

        self.source.share_window(self.window.id)
        frame = await self.frame()
        self.assertEqual(area(frame.tiles), 1280 * 800, "not a whole frame after choosing a window")
        canvas, shown = self.seen.canvas, Image.new("L", (1280, 800), 0)
        x, y, w, h = WINDOW
        shown.paste(255, (x, y, x + w, y + h))
        shown.paste(0, (600, 400, 1000, 700))  # the bright window is stacked above the shared one
        outside = Image.composite(Image.new("RGB", canvas.size), canvas, shown)
        self.assertIsNone(outside.getbbox(), "a pixel outside the shared window")
        self.seen.check(self, Image.composite(truth, Image.new("RGB", truth.size), shown))

        # Moving the bright window off the shared one uncovers it; nothing of the bright window shows.

        xvfb.xdotool(self.server, "windowmove", str(bright), "800", "600")
        await self.window.command("sync")
        await self.frame()
        canvas = self.seen.canvas
        shown = Image.new("L", (1280, 800), 0)
        shown.paste(255, (x, y, x + w, y + h))
        self.assertIsNone(Image.composite(Image.new("RGB", canvas.size), canvas, shown).getbbox())
        self.seen.check(self, Image.composite(grab(self.server), Image.new("RGB", canvas.size), shown))

        # The whole screen again.
        self.source.share_window(None)
        await self.frame()
        self.seen.check(self, grab(self.server))
        self.assertEqual(self.seen.canvas.getpixel((900, 650)), (255, 0, 255))

    async def test_a_shared_window_that_is_gone_shows_nothing(self):
        await self.start()
        await self.frame()
        self.source.share_window(0x7FFFFF)
        await self.frame()
        self.assertIsNone(self.seen.canvas.getbbox())

    async def test_the_pointer(self):
        await self.start()

        xvfb.xdotool(self.server, "mousemove", "300", "250")
        self.assertEqual(self.source.cursor(0), Cursor(300, 250, True))
        self.source.share_window(self.window.id)
        self.assertEqual(self.source.cursor(0), Cursor(300, 250, True))
        xvfb.xdotool(self.server, "mousemove", "1000", "700")
        self.assertEqual(self.source.cursor(0), Cursor(1000, 700, False))  # outside the shared window
        self.source.share_window(None)
        self.assertEqual(self.source.cursor(0), Cursor(1000, 700, True))


class PollingScreenSourceTests(ScreenSourceTests):
    """The same with X DAMAGE not used: the whole monitor is grabbed and compared every time."""

    async def start(self, settings: ScreenSettings = ScreenSettings()):
        await super().start(attrs.evolve(settings, use_damage=False))
