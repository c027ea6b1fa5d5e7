#!/usr/bin/env python3
"""
Recording size benchmark: bytes per minute of the console's recording
format (C{console.recording}) at 1920×1080, without a display.

Each workload (C{bench/recording/workloads.py}) is grabbed at 10 frames a
second as the agent grabs its screen (B, G, R, X bytes), turned into frames
by the agent's own L{agent.screen.FrameDiffer} (changed tiles, scrolled
rows as C{copy} tiles, nothing when nothing changed), and written with
a pointer record after each frame (as the agent sends a C{CursorUpdate}
after each frame) through a L{console.recording.Recorder} with its default
settings (keyframes included) on a test clock.  Then seeks are timed with
L{console.replay.Player}.

    make bench-recording
    .venv/bin/python bench/recording/run.py [--seconds 60] [--keep DIR]
"""

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from twisted.internet.task import Clock  # noqa: E402

from agent.screen import FrameDiffer  # noqa: E402
from wire import tiles as wt  # noqa: E402
from bench.recording import workloads  # noqa: E402
from console.recording import Recorder, Recording  # noqa: E402
from console.replay import Player  # noqa: E402
from wire.session_core import ChatMessage, Event  # noqa: E402

TARGETS = {
    "support": (372 * 1000, "a typical support minute", "LogMeIn's published 372 KB per minute"),
    "scrolling": (3 * 1000 * 1000, "a minute of continuous scrolling", "3 MB per minute"),
    "fast-scrolling": (None, "a minute of fast continuous scrolling", "no target"),
}
START = 1_700_000_000.0


def bands(tiles) -> list[tuple[int, int, int, int]]:
    """The bounding boxes of the groups of tiles whose rows overlap or touch (e.g. newly exposed lines)."""
    boxes: list[list[int]] = []
    for t in sorted(tiles, key=lambda t: t.y):
        if boxes and t.y <= boxes[-1][3]:
            box = boxes[-1]
            box[0], box[2], box[3] = min(box[0], t.x), max(box[2], t.x + t.width), max(box[3], t.y + t.height)
        else:
            boxes.append([t.x, t.y, t.x + t.width, t.y + t.height])
    return [tuple(b) for b in boxes]


def record(name: str, steps, directory: str, seconds: float) -> dict:
    clock = Clock()
    clock.advance(START)
    differ = FrameDiffer()
    recorder = Recorder(directory, clock, label=name, meta={"workload": name}, monitor_size=(1920, 1080))
    encodings: Counter = Counter()
    tiles: Counter = Counter()
    frames = diff_time = 0
    first = 0
    # On frames with copies (scrolls): the bytes of the image tiles as sent, and
    # of the same areas (each band of rows they cover) as one PNG each, at the
    # agent's level 1.
    scrolled = [0, 0, 0]
    steps_seen = 0
    for at, picture, pointer in steps:
        clock.advance(START + at - clock.seconds())
        started = time.perf_counter()
        frame = differ.frame(0, picture.width, picture.height, picture.tobytes("raw", "BGRX"))
        diff_time += time.perf_counter() - started
        steps_seen += 1
        if frame is not None:
            frames += 1
            for t in frame.tiles:
                encodings[t.encoding] += len(t.data)
                tiles[t.encoding] += 1
            images = [t for t in frame.tiles if t.encoding != wt.COPY]
            if images and len(images) < len(frame.tiles):
                scrolled[0] += 1
                scrolled[1] += sum(len(t.data) for t in images)
                for box in bands(images):
                    scrolled[2] += len(wt.encode_tile(picture.crop(box), wt.PNG, compress_level=1))
            before = recorder.bytes_written
            recorder.frame(frame)
            if frames == 1:
                first = recorder.bytes_written - before
            recorder.cursor(*pointer, True, "arrow" if frames == 1 else None)
        if steps_seen in (50, 300):
            recorder.chat(ChatMessage("operator" if steps_seen == 50 else "customer", "the printer queue again?",
                                      clock.seconds()))
            recorder.event(Event(clock.seconds(), "grants", "view, control"))
    clock.advance(START + seconds - clock.seconds())
    recorder.close()
    size = os.path.getsize(recorder.path)
    recording = Recording(recorder.path)
    keyframe_bytes = sum(k.length for k in recording.keyframes)
    return {
        "name": name, "path": recorder.path, "bytes": size, "per_minute": size * 60.0 / seconds,
        "frames": frames, "steps": steps_seen, "tiles": tiles, "encodings": encodings,
        "first": first, "scrolled": scrolled, "keyframes": len(recording.keyframes), "keyframe_bytes": keyframe_bytes,
        "diff_ms": 1000 * diff_time / max(steps_seen, 1), "recording": recording,
    }


