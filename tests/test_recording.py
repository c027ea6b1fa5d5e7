"""
Session recordings without a display: the format's round trip (frames with
their tiles as received, copies included; chat, events, pointer), files cut
short by a crash, keyframes, replay (seek, play, speed) on a test clock,
export to MP4 and WebM read back with PyAV, and the replay window under a
private Xvfb.
"""

import errno
import os
import stat

import av
from PIL import Image, ImageChops, ImageDraw, ImageStat
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from agent.screen import FrameDiffer
from console import export, recording
from console.recording import Recorder, Recording, RecordingSettings
from console.replay import Player
from wire import tiles as wt
from wire.screen import Cursor, Frame
from wire.session_core import ChatMessage, Event

START = 1_700_000_000.0


def text_picture(width: int, height: int, first_line: int = 0, extra: str = "") -> Image.Image:
    """Black text on white, a line every 14 pixels (few colours: lossless tiles)."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for i in range(height // 14 + 1):
        n = first_line + i
        draw.text((4, i * 14), f"line {n:04d} " + "abcdefghij"[n % 10] * (n % 17), fill="black")
    if extra:
        draw.rectangle((width - 90, 10, width - 10, 40), fill=(200, 30, 30))
        draw.text((width - 85, 15), extra, fill="white")
    return img


def grab(picture: Image.Image) -> bytes:
    """The B, G, R, X bytes the agent's capture gives for C{picture}."""
    return picture.tobytes("raw", "BGRX")


class Session:
    """A recorder fed by the agent's differ on a test clock; keeps the truth (each frame's decoded picture)."""

    def __init__(self, testcase, size=(320, 200), settings=RecordingSettings(), **options):
        self.clock = Clock()
        self.clock.advance(START)
        self.directory = testcase.mktemp()
        self.differ = FrameDiffer()
        self.recorder = Recorder(self.directory, self.clock, settings=settings, **options)
        self.size = size
        self.frames: list[Frame] = []
        self.truth: list[tuple[float, Image.Image]] = []  # (seconds from the start, picture after the frame)
        self._canvas = options.get("picture").copy() if options.get("picture") is not None else None

    def show(self, picture: Image.Image, at: float) -> Frame | None:
        self.clock.advance(START + at - self.clock.seconds())
        frame = self.differ.frame(0, picture.width, picture.height, grab(picture))
        if frame is not None:
            self.recorder.frame(frame)
            self.frames.append(frame)
            self._canvas = wt.decode(frame, self._canvas)
            self.truth.append((at, self._canvas.copy()))
        return frame

    def truth_at(self, at: float) -> Image.Image | None:
        shown = [p for t, p in self.truth if t <= at]
        return shown[-1] if shown else None

    def close(self, at: float) -> Recording:
        self.clock.advance(START + at - self.clock.seconds())
        self.recorder.close()
        return Recording(self.recorder.path)


