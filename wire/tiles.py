"""
Screen tile encodings and their decoder, shared by the agent (which encodes
the changed parts of its screen) and the console (which paints them).

A L{wire.screen.Frame} is a list of tiles applied in order to an RGB canvas
of the frame's size:

  - C{raw}: the tile's pixels as RGB bytes, row by row (width × height × 3);
  - C{png}, C{jpeg}, C{webp}: an image file of exactly the tile's size;
  - C{copy}: the tile is copied from another place of the canvas I{as it was
    before this frame} (like VNC's CopyRect), for scrolled text and moved
    windows.  The data is the source's x and y, two big-endian unsigned
    integers of 16 bits (4 bytes) or of 32 bits (8 bytes).

Everything a peer sends is checked before it is painted; anything wrong
raises L{TileError} and leaves no half-decoded image behind.
"""

import io
import struct
import warnings
import zlib

from PIL import Image

from wire.screen import ENCODINGS, Frame, Tile

RAW = "raw"
PNG = "png"
JPEG = "jpeg"
WEBP = "webp"
COPY = "copy"
LOSSLESS = (RAW, PNG)
LOSSY = (JPEG, WEBP)
# Which file format Pillow must find in the data of each image encoding.
IMAGE_FORMATS = {PNG: "PNG", JPEG: "JPEG", WEBP: "WEBP"}
# No frame is larger than this on either side (8K and then some).
MAX_SIDE = 16384


class TileError(ValueError):
    """A tile (or a frame) that cannot be painted; the message says why."""


def encode_tile(image: Image.Image, kind: str, quality: int = 80, compress_level: int = 6,
                subsampling: str = "4:2:0") -> bytes:
    """
    The data of a tile of encoding C{kind} showing C{image} (an RGB image
    of the tile's size; a palette or grey image is written as such in a PNG).  C{quality} (1–100) is used by the lossy
    encodings (JPEG with C{subsampling}), C{compress_level} (0–9) by PNG.  Use L{copy_data} for
    C{copy} tiles.
    """
    if image.mode != "RGB" and not (kind == PNG and image.mode in ("P", "L")):
        image = image.convert("RGB")
    if kind == RAW:
        return image.tobytes()
    if kind == PNG and image.mode == "RGB":
        return png_image(image.width, image.height, image.tobytes(), compress_level=compress_level)
    out = io.BytesIO()
    if kind == PNG:
        image.save(out, "PNG", compress_level=compress_level)
    elif kind == JPEG:
        image.save(out, "JPEG", quality=quality, subsampling=subsampling)
    elif kind == WEBP:
        image.save(out, "WEBP", quality=quality, method=0)
    else:
        raise TileError(f"cannot encode a tile as {kind!r}")
    return out.getvalue()