def seeks(recording: Recording, count: int = 20) -> tuple[float, float, float]:
    """Mean and largest seek time (ms) to random places, and mean frames decoded per seek."""
    rnd = random.Random(1)
    times, decoded = [], 0
    for _ in range(count):
        player = Player(recording, Clock())
        at = rnd.uniform(0, recording.duration)
        started = time.perf_counter()
        player.seek(at)
        times.append(1000 * (time.perf_counter() - started))
        decoded += player.decoded
    return sum(times) / len(times), max(times), decoded / count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each workload (default 60)")
    parser.add_argument("--lines", type=int, default=1,
                        help="lines (20 px) scrolled per frame in the scrolling workload (default 1: 200 px/s)")
    parser.add_argument("--fast-lines", type=int, default=3,
                        help="lines per frame of an extra, faster scrolling run without a target (default 3; 0: none)")
    parser.add_argument("--keep", help="write the recordings to this directory and keep them")
    options = parser.parse_args(argv)
    directory = options.keep or tempfile.mkdtemp(prefix="ponte-bench-recording-")
    workload_steps = {
        "support": workloads.support_minute(seconds=options.seconds),
        "scrolling": workloads.scrolling_minute(seconds=options.seconds, lines_per_frame=options.lines),
    }
    if options.fast_lines:
        workload_steps["fast-scrolling"] = workloads.scrolling_minute(
            seconds=options.seconds, lines_per_frame=options.fast_lines)
    print(f"Recording benchmark: 1920×1080, grabbed at 10 frames/s, {options.seconds:g} s per workload")
    print(f"(python {sys.version.split()[0]}, results in {directory})\n")
    misses = 0
    for name, steps in workload_steps.items():
        started = time.perf_counter()
        result = record(name, steps, directory, options.seconds)
        elapsed = time.perf_counter() - started
        target, what, source = TARGETS[name]
        if target is None:
            verdict = "(informational)"
        else:
            verdict = "PASS" if result["per_minute"] < target else "MISS"
            misses += verdict == "MISS"
        mean, worst, decoded = seeks(result["recording"])
        print(f"== {name}: {what}")
        print(f"   {result['frames']} frames of {result['steps']} grabs; "
              f"tiles: " + ", ".join(f"{k} {v}" for k, v in sorted(result["tiles"].items())))
        print("   tile bytes: " + ", ".join(f"{k} {v / 1000:.1f} KB" for k, v in sorted(result["encodings"].items())))
        overhead = result["bytes"] - sum(result["encodings"].values()) - result["keyframe_bytes"]
        print(f"   keyframes: {result['keyframes']}, {result['keyframe_bytes'] / 1000:.1f} KB; "
              f"the format's own bytes (headers, pointer, chat, events) {overhead / 1000:.1f} KB")
        wanted = f"target < {target / 1000:.0f} KB, {source}" if target else source
        print(f"   file: {result['bytes'] / 1000:.1f} KB → {result['per_minute'] / 1000:.1f} KB per minute "
              f"({wanted}): {verdict}")
        print(f"   of which the first, whole picture {result['first'] / 1000:.1f} KB (sent once a session)")
        count, sent, one = result["scrolled"]
        if count > result["frames"] // 2:
            print(f"   frames with copies: image tiles {sent / count / 1000:.1f} KB a frame as the agent sends them; "
                  f"the same rows as one PNG a band would be {one / count / 1000:.1f} KB")
        print(f"   seek to a random time: mean {mean:.0f} ms, worst {worst:.0f} ms, "
              f"{decoded:.1f} frames decoded on average")
        print(f"   (differ {result['diff_ms']:.0f} ms a grab; workload {elapsed:.0f} s in all)\n")
    if not options.keep:
        for entry in os.listdir(directory):
            os.remove(os.path.join(directory, entry))
        os.rmdir(directory)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
