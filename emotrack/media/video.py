"""Video decoding with PyAV (FFmpeg's libraries, shipped in the ``av`` wheel), and folders of frames.

Two frame sources give the same arrays: :func:`read_video` decodes a video file (its frame rate is
the container's); :func:`read_frames_dir` reads a folder of numbered images, for corpora that ship
clips as frames (AFEW-VA: ``NNN/00000.png ...``), at a rate the corpus spec states.

Phone videos need two more facts, which :func:`video_timing` gives before decoding: their frame rate
varies (every frame carries its own time stamp, which :func:`iter_frames` yields; the nominal rate is the
most common one, not the container's average), and the picture is stored turned, with a display matrix
saying how to turn it upright (:func:`iter_frames` yields frames upright, as a player shows them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoError(RuntimeError):
    """A video file that is missing, unreadable or holds no video frames."""


def _iso_boxes(path: Path) -> list[tuple[str, int, int]] | None:
    """The top-level boxes of an ISO base media file (MP4, MOV) as (type, offset, declared size), or
    None when the file does not start like one."""
    import struct

    boxes, size_on_disk = [], path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size_on_disk:
            fh.seek(offset)
            size, kind = struct.unpack(">I4s", fh.read(8))
            if size == 1 and offset + 16 <= size_on_disk:
                size = struct.unpack(">Q", fh.read(8))[0]
            elif size == 0:
                size = size_on_disk - offset
            if size < 8 or not all(32 <= b < 127 for b in kind):
                break
            boxes.append((kind.decode("latin-1"), offset, size))
            offset += size
    return boxes if boxes and boxes[0][0] == "ftyp" else None


def _unreadable(path: Path, err: Exception) -> VideoError:
    """Why FFmpeg cannot open a file: empty, a cut MP4 (its index lost), or not a video at all."""
    size = path.stat().st_size
    if size == 0:
        return VideoError(f"video {path} is empty (0 bytes); copy the session's video again from the corpus")
    boxes = _iso_boxes(path)
    if boxes is not None:
        kind, offset, declared = boxes[-1]
        if offset + declared > size or "moov" not in {b[0] for b in boxes}:
            return VideoError(f"video {path} is truncated: the file ends after {size} bytes, inside its "
                              f"{kind!r} box, before the index ('moov') of its frames, so no frame can be "
                              f"decoded (last good time: none); copy the session's video again from the corpus")
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = head and all(32 <= b < 127 or b in b"\t\r\n" for b in head)
    what = "text" if text else "data FFmpeg does not recognise as any video format"
    return VideoError(f"video {path} is not a video file: it holds {what} ({err}); put the session's video "
                      f"file there (a file renamed to .mp4 does not become a video)")


def _open(path: Path):
    import av

    if not path.is_file():
        raise VideoError(f"video {path} does not exist; check the spec's video.path and --root")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise _unreadable(path, err) from err
    if not container.streams.video:
        what = "only sound" if container.streams.audio else "no stream FFmpeg can decode"
        container.close()
        raise VideoError(f"{path} holds no video stream ({what}); put the session's video file there")
    return container


def video_fps(path: str | Path) -> float:
    """The average frame rate the container declares for its first video stream."""
    container = _open(Path(path))
    try:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else 0.0
    finally:
        container.close()


@dataclass(frozen=True)
class VideoTiming:
    """When a video's frames are shown, from its packets' time stamps (`video_timing`).

    Attributes:
        rate: the nominal frame rate (frames/s): the container's average where the frames keep one
            rate, else one over the most common time between frames (a phone's 30 fps with stretches
            at 24 is 30).
        variable: the times between frames differ by more than 2% (and one time stamp tick): the video
            is variable frame rate, and only its time stamps say when a frame is shown.
        slowest, fastest: the lowest and highest rates between two frames (frames/s).
        frames: the frames counted.
    """

    rate: float
    variable: bool
    slowest: float
    fastest: float
    frames: int


def video_timing(path: str | Path) -> VideoTiming:
    """The frame timing of a video's first video stream, from its packets (demuxed, not decoded).

    Raises:
        VideoError: naming the file, when it cannot be opened or holds no video stream, or its packets
            carry no time stamps and it declares no frame rate.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        tick = float(stream.time_base) if stream.time_base else 0.0
        stamps = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
        declared = float(stream.average_rate) if stream.average_rate else 0.0
    except av.error.FFmpegError as err:
        raise VideoError(f"video {path} is truncated or damaged: its packets cannot be read ({err}); copy "
                         f"the session's video again from the corpus") from err
    finally:
        container.close()
    times = np.unique(np.asarray(stamps, np.float64)) * tick
    steps = np.diff(times)
    steps = steps[steps > 0]
    if not len(steps):
        if declared <= 0:
            raise VideoError(f"{path}: frames carry no time stamps and no frame rate is declared")
        return VideoTiming(declared, False, declared, declared, len(times))
    values, counts = np.unique(np.round(steps / max(tick, 1e-9)), return_counts=True)
    typical = float(values[np.argmax(counts)]) * max(tick, 1e-9)
    variable = bool(np.any(np.abs(steps - typical) > max(0.02 * typical, 1.5 * tick)))
    rate = 1.0 / typical if variable or declared <= 0 else declared
    return VideoTiming(rate, variable, float(1.0 / steps.max()), float(1.0 / steps.min()), len(times))


