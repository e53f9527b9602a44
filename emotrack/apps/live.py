"""Prediction on a live source: a camera (``/dev/video0``, PyAV's v4l2 input), a network stream (rtsp,
http, udp, ...) or ``-``, an MPEG-TS stream on standard input. Each frame's row is written, and flushed,
as soon as it is known, so that another program can read the CSV as it grows; the end of the stream or
Ctrl-C closes it with every row of the frames read written.

The face pipeline and the model are the run's, as for a file (`emotrack.apps.predict`), with what a live
stream changes:

- The model runs on blocks of one training clip's length (``data.window`` input steps for frame-level
  models, each block from a fresh state, as training saw its clips; clip-level models on their clip grid,
  `emotrack.inference.streaming.BlockPredictor`), not on pieces of ``evaluate.chunk`` steps: a row waits
  for its block, about one clip span (a clip-level model's, two: its block and the clips that reach past
  it), not for ten seconds of video.
- The face tracker works in chunks of ``every`` frames, and its key frames come at most every
  :data:`LIVE_EVERY` frames (preprocessing's `emotrack.faces.track.DEFAULT_EVERY`, 30, would hold a
  second of video at 30 fps before the first face of a chunk is known).
- The annotator delay is undone as for a file: a frame's row holds the model's output of the frame
  ``label_delay_s`` before it (`emotrack.data.align.undo_label_delay`), which is already known then.
- The post-processing chain fitted on devel is not applied: its filters and its centring look at the whole
  sequence, which a live stream has not got. The rows are the model's, delay-corrected, faces held.
- Models that take the sound track are refused: their audio is normalised over the whole recording.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from emotrack.media.video import VideoError, upright

#: The most frames between two key frames of the face tracker on a live source (see the module docstring).
LIVE_EVERY = 3
#: URL schemes read as live streams.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp")


def is_live(source: str) -> bool:
    """Whether ``source`` names a live source: ``-`` (standard input), a ``/dev/video*`` camera or a URL
    of one of `STREAM_SCHEMES`."""
    source = str(source)
    scheme = source.split("://", 1)[0].lower() if "://" in source else None
    return source == "-" or source.startswith("/dev/video") or scheme in STREAM_SCHEMES


def open_live(source: str):
    """The PyAV container of a live source (see `is_live`).

    Raises:
        VideoError: naming the source, when it cannot be opened or holds no video stream.
    """
    import av

    if source == "-":
        # Half a second of the stream to learn its format: the rows wait for no more.
        name, kwargs = "pipe:0", {"format": "mpegts", "options": {"analyzeduration": "500000"}}
        what = "standard input (an MPEG-TS stream is expected there, e.g. `ffmpeg ... -f mpegts -`)"
    elif source.startswith("/dev/video"):
        name, kwargs = source, {"format": "v4l2"}
        what = f"camera {source} (is it connected, and may this user read it?)"
    else:
        name, kwargs = source, {"timeout": (10.0, 10.0)}
        if source.lower().startswith("rtsp"):
            kwargs["options"] = {"rtsp_transport": "tcp"}
        what = f"stream {source} (is it up, and is the address right?)"
    try:
        container = av.open(name, **kwargs)
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"live source {what} cannot be opened ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoError(f"live source {what} holds no video stream")
    return container


def _stream_rate(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 1 <= float(rate) <= 240:
            return float(rate)
    return 0.0


class _Stop:
    """Ctrl-C during a live prediction: the first stops reading the source, so that the frames read are
    still predicted and written; a second one interrupts at once."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _frames(container, source: str, stop: threading.Event, arrived: list[float]
            ) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from the first frame, upright RGB frame) as the source gives them, until it ends or
    ``stop`` is set; each frame's arrival (`time.monotonic`) is appended to ``arrived``."""
    import av

    stream = container.streams.video[0]
    stream.thread_type = "SLICE"  # frame threading would hold frames back: latency
    first = None
    try:
        for frame in container.decode(stream):
            arrived.append(time.monotonic())
            t = float(frame.time) if frame.time is not None else None
            if first is None:
                first = t or 0.0
            yield (t - first if t is not None else float("nan")), upright(frame)
            if stop.is_set():
                return
    except av.error.FFmpegError as err:
        if not stop.is_set():
            raise VideoError(f"live source {source} failed after {len(arrived)} frames ({err})") from err


class RowWriter:
    """CSV rows written and flushed one at a time: time, <targets...>, face_present (NaN as empty)."""

    def __init__(self, out: str | Path, targets: list[str]):
        self._own = str(out) != "-"
        self.file: IO[str] = open(out, "w", encoding="utf-8", newline="") if self._own else sys.stdout
        self.rows = 0
        self.file.write(",".join(["time", *targets, "face_present"]) + "\n")
        self.file.flush()

    def write(self, t: float, values: np.ndarray, face: bool) -> None:
        cells = [f"{t:.6f}"] + ["" if not np.isfinite(v) else f"{v:.6f}" for v in values] + [str(int(face))]
        self.file.write(",".join(cells) + "\n")
        self.file.flush()
        self.rows += 1

    def close(self) -> None:
        if self._own:
            self.file.close()
        else:
            self.file.flush()


