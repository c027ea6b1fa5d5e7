"""
Export of a recording (L{console.recording}) to a video file that ordinary
players open, through PyAV (FFmpeg):

  - C{.mp4}: H.264 with C{libx264} when PyAV's FFmpeg has it, else MPEG-4
    Part 2 (C{mpeg4});
  - C{.webm}: VP9 (C{libvpx-vp9}), else VP8 (C{libvpx}).

The video has a constant frame rate (10 frames a second by default): frame
C{i} shows the picture at C{i / fps} seconds, so still periods repeat the
same picture (which the codecs store in a few bytes).  It has
L{frame_count} frames.  Its size is the first frame's, rounded up to even
numbers (H.264 and VP9 in 4:2:0 need them) with black; a picture of
another size (the operator switched monitors) is scaled to fit, centred.
The pointer is drawn as an arrow.

L{export} blocks: from the Tk thread use L{ExportJob} (a thread whose
progress the window polls); from the reactor,
C{threads.deferToThread(export, ...)}.
"""

import math
import os
import threading

import attrs
import av
from PIL import Image

from console.recording import Recording
from console.replay import with_pointer
from wire import tiles as wt

DEFAULT_FPS = 10
CODECS = {
    "mp4": ("libx264", "mpeg4"),
    "webm": ("libvpx-vp9", "libvpx"),
}
# Quality settings: constant quality, fast enough for a long session.
_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "23"},
    "mpeg4": {"qscale": "4"},
    "libvpx-vp9": {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
    "libvpx": {"crf": "10", "b": "1M", "deadline": "realtime", "cpu-used": "8"},
}


class ExportError(Exception):
    """The export cannot be done; the message says why."""


class Cancelled(ExportError):
    """The export was cancelled."""


@attrs.frozen
class ExportResult:
    path: str
    codec: str
    frames: int
    width: int
    height: int
    fps: int


def frame_count(duration: float, fps: int) -> int:
    """How many frames a video of a recording of C{duration} seconds has: one at 0, then every 1/fps s."""
    return int(math.floor(duration * fps + 1e-6)) + 1


def container_format(path: str) -> str:
    """C{mp4} or C{webm}, from the file name's extension."""
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in CODECS:
        raise ExportError(f"export to .mp4 or .webm, not {path!r}")
    return extension


def choose_codec(container: str) -> str:
    """The first codec for C{container} that PyAV's FFmpeg can encode with."""
    for name in CODECS[container]:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # av raises UnknownCodecError or ValueError, by version
            continue
        return name
    raise ExportError(f"this FFmpeg has none of the encoders {', '.join(CODECS[container])}")


def _even(n: int) -> int:
    return n + (n % 2)


def _fit(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """C{picture} on a black C{size} picture: as is at the top left if it fits the size, else scaled and centred."""
    if picture.size == size:
        return picture
    width, height = size
    out = Image.new("RGB", size)
    if picture.width <= width and picture.height <= height and width - picture.width <= 1 \
            and height - picture.height <= 1:
        out.paste(picture, (0, 0))
        return out
    scale = min(width / picture.width, height / picture.height)
    scaled = picture.resize((max(int(picture.width * scale), 1), max(int(picture.height * scale), 1)),
                            Image.Resampling.BILINEAR)
    out.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return out


def export(recording_path: str, output: str, fps: int = DEFAULT_FPS, codec: str | None = None,
           pointer: bool = True, progress=None, cancelled=None) -> ExportResult:
    """
    Write the recording at C{recording_path} as the video C{output}
    (C{.mp4} or C{.webm}).  C{progress(fraction)} is called now and then;
    when C{cancelled()} becomes true the partial file is removed and
    L{Cancelled} raised.
    """
    if not 1 <= fps <= 60:
        raise ExportError("the frame rate must be 1 to 60 frames a second")
    container_name = container_format(output)
    codec = codec or choose_codec(container_name)
    recording = Recording(recording_path)
    if not recording.frames and not recording.keyframes:
        raise ExportError("the recording holds no picture")
    first = recording.keyframes[0] if recording.keyframes and recording.keyframes[0].frames == 0 else None
    if first is not None:
        picture = recording.keyframe(first).picture()
        source_size = picture.size
    else:
        picture = None
        source_size = (recording.frames[0].width, recording.frames[0].height)
    size = (_even(source_size[0]), _even(source_size[1]))
    total = frame_count(recording.duration, fps)
    try:
        container = av.open(output, "w")
    except Exception as e:
        raise ExportError(f"cannot write {output}: {e}") from e
    try:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = dict(_OPTIONS.get(codec, {}))
        applied, video_frame, shown = 0, None, None
        for i in range(total):
            if cancelled is not None and cancelled():
                raise Cancelled("the export was cancelled")
            at = i / fps
            count = recording.frames_until(at)
            while applied < count:
                picture = wt.decode(recording.frame(applied), picture)
                applied += 1
            cursor = recording.cursor_at(at) if pointer else None
            key = (applied, cursor)
            if video_frame is None or key != shown:
                if picture is None:
                    image = Image.new("RGB", size)
                else:
                    image = _fit(with_pointer(picture, cursor), size)
                video_frame = av.VideoFrame.from_image(image)
                shown = key
            video_frame.pts = i
            for packet in stream.encode(video_frame):
                container.mux(packet)
            if progress is not None and i % fps == 0:
                progress(i / total)
        for packet in stream.encode(None):
            container.mux(packet)
        container.close()
    except BaseException:
        container.close()
        try:
            os.remove(output)
        except OSError:
            pass
        raise
    if progress is not None:
        progress(1.0)
    return ExportResult(output, codec, total, size[0], size[1], fps)


class ExportJob:
    """
    L{export} in a thread of its own.  Poll C{done}, C{progress} (0–1),
    C{error} and C{result} from any thread (the Tk window does it with
    C{after}); C{cancel()} stops it.
    """

    def __init__(self, recording_path: str, output: str, **options):
        self.recording_path = recording_path
        self.output = output
        self.options = options
        self.progress = 0.0
        self.result: ExportResult | None = None
        self.error: Exception | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ponte-export", daemon=True)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def start(self) -> "ExportJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the export is over (not on the Tk or reactor thread)."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            self.result = export(self.recording_path, self.output, progress=self._progress,
                                 cancelled=self._cancel.is_set, **self.options)
        except Exception as e:
            self.error = e
        finally:
            self._done.set()

    def _progress(self, fraction: float) -> None:
        self.progress = fraction