def scrolling(session: Session, seconds: int = 60, step: float = 0.5) -> None:
    """Text scrolling by one line every C{step} seconds, with a changing mark now and then."""
    width, height = session.size
    for n in range(int(seconds / step)):
        session.show(text_picture(width, height, first_line=n, extra=str(n // 10)), n * step)


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


class FormatTests(unittest.TestCase):
    def test_round_trip(self):
        """Frames come back with their tiles exactly as received (copies too), with chat, events, pointer, meta."""
        s = Session(self, meta={"operator": "alice", "code": "K7QM"}, monitor_size=(320, 200))
        scrolling(s, seconds=5)
        s.recorder.chat(ChatMessage("operator", "Hello, I can see your screen now — ça va?", START + 1))
        s.recorder.event(Event(START + 2, "grants", "view, control"))
        s.recorder.cursor(17, 23, True, "arrow")
        s.recorder.cursor(-3, 5, False)
        s.close(5.0)
        records = list(Recording.read(s.recorder.path))
        header = records[0]
        self.assertEqual((header.version, header.width, header.height, header.started_at), (1, 320, 200, START))
        frames = [r.frame for r in records if isinstance(r, recording.FrameRecord)]
        self.assertEqual(frames, s.frames)
        self.assertTrue(any(t.encoding == wt.COPY for f in frames for t in f.tiles), "no copy tiles were recorded")
        self.assertTrue(records[-1] == recording.EndRecord(5.0))
        chat = [r for r in records if isinstance(r, recording.ChatRecord)]
        self.assertEqual([c.message for c in chat], [ChatMessage("operator", "Hello, I can see your screen now — ça va?",
                                                                 START + 1)])
        self.assertEqual([r.event for r in records if isinstance(r, recording.EventRecord)],
                         [Event(START + 2, "grants", "view, control")])
        self.assertEqual([r.cursor for r in records if isinstance(r, recording.CursorRecord)],
                         [Cursor(17, 23, True, "arrow"), Cursor(-3, 5, False, None)])
        self.assertEqual(records[1], recording.MetaRecord(0.0, {"operator": "alice", "code": "K7QM"}))
        indexed = Recording(s.recorder.path)
        self.assertTrue(indexed.complete)
        self.assertIsNone(indexed.damaged)
        self.assertEqual(indexed.duration, 5.0)
        self.assertEqual(len(indexed.frames), len(s.frames))
        self.assertEqual([indexed.frame(i) for i in range(len(s.frames))], s.frames)
        self.assertEqual(indexed.meta, {"operator": "alice", "code": "K7QM"})
        self.assertEqual(indexed.cursor_at(4.99), Cursor(-3, 5, False, "arrow"))  # the last shape carries on
        self.assertTrue(indexed.frames[0].full)
        self.assertFalse(any(ref.full for ref in indexed.frames[1:]))

    def test_tiles_are_not_re_encoded(self):
        """Every byte of every tile is in the file as received, and a scroll costs little more than its copies."""
        s = Session(self)
        s.show(text_picture(320, 200), 0.0)
        before = s.recorder.bytes_written
        frame = s.show(text_picture(320, 200, first_line=1), 0.1)
        written = s.recorder.bytes_written - before
        s.close(1.0)
        data = open(s.recorder.path, "rb").read()
        for tile in frame.tiles:
            if tile.encoding != wt.COPY:
                self.assertIn(tile.data, data)
        tile_bytes = sum(len(t.data) for t in frame.tiles)
        self.assertLessEqual(written, tile_bytes + 13 + 8 + 13 * len(frame.tiles))

    def test_file_mode_names_and_forced_directory(self):
        """0600 files, names that never collide (same label, same second), and the forced directory wins."""
        clock = Clock()
        clock.advance(START)
        chosen, forced = self.mktemp(), self.mktemp()
        paths = set()
        for _ in range(3):
            r = Recorder(chosen, clock, label="K7QM/../x y")
            r.close()
            paths.add(r.path)
            self.assertEqual(stat.S_IMODE(os.stat(r.path).st_mode), 0o600)
            self.assertEqual(os.path.dirname(r.path), chosen)
            self.assertNotIn("..", os.path.basename(r.path))
        self.assertEqual(len(paths), 3)
        self.assertEqual(stat.S_IMODE(os.stat(chosen).st_mode), 0o700)
        r = Recorder(chosen, clock, forced_directory=forced)
        r.close()
        self.assertEqual(os.path.dirname(r.path), forced)
        self.assertTrue(r.forced)

    def test_crash_truncated_file_reads_up_to_the_last_whole_record(self):
        """Cut anywhere (as a crash would), the file reads back every record written before the cut."""
        s = Session(self)
        scrolling(s, seconds=3)
        s.recorder.chat(ChatMessage("customer", "thanks", START + 3))
        s.close(3.5)
        whole = open(s.recorder.path, "rb").read()
        all_records = list(Recording.read(s.recorder.path))
        # The end offset of each record, from the lengths in the file.
        ends, offset = [], recording._HEADER.size
        while offset < len(whole):
            length = int.from_bytes(whole[offset : offset + 4], "big")
            offset += 9 + length + 4
            ends.append(offset)
        self.assertEqual(len(ends), len(all_records) - 1)
        cut_path = os.path.join(self.mktemp())
        for cut in sorted({recording._HEADER.size, *[e - 1 for e in ends], *[e + 5 for e in ends[:-1]],
                           *[e for e in ends[:-1]]}):
            with open(cut_path, "wb") as f:
                f.write(whole[:cut])
            complete = sum(1 for e in ends if e <= cut)
            got = list(Recording.read(cut_path))
            self.assertEqual(got, all_records[: 1 + complete], f"cut at {cut}")
            indexed = Recording(cut_path)
            self.assertFalse(indexed.complete)
            self.assertEqual(indexed.damaged is None, cut in ends or cut == recording._HEADER.size)
            self.assertEqual(len(indexed.frames), sum(1 for r in got if isinstance(r, recording.FrameRecord)))

    def test_damaged_record_stops_reading(self):
        """A record whose bytes changed (its checksum fails) ends the readable part."""
        s = Session(self)
        scrolling(s, seconds=2)
        s.close(2.0)
        data = bytearray(open(s.recorder.path, "rb").read())
        first_end = recording._HEADER.size + 9 + int.from_bytes(data[24:28], "big") + 4
        data[first_end + 20] ^= 0xFF  # inside the second record
        path = self.mktemp()
        open(path, "wb").write(bytes(data))
        indexed = Recording(path)
        self.assertEqual(len(indexed.frames), 1)
        self.assertIn("checksum", indexed.damaged)

    def test_not_a_recording(self):
        path = self.mktemp()
        open(path, "wb").write(b"GIF89a not a recording at all")
        with self.assertRaises(recording.RecordingError) as raised:
            Recording(path)
        self.assertIn("not a Ponte recording", str(raised.exception))
        open(path, "wb").write(recording._HEADER.pack(recording.MAGIC, 9, 0, 0, 0, 0.0))
        with self.assertRaises(recording.RecordingError) as raised:
            Recording(path)
        self.assertIn("version 9", str(raised.exception))

    def test_write_error_stops_the_recording(self):
        """A full disk stops the recording (on_error is told); what was written stays readable."""
        errors = []
        s = Session(self, on_error=errors.append)
        scrolling(s, seconds=1)
        real_write = os.write

        def full(fd, data):
            if fd == s.recorder._fd:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        self.patch(os, "write", full)
        s.show(text_picture(320, 200, first_line=50), 1.5)
        self.assertTrue(s.recorder.closed)
        self.assertEqual([e.errno for e in errors], [errno.ENOSPC])
        s.recorder.chat(ChatMessage("operator", "lost", START))  # nothing happens
        s.recorder.close()
        self.assertEqual(len(Recording(s.recorder.path).frames), 2)

    def test_catch_up(self):
        """catch_up records what a session core's lists gained since the last call, once."""
        s = Session(self)
        chat = [ChatMessage("operator", "one", START)]
        events = [Event(START, "verified", "")]
        s.recorder.catch_up(chat, events)
        chat.append(ChatMessage("customer", "two", START + 1))
        s.recorder.catch_up(chat, events)
        s.recorder.catch_up(chat, events)
        indexed = s.close(1.0)
        self.assertEqual([c.message.text for c in indexed.chat], ["one", "two"])
        self.assertEqual([e.event.kind for e in indexed.events], ["verified"])


class KeyframeTests(unittest.TestCase):
    def test_still_desktop_gets_no_keyframes(self):
        """A desktop where little changes costs no keyframe, however long."""
        s = Session(self)
        s.show(text_picture(320, 200), 0.0)
        for n in range(1, 20):
            picture = text_picture(320, 200)
            ImageDraw.Draw(picture).line((100, 60, 100, 72), fill="black" if n % 2 else "white")
            s.show(picture, n * 30.0)
        indexed = s.close(600.0)
        self.assertEqual(indexed.keyframes, [])

    def test_busy_screen_gets_keyframes_at_most_every_interval(self):
        s = Session(self, settings=RecordingSettings(keyframe_interval=10.0, keyframe_ratio=0.5))
        scrolling(s, seconds=60)
        indexed = s.close(60.0)
        times = [k.at for k in indexed.keyframes]
        self.assertGreaterEqual(len(times), 4)
        self.assertTrue(all(b - a >= 10.0 for a, b in zip(times, times[1:])), times)
        for ref in indexed.keyframes:
            keyframe = indexed.keyframe(ref)
            self.assertTrue(same(keyframe.picture(), s.truth[ref.frames - 1][1]))

    def test_keyframes_encoded_in_a_thread_arrive_later(self):
        """With run_in_thread, a keyframe lands after later frames but still names the frame it shows."""
        pending = []

        def run_in_thread(function, *args):
            d = defer.Deferred()
            pending.append((d, function, args))
            return d

        s = Session(self, settings=RecordingSettings(keyframe_interval=5.0, keyframe_ratio=0.1),
                    run_in_thread=run_in_thread)
        scrolling(s, seconds=6)
        self.assertEqual(len(pending), 1)
        scrolling_more = [text_picture(320, 200, first_line=100 + n) for n in range(3)]
        for n, picture in enumerate(scrolling_more):
            s.show(picture, 6.5 + n * 0.5)
        d, function, args = pending.pop()
        d.callback(function(*args))
        indexed = s.close(9.0)
        self.assertEqual(len(indexed.keyframes), 1)
        ref = indexed.keyframes[0]
        self.assertLess(ref.frames, len(indexed.frames) - 2)
        self.assertTrue(same(indexed.keyframe(ref).picture(), s.truth[ref.frames - 1][1]))
        player = Player(indexed, Clock())
        player.seek(8.9)
        self.assertTrue(same(player.picture, s.truth_at(8.9)))

    def test_recording_started_in_mid_session(self):
        """The picture shown when recording starts is the first keyframe; replay starts from it."""
        shown = text_picture(320, 200, first_line=40)
        s = Session(self, picture=shown)
        s.differ.frame(0, 320, 200, grab(shown))  # the differ has seen it: the next frame is a difference
        s.show(text_picture(320, 200, first_line=41), 2.0)
        indexed = s.close(4.0)
        self.assertEqual([k.frames for k in indexed.keyframes], [0])
        self.assertFalse(indexed.frames[0].full)
        player = Player(indexed, Clock())
        player.seek(1.0)
        self.assertTrue(same(player.picture, shown))
        player.seek(3.0)
        self.assertTrue(same(player.picture, text_picture(320, 200, first_line=41)))


class PlayerTests(unittest.TestCase):
    def setUp(self):
        self.session = Session(self, settings=RecordingSettings(keyframe_interval=10.0, keyframe_ratio=0.5))
        scrolling(self.session, seconds=60)
        self.recording = self.session.close(60.0)
        self.assertGreaterEqual(len(self.recording.keyframes), 4)

    def test_seek_lands_on_the_right_picture_from_a_keyframe(self):
        """Seeking decodes from the last keyframe before the target, not from the start."""
        for at in (45.3, 12.0, 59.9, 0.0, 30.05, 44.9):
            player = Player(self.recording, Clock())
            player.seek(at)
            self.assertTrue(same(player.picture, self.session.truth_at(at)), f"at {at}")
            target = self.recording.frames_until(at)
            keyframe = max((k.frames for k in self.recording.keyframes if k.frames <= target), default=0)
            self.assertLessEqual(player.decoded, target - keyframe, f"at {at}")
            self.assertLess(player.decoded, 25, f"at {at}")

    def test_seeks_back_and_forth(self):
        """From the current picture when it is nearer, from a keyframe when going back."""
        player = Player(self.recording, Clock())
        player.seek(40.0)
        decoded = player.decoded
        player.seek(41.5)
        self.assertEqual(player.decoded - decoded, 3)  # the frames of 40.5, 41.0 and 41.5 s, on the picture shown
        self.assertTrue(same(player.picture, self.session.truth_at(41.5)))
        used = player.keyframes_used
        player.seek(21.0)
        self.assertEqual(player.keyframes_used, used + 1)
        self.assertTrue(same(player.picture, self.session.truth_at(21.0)))
        player.seek(58.0)
        self.assertTrue(same(player.picture, self.session.truth_at(58.0)))

    def test_play_pause_and_speed(self):
        clock = Clock()
        shown = []
        finished = []
        player = Player(self.recording, clock, show=lambda picture: shown.append(picture.copy()),
                        finished=lambda: finished.append(True))
        player.seek(10.0)
        player.play()
        clock.advance(5.0)
        self.assertAlmostEqual(player.position, 15.0)
        self.assertTrue(same(player.picture, self.session.truth_at(15.0)))
        player.pause()
        clock.advance(100.0)
        self.assertAlmostEqual(player.position, 15.0)
        player.set_speed(4.0)
        player.play()
        clock.advance(2.5)
        self.assertAlmostEqual(player.position, 25.0)
        self.assertTrue(same(player.picture, self.session.truth_at(25.0)))
        player.set_speed(0.5)
        clock.advance(2.0)
        self.assertAlmostEqual(player.position, 26.0)
        for _ in range(200):
            clock.advance(0.5)
        self.assertEqual(finished, [True])
        self.assertFalse(player.playing)
        self.assertEqual(player.position, 60.0)
        self.assertTrue(same(player.picture, self.session.truth_at(60.0)))
        self.assertGreater(len(shown), 40)
        with self.assertRaises(ValueError):
            player.set_speed(8.0)
        with self.assertRaises(ValueError):
            player.set_speed(0.25)
        player.play()  # at the end: from the start
        self.assertEqual(player.position, 0.0)

    def test_chat_and_events_until(self):
        s = Session(self)
        s.show(text_picture(320, 200), 0.0)
        s.clock.advance(5)
        s.recorder.chat(ChatMessage("operator", "hello", s.clock.seconds()))
        s.clock.advance(5)
        s.recorder.event(Event(s.clock.seconds(), "ended", "by the operator"))
        player = Player(s.close(12.0), Clock())
        self.assertEqual(player.chat_until(4.0), [])
        self.assertEqual([c.message.text for c in player.chat_until(6.0)], ["hello"])
        self.assertEqual(player.events_until(9.0), [])
        player.seek(11.0)
        self.assertEqual([e.event.kind for e in player.events_until()], ["ended"])


class ExportTests(unittest.TestCase):
    def setUp(self):
        # An odd size (H.264 and VP9 need even ones) and a red mark from 2 s on.
        self.session = Session(self, size=(161, 101))
        blank = Image.new("RGB", (161, 101), "white")
        self.session.show(blank, 0.0)
        marked = blank.copy()
        ImageDraw.Draw(marked).rectangle((40, 30, 100, 80), fill=(220, 20, 20))
        self.session.show(marked, 2.0)
        self.session.recorder.cursor(5, 5, True, "arrow")
        self.recording = self.session.close(4.25)

    def check_video(self, path, codec_names):
        self.assertEqual(export.frame_count(4.25, 10), 43)
        with av.open(path) as container:
            stream = container.streams.video[0]
            self.assertIn(stream.codec_context.name, codec_names)
            pictures = [f.to_image() for f in container.decode(stream)]
        self.assertEqual(len(pictures), 43)
        self.assertEqual({p.size for p in pictures}, {(162, 102)})
        before, after = pictures[10], pictures[30]  # 1.0 s and 3.0 s
        red_before = ImageStat.Stat(before.crop((50, 40, 90, 70))).mean
        red_after = ImageStat.Stat(after.crop((50, 40, 90, 70))).mean
        self.assertGreater(red_before[1], 200)  # white
        self.assertGreater(red_after[0], 150)
        self.assertLess(red_after[1], 80)  # red

    def test_mp4(self):
        path = os.path.join(self.mktemp() + ".d", "session.mp4")
        os.makedirs(os.path.dirname(path))
        result = export.export(self.recording.path, path)
        self.assertEqual((result.frames, result.width, result.height), (43, 162, 102))
        self.assertIn(result.codec, ("libx264", "mpeg4"))
        self.check_video(path, ("h264", "mpeg4"))

    def test_webm(self):
        path = os.path.join(self.mktemp() + ".d", "session.webm")
        os.makedirs(os.path.dirname(path))
        result = export.export(self.recording.path, path)
        self.assertIn(result.codec, ("libvpx-vp9", "libvpx"))
        self.check_video(path, ("vp9", "vp8", "libvpx-vp9", "libvpx"))

    def test_fallback_codec(self):
        """Without libx264, MP4 falls back to MPEG-4 Part 2."""
        real = av.codec.Codec

        def without_x264(name, mode="r"):
            if name == "libx264":
                raise ValueError("no such codec")
            return real(name, mode)

        self.patch(av.codec, "Codec", without_x264)
        self.assertEqual(export.choose_codec("mp4"), "mpeg4")
        path = os.path.join(self.mktemp() + ".d", "fallback.mp4")
        os.makedirs(os.path.dirname(path))
        self.assertEqual(export.export(self.recording.path, path).codec, "mpeg4")
        self.check_video(path, ("mpeg4",))

    def test_job_in_a_thread_and_cancel(self):
        directory = self.mktemp()
        os.makedirs(directory)
        job = export.ExportJob(self.recording.path, os.path.join(directory, "a.webm")).start()
        self.assertTrue(job.wait(60))
        self.assertIsNone(job.error)
        self.assertEqual(job.progress, 1.0)
        self.assertEqual(job.result.frames, 43)
        job = export.ExportJob(self.recording.path, os.path.join(directory, "b.mp4"))
        job.cancel()
        job.start()
        self.assertTrue(job.wait(60))
        self.assertIsInstance(job.error, export.Cancelled)
        self.assertFalse(os.path.exists(os.path.join(directory, "b.mp4")))

    def test_errors(self):
        with self.assertRaises(export.ExportError):
            export.export(self.recording.path, "session.avi")
        empty = Recorder(self.mktemp(), Clock())
        empty.close()
        with self.assertRaises(export.ExportError):
            export.export(empty.path, os.path.join(self.mktemp(), "x.mp4"))


class ReplayWindowTests(unittest.TestCase):
    """The Tk replay window on a private Xvfb: it shows the picture, plays and seeks."""

    def setUp(self):
        from tests import xvfb  # an ImportError without Xvfb: make test installs it

        self.server = xvfb.Xvfb(1280, 800)
        self.addCleanup(self.server.stop)

    # Tk runs in its own process: an X error in Tk ends the process it is in,
    # and that must never be a trial worker.
    _SCRIPT = """
import sys, tkinter
from PIL import Image, ImageChops
from console.replay import ReplayWindow
path, truth = sys.argv[1], Image.open(sys.argv[2]).convert("RGB")
root = tkinter.Tk()
root.withdraw()
window = ReplayWindow(root, path)
for _ in range(20):
    root.update()
assert window.canvas.find_all(), "nothing drawn"
window.toggle()
assert window.player.playing, "not playing"
window.toggle()
window._slid(7.0)
root.update()
assert abs(window.player.position - 7.0) < 1e-6, window.player.position
difference = ImageChops.difference(window.player.picture.convert("RGB"), truth).getbbox()
assert difference is None, difference
root.destroy()
print("ok")
"""

    def test_window(self):
        import subprocess
        import sys

        session = Session(self, size=(320, 200))
        scrolling(session, seconds=10)
        session.close(10.0)
        truth = os.path.abspath(self.mktemp()) + ".png"
        session.truth_at(7.0).save(truth)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run(
            [sys.executable, "-c", self._SCRIPT, session.recorder.path, truth],
            env={**self.server.environment(), "PYTHONPATH": root}, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(done.stdout.strip(), "ok", done.stderr[-2000:])