@dataclasses.dataclass
class LivePrediction:
    """What `predict_live` did: rows written, frames with a face, the frame rate, and for each row the
    seconds from its frame's arrival to its row being written (``latency_s``)."""

    rows: int
    faces: int
    fps: float
    latency_s: np.ndarray


def live_config(config: dict[str, Any]) -> dict[str, Any]:
    """The run's config with prediction blocks of one training clip (``evaluate.chunk = data.window``)."""
    from emotrack.config.schema import with_defaults

    config = with_defaults(config)
    live = dict(config, evaluate=dict(config["evaluate"], chunk=int(config["data"]["window"])))
    return live


def predict_live(run_dir: str | Path, source: str, out: str | Path, checkpoint: str = "best.keras",
                 detector: str | None = None, every: int | None = None, min_face: float | None = None,
                 progress: bool = False) -> LivePrediction:
    """Predict a live source frame by frame, writing each row as soon as it is known (see the module
    docstring).

    Args:
        source: ``-``, ``/dev/videoN`` or a stream URL (see `is_live`).
        out: the CSV to write as rows come (``-``: standard output).
        checkpoint, detector, every, min_face: as for `emotrack.apps.predict.predict_video`.
    Raises:
        VideoError: naming the source, when it cannot be opened, gives no frame or no frame rate.
        NoFaceError: no face in any frame (the rows, without values, are written).
        AudioError: the model takes the sound track.
    """
    from tqdm import tqdm

    from emotrack.apps.predict import FrameCutter, run_face_pipeline
    from emotrack.config.run import load_checkpoint
    from emotrack.data.align import delay_frames
    from emotrack.faces.finder import find_faces
    from emotrack.files import check_writable
    from emotrack.inference.session import CompiledModel
    from emotrack.inference.streaming import BlockPredictor
    from emotrack.media.audio import AudioError
    from emotrack.models import model_info
    from emotrack.preprocess.session import NoFaceError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if str(out) != "-":
        check_writable(out, "--out")
    # Faces found frame by frame (a tracker chunk of `every` frames), not in batches of a second of video.
    config, options, finder = run_face_pipeline(run_dir, detector, every, min_face, batch_size=1,
                                                most_every=LIVE_EVERY)
    if "audio" in model_info(config["model"]["name"]).inputs:
        raise AudioError(f"the model of {run_dir} ({config['model']['name']}) takes the sound track, normalised "
                         f"over the whole recording, which a live source has not got; record to a file first")
    container = open_live(source)  # before the model loads: a wrong source fails at once
    fps = _stream_rate(container.streams.video[0])
    if fps <= 0:
        container.close()
        raise VideoError(f"live source {source} declares no frame rate; give the stream's rate in its container")
    try:
        model = CompiledModel.wrap(load_checkpoint(run_dir, checkpoint))
    except BaseException:
        container.close()
        raise
    config = live_config(config)
    delay = delay_frames(config["data"]["label_delay_s"], fps)
    cut = FrameCutter(config, options)
    # MTCNN's networks and the model are traced before the header goes out: from then on, rows come as the
    # frames do, the first ones included.
    finder.warm_up()
    blocks = BlockPredictor(model, config, fps, block_frames=1)
    blocks.warm_up(cut.blank)
    writer = RowWriter(out, config["targets"])
    arrived: list[float] = []
    times: list[float] = []
    present: list[bool] = []
    pred: list[np.ndarray] = []  # the model's outputs, frame by frame
    latency: list[float] = []
    last_face_value: np.ndarray | None = None
    written = 0

    def flush(final: bool = False) -> None:
        """Write every row whose prediction is known: row f holds the output of frame f - delay."""
        nonlocal written, last_face_value
        new = blocks.take() if not final else None
        if new is not None and len(new):
            pred.extend(new)
        while written < len(present) and (max(0, written - delay) < len(pred)):
            value = pred[max(0, written - delay)]
            if present[written]:
                last_face_value = value
            shown = last_face_value if last_face_value is not None else np.full(len(value), np.nan)
            writer.write(times[written], shown, present[written])
            latency.append(time.monotonic() - arrived[written])
            written += 1

    bar = tqdm(desc=str(source), unit="frame", disable=not progress)
    try:
        with _Stop() as stop:
            def frames():
                for t, frame in _frames(container, source, stop.event, arrived):
                    times.append(t)
                    yield frame

            for frame, face in find_faces(finder, frames(), options.select):
                present.append(face is not None)
                cut.box(face)
                blocks.push(cut(frame))
                del frame
                flush()
                bar.update()
    finally:
        bar.close()
        container.close()
        try:
            if blocks.frames:  # the frames of the last, unfinished block
                pred[:] = list(blocks.finish())
            flush(final=True)
        finally:
            writer.close()
    if not any(present):  # no frame at all, or none with a face
        raise NoFaceError(f"no face found in any frame of {source}; check the camera's view, or find smaller "
                          f"faces with a lower --min-face") if present else \
            VideoError(f"live source {source} gave no frame")
    return LivePrediction(rows=writer.rows, faces=int(sum(present)), fps=fps, latency_s=np.asarray(latency))
