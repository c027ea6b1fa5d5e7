"""
"At comparable quality": one picture of the photo workload encoded as
Ponte's differ encodes it (L{agent.screen.FrameDiffer} with its default
settings: JPEG 75 tiles for photographic areas) and as x11vnc's Tight encodes photographic areas at
the quality level the benchmark asks for (JPEG by libjpeg-turbo at the
quality and chroma subsampling libvncserver maps the level to), each
with its size and its mean absolute error per channel against the
original.  No display needed.
"""

import io
import math

from PIL import Image, ImageChops, ImageStat

from agent.screen import FrameDiffer, ScreenSettings
from bench.screen import workload
from wire import tiles as wt

# libvncserver (rfbserver.c): Tight quality level -> JPEG quality and TurboJPEG subsampling.
TIGHT_JPEG_QUALITY = (15, 29, 41, 42, 62, 77, 79, 86, 92, 100)
TIGHT_SUBSAMPLING = (1, 1, 1, 2, 2, 2, 0, 0, 0, 0)  # 0: 4:4:4, 1: 4:2:0, 2: 4:2:2
PIL_SUBSAMPLING = {0: 0, 1: 2, 2: 1}  # Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:0", 2: "4:2:2"}


def _error(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def _frames(w: int, h: int, seed: int = 5):
    picture = workload.natural_picture(w + 2 * workload.PAN, h + 2 * workload.PAN, seed)
    grain = workload.grain(w, h, seed * 1000)
    out = []
    for i in (0, 1):
        angle = 2 * math.pi * i / workload.PHOTO_FRAMES
        x, y = round(workload.PAN + workload.PAN * math.cos(angle)), round(workload.PAN + workload.PAN * math.sin(angle))
        out.append(Image.blend(picture.crop((x, y, x + w, y + h)), grain, 0.06))
    return out


def _jpeg(image: Image.Image, level: int) -> tuple[int, float]:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=TIGHT_JPEG_QUALITY[level], subsampling=PIL_SUBSAMPLING[TIGHT_SUBSAMPLING[level]])
    decoded = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    return len(out.getvalue()), _error(decoded, image)


def _level(level: int) -> str:
    return f"Tight quality {level} (JPEG q{TIGHT_JPEG_QUALITY[level]} {SUBSAMPLING_NAMES[TIGHT_SUBSAMPLING[level]]})"


def compare(w: int, h: int, tight_level: int) -> str:
    """
    Ponte's and Tight's bytes and mean absolute error for one step of the
    photo workload (w × h): at the benchmark's Tight quality level, and at
    the level whose error is nearest Ponte's.
    """
    first, second = _frames(w, h)
    differ = FrameDiffer(ScreenSettings())

    def bgrx(image):
        r, g, b = image.split()
        return Image.merge("RGBA", (b, g, r, Image.new("L", image.size))).tobytes()

    canvas = wt.decode(differ.frame(0, w, h, bgrx(first)))
    frame = differ.frame(0, w, h, bgrx(second))
    canvas = wt.decode(frame, canvas)
    ponte_bytes = sum(len(t.data) for t in frame.tiles)
    ponte_error = _error(canvas, second)
    kinds = "/".join(sorted({t.encoding for t in frame.tiles}))
    jpeg = {level: _jpeg(second, level) for level in range(10)}
    nearest = min(jpeg, key=lambda level: abs(jpeg[level][1] - ponte_error))
    lines = [f"  {w}x{h}: ponte {ponte_bytes / 1e3:.1f} KB ({kinds} tiles), mean abs. error {ponte_error:.2f}"]
    for level, why in ((tight_level, "the benchmark's"), (nearest, "nearest Ponte's error")):
        size, error = jpeg[level]
        lines.append(f"  {'':>{len(str(w)) + len(str(h)) + 1}}  {_level(level)}, {why}: "
                     f"{size / 1e3:.1f} KB, mean abs. error {error:.2f}")
        if nearest == tight_level:
            break
    return "\n".join(lines)