def png_image(width: int, height: int, samples: bytes, palette: bytes | None = None, compress_level: int = 6) -> bytes:
    """
    A PNG file of 8-bit samples, row after row: RGB (3 bytes a pixel) or,
    given C{palette} (R, G, B bytes of at most 256 colours), palette
    indices (a byte a pixel).  The rows are not filtered: on screen
    content (text, flat areas) that compresses better than Pillow's
    adaptive filters, at a third of the time.
    """
    stride = width * (3 if palette is None else 1)
    if len(samples) != stride * height or not 0 < width <= MAX_SIDE or not 0 < height <= MAX_SIDE:
        raise TileError(f"{len(samples)} bytes of samples for a {width}×{height} PNG")
    if palette is not None and not (len(palette) % 3 == 0 and 0 < len(palette) <= 768):
        raise TileError(f"a palette of {len(palette)} bytes")
    view = memoryview(samples)
    rows = b"".join(b"\0" + view[i : i + stride] for i in range(0, stride * height, stride))
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if palette is None else 3, 0, 0, 0)
    chunks = [(b"IHDR", header)]
    if palette is not None:
        chunks.append((b"PLTE", palette))
    chunks += [(b"IDAT", zlib.compress(rows, compress_level)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks)


def copy_data(x: int, y: int) -> bytes:
    """The data of a C{copy} tile whose source's top left corner is (x, y)."""
    if x < 0 or y < 0:
        raise TileError("a copy source outside the frame")
    if x < 0x10000 and y < 0x10000:
        return struct.pack(">HH", x, y)
    return struct.pack(">II", x, y)


def copy_source(data: bytes) -> tuple[int, int]:
    """The source corner (x, y) of a C{copy} tile's data."""
    if len(data) == 4:
        return struct.unpack(">HH", data)
    if len(data) == 8:
        return struct.unpack(">II", data)
    raise TileError(f"copy data of {len(data)} bytes (4 or 8 expected)")


def check_tile(tile: Tile, width: int, height: int) -> None:
    """Raise L{TileError} unless C{tile} is well formed and inside a C{width} × C{height} frame."""
    if tile.encoding not in ENCODINGS:
        raise TileError(f"unknown tile encoding {tile.encoding!r}")
    if tile.width <= 0 or tile.height <= 0:
        raise TileError(f"an empty tile ({tile.width}×{tile.height})")
    if tile.x < 0 or tile.y < 0 or tile.x + tile.width > width or tile.y + tile.height > height:
        raise TileError(f"a tile at {tile.x},{tile.y} of {tile.width}×{tile.height} outside the {width}×{height} frame")
    if tile.encoding == COPY:
        sx, sy = copy_source(tile.data)
        if sx + tile.width > width or sy + tile.height > height:
            raise TileError(f"a copy from {sx},{sy} of {tile.width}×{tile.height} outside the {width}×{height} frame")
    elif tile.encoding == RAW and len(tile.data) != tile.width * tile.height * 3:
        raise TileError(
            f"a raw tile of {tile.width}×{tile.height} with {len(tile.data)} bytes "
            f"({tile.width * tile.height * 3} expected)")


def decode_tile(tile: Tile) -> Image.Image:
    """The RGB pixels of one image tile (not C{copy}), checked to be of the tile's size."""
    if tile.encoding == RAW:
        if len(tile.data) != tile.width * tile.height * 3:
            raise TileError(f"a raw tile of {tile.width}×{tile.height} with {len(tile.data)} bytes")
        return Image.frombytes("RGB", (tile.width, tile.height), tile.data)
    expected = IMAGE_FORMATS.get(tile.encoding)
    if expected is None:
        raise TileError(f"no pixels in a {tile.encoding!r} tile")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(tile.data), formats=[expected])
            # The header's size is checked before any pixel is decompressed.
            if image.size != (tile.width, tile.height):
                raise TileError(
                    f"a {tile.encoding} tile of {tile.width}×{tile.height} holding a "
                    f"{image.size[0]}×{image.size[1]} image")
            if getattr(image, "n_frames", 1) != 1:
                raise TileError(f"an animated {tile.encoding} tile")
            image.load()
            return image.convert("RGB") if image.mode != "RGB" else image
    except TileError:
        raise
    except Exception as e:  # Pillow's errors for bad data are of many types
        raise TileError(f"a {tile.encoding} tile that does not decode: {e}") from None


def decode(frame: Frame, canvas: Image.Image | None = None) -> Image.Image:
    """
    Apply C{frame}'s tiles to C{canvas} (an RGB image holding the previous
    frames) and return it.  A missing canvas, or one of another size, is
    replaced by a new one of the frame's size (black, with the old picture
    in its top left corner).  Every tile is checked and decoded before the
    canvas is touched, so a bad frame leaves it as it was.
    """
    width, height = frame.width, frame.height
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise TileError(f"a frame of {width}×{height} pixels")
    for tile in frame.tiles:
        check_tile(tile, width, height)
    pictures = [None if t.encoding == COPY else decode_tile(t) for t in frame.tiles]
    if canvas is None or canvas.size != (width, height) or canvas.mode != "RGB":
        fresh = Image.new("RGB", (width, height))
        if canvas is not None:
            fresh.paste(canvas.convert("RGB"), (0, 0))
        canvas = fresh
    before = canvas.copy() if any(p is None for p in pictures) else None
    for tile, picture in zip(frame.tiles, pictures):
        if picture is None:
            sx, sy = copy_source(tile.data)
            picture = before.crop((sx, sy, sx + tile.width, sy + tile.height))
        canvas.paste(picture, (tile.x, tile.y))
    return canvas