def display_rotation(path: str | Path) -> int:
    """How many degrees counter-clockwise a video's picture is turned for display (its first frame's
    display matrix; 0 where it has none)."""
    import av

    container = _open(Path(path))
    try:
        frame = next(container.decode(container.streams.video[0]), None)
        return int(frame.rotation or 0) if frame is not None else 0
    except av.error.FFmpegError:
        return 0  # decoding proper names the fault
    finally:
        container.close()


def upright(frame) -> np.ndarray:
    """A decoded PyAV video frame as an RGB uint8 (H, W, 3) array turned as its display matrix says
    (a phone video stored sideways comes out upright, as a player shows it).

    Raises:
        VideoError: the display matrix turns the picture by other than a multiple of 90 degrees.
    """
    image = frame.to_ndarray(format="rgb24")
    turn = int(frame.rotation or 0)
    if turn % 90:
        raise VideoError(f"a frame is to be shown turned by {turn} degrees, not a multiple of 90; re-encode "
                         f"the video upright, e.g. `ffmpeg -i IN -vf transpose=1 OUT.mp4`")
    # `rotation` is counter-clockwise, as np.rot90 turns.
    return np.ascontiguousarray(np.rot90(image, (turn // 90) % 4)) if turn % 360 else image


def _declared_end(stream) -> float | None:
    """Where a video stream says it ends, in seconds of its time stamps (None when it does not say)."""
    if not stream.duration or not stream.time_base:
        return None
    return float((stream.start_time or 0) + stream.duration) * float(stream.time_base)


def iter_frames(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """Decode a video frame by frame.

    Yields:
        (time in seconds, RGB frame uint8 (H, W, 3)), in presentation order: each frame at the time its
        own time stamp gives (variable frame-rate video keeps its true times) and turned upright as its
        display matrix says (`upright`).

    Raises:
        VideoError: naming the file, when it cannot be opened (empty, not a video, cut before its index)
            or is truncated: decoding fails part-way, or its frames stop more than two frames (and 0.1 s)
            before the end its stream declares; the message gives the last good time.
    """
    import av

    path = Path(path)
    container = _open(path)
    last = None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate) if stream.average_rate else None
        index = 0
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time is not None:
                t = float(frame.time)
            elif rate:
                t = index / rate
            else:
                raise VideoError(f"{path}: frames carry no time stamps and no frame rate is declared")
            yield t, upright(frame)
            last = t
            index += 1
        end = _declared_end(stream)
        step = 1.0 / rate if rate else 0.0
        if end is not None and last is not None and end - (last + step) > max(2 * step, 0.1):
            raise VideoError(f"video {path} is truncated: its frames stop at {last:.2f} s (the last good time) "
                             f"but its stream declares {end:.2f} s; copy the session's video again from "
                             f"the corpus")
    except av.error.FFmpegError as err:
        good = f"{last:.2f} s" if last is not None else "none, no frame decoded"
        raise VideoError(f"video {path} is truncated or damaged: decoding failed after its last good time "
                         f"({good}) ({err}); copy the session's video again from the corpus") from err
    finally:
        container.close()


def read_video(path: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode a whole video into memory.

    Returns:
        frames uint8 (N, H, W, 3), times float64 (N,) in seconds starting at 0, fps.
    """
    times, frames = [], []
    for t, frame in iter_frames(path):
        times.append(t)
        frames.append(frame)
    if not frames:
        raise VideoError(f"video {path} holds no decodable frames")
    times_arr = np.asarray(times, dtype=np.float64)
    times_arr -= times_arr[0]
    return np.stack(frames), times_arr, video_fps(path)


def read_frames_dir(path: str | Path, fps: float, pattern: str = "*.png") -> tuple[np.ndarray, np.ndarray, float]:
    """Read a folder of frames stored as numbered images (``00000.png``, ``00001.png``, ...).

    A folder has no frame rate of its own: ``fps`` is the rate of the clip the frames come from.
    When every file name is a number, frame ``k`` (``0000k.png``) is at ``k / fps`` seconds, so that
    per-frame ratings keyed by the same numbers line up even when a clip does not start at 0 or skips
    a frame; otherwise frames are taken in name order, ``1 / fps`` apart.

    Returns:
        frames uint8 (N, H, W, 3), times float64 (N,) in seconds, fps.
    Raises:
        VideoError: naming the folder when it is missing or empty, or an image when it cannot be read
            or its size differs from the first frame's.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_dir():
        raise VideoError(f"frame folder {path} does not exist; check the spec's video.path and --root")
    if not fps or fps <= 0:
        raise VideoError(f"frame folder {path}: a positive frame rate is needed, got {fps}")
    files = [p for p in path.glob(pattern) if p.is_file() and not p.name.startswith(".")]
    if not files:
        raise VideoError(f"frame folder {path} holds no frame matching {pattern!r}")
    numbered = all(p.stem.isdigit() for p in files)
    files.sort(key=(lambda p: int(p.stem)) if numbered else (lambda p: p.name))
    frames = []
    for f in files:
        try:
            with Image.open(f) as image:
                frame = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise VideoError(f"frame {f} cannot be read ({err})") from err
        if frames and frame.shape != frames[0].shape:
            raise VideoError(f"frame {f} is {frame.shape[1]}x{frame.shape[0]} but the first frame of {path} is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}")
        frames.append(frame)
    index = np.array([int(p.stem) for p in files] if numbered else range(len(files)), dtype=np.float64)
    return np.stack(frames), index / float(fps), float(fps)


# x264 settings that make an encode a function of its input alone. One thread: the stream does not depend
# on how many cores there are. No MB-tree: x264's AVX-512 MB-tree code reads heap memory it has not
# written, so with it the bitstream (from the first frame on) depended on what the process had
# freed before, and the same frames gave different bytes in about half the encodes after numpy work
# (2 to 8 of 16 synthetic sessions per run; none with MB-tree off, with x264 limited to AVX2, or with
# every fresh heap block filled with one byte by glibc's MALLOC_PERTURB_). At the same CRF the files are
# about a third larger and the decoded frames as close to the input (synthetic faces, CRF 12).
_X264_OPTIONS = {"preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}


def write_video(path: str | Path, frames, fps: float, codec: str = "libx264", quality: int | None = None,
                audio: np.ndarray | None = None, audio_rate: int = 16000) -> Path:
    """Encode RGB frames (uint8 (H, W, 3) each, an array or any iterable) into a video file with PyAV,
    at a constant ``fps``, written under a temporary name and renamed when complete.

    Args:
        codec: ``libx264`` (H.264, in .mp4) or ``mpeg4`` (MPEG-4 part 2, what Xvid writes, in .avi).
        quality: H.264's CRF (0-51, lower is better; default 18) or MPEG-4's qscale (1-31; default 2).
        audio: a mono sound track, float (N,) in [-1, 1] at ``audio_rate``, muxed with the frames: AAC
            in an .mp4, 16-bit PCM otherwise (an .avi).
    Returns:
        ``path``. The same frames, audio and options give the same bytes, run after run (see
        ``_X264_OPTIONS``).
    """
    from fractions import Fraction

    import av

    from emotrack.files import atomic_path

    path = Path(path)
    if codec not in ("libx264", "mpeg4"):
        raise ValueError(f"codec must be 'libx264' or 'mpeg4', not {codec!r}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path, keep_suffix=True) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream, sound, written = None, None, 0

            def write_audio(until_sample):
                # 1024-sample frames (AAC's frame size), interleaved with the video by time.
                nonlocal written
                while written < min(until_sample, len(audio)):
                    piece = np.asarray(audio[written:written + 1024], np.float32)
                    pcm = piece if sound.format.name == "fltp" else (np.clip(piece, -1, 1) * 32767).astype("<i2")
                    chunk = av.AudioFrame.from_ndarray(pcm[None, :], format=sound.format.name, layout="mono")
                    chunk.sample_rate, chunk.pts, chunk.time_base = audio_rate, written, Fraction(1, audio_rate)
                    container.mux(sound.encode(chunk))
                    written += len(piece)

            for k, image in enumerate(frames):
                if stream is None:
                    stream = container.add_stream(codec, rate=rate)
                    stream.height, stream.width = image.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.options = ({"crf": str(18 if quality is None else quality), **_X264_OPTIONS}
                                      if codec == "libx264" else {"qscale": str(2 if quality is None else quality)})
                    if audio is not None:
                        mp4 = path.suffix.lower() in (".mp4", ".m4v", ".mov")
                        sound = container.add_stream("aac" if mp4 else "pcm_s16le", rate=audio_rate, layout="mono")
                        if mp4:
                            sound.bit_rate = 64000
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts, frame.time_base = k, 1 / rate
                container.mux(stream.encode(frame))
                if sound is not None:
                    write_audio(int(round((k + 1) / float(rate) * audio_rate)))
            if stream is None:
                raise ValueError(f"no frames to write to {path}")
            if sound is not None:
                write_audio(len(audio))
                container.mux(sound.encode(None))
            container.mux(stream.encode(None))
    return path
