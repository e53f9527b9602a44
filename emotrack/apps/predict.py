"""Prediction on a new video with a trained run: a per-frame arousal/valence CSV and, on request, a
copy of the video with the face box and an arousal-valence plane drawn on every frame.

The video goes through the run's own face pipeline, the one its training data went through (the
preprocessing options recorded in its ``config.yaml``: face finder, face choice, confidence, crop set,
margin, eye alignment, and the image format the crops were stored in: a JPEG-stored corpus is read
back with JPEG's small losses, so the crops are encoded and decoded the same way here), then the
model, the annotator-delay correction and, when the run has one, the post-processing chain fitted on
devel (``postprocessing.json``). On a video of the corpus, prediction gives the numbers evaluation
gives on that session's record.

A run whose frames were subsampled in preprocessing (``--fps``) sees the video at that rate too: the
frames it keeps are chosen as preprocessing chose them (`emotrack.preprocess.align.at_rate`), and the
predictions are interpolated back to every frame of the video, the face flag and box held from the
last frame seen, so the CSV still has one row per video frame.

Any length of video, in bounded memory (`predict_video`):

- Pass 1 streams the video: frames are decoded one at a time (`emotrack.media.video.iter_frames`), the face
  is found as they arrive (`emotrack.faces.track.FaceTracker`, which holds about ``batch_size + read_ahead``
  frames, or MTCNN on every frame in batches), each frame is cut at once and dropped. Only the crops
  go on, to `BlockPredictor`, and only a block of them is held at a time. What is kept for the whole
  video is a few numbers per frame: time, face flag, box, prediction.
- Pass 2 (only for ``overlay``) decodes the video again, draws on each frame and encodes it (H.264);
  it must come after pass 1 because post-processing needs the whole predicted sequence.

Blocks give the numbers of the whole sequence at once (`emotrack.inference.session.predict_frames`, the
in-memory path evaluation scores a run with), not an approximation of them:

- Frame-level and Siamese models (Huang 2018 ConvLSTM / 3D ConvNet, AST-Net, Tzirakis visual):
  ``predict_frames`` already runs a session through the network in independent pieces of
  ``evaluate.chunk`` input steps (600 by default), each starting from a fresh LSTM state. A block is a
  whole number of those pieces in frames (``chunk`` steps x the temporal pooling factor x
  ``data.frame_step``), so the recurrent state resets exactly where it resets for the whole sequence,
  pooling windows and subsampled frames fall on the same frames, and no overlap is needed.
- Clip-level models (Teixeira 2021 VGG-16-LSTM, i3D): each frame gets the mean of the clips that
  cover it, on a grid of clip starts every ``hop`` frames from frame 0 plus one clip ending at the last
  frame. A block starts on the grid and is predicted with one clip span (rounded up to the hop) of
  frames on each side, so it sees every clip that covers its frames; its own last clip lies wholly in
  the right-hand context and is discarded. The grid's final clip is added with the video's last block.
- Models that take the sound track (Tzirakis 2017 audio and audiovisual) need the audio normalised over
  the whole recording (`emotrack.media.audio.session_audio`, as preprocessing stores it): their crops are kept
  for the whole video and predicted at the end (112x112 gray: 12.5 KB per frame, 1.1 GB per hour at
  25 fps), together with the 16 kHz audio (64 KB per second).

Frames without a face are cut at the last face box seen (all zeros before the first face), as
preprocessing cuts them, so that the model sees the sequence it was trained on; but what the model makes
of a crop without a face says nothing of the face, so such a frame's row holds the prediction of the last
frame with a face (`emotrack.inference.session.hold_last_face`; before the first face the row is empty,
NaN) and has ``face_present = 0``. The post-processing chain is given the held sequence (the first face's
prediction before the first face). A video in which no face is ever found is an error (`NoFaceError`): a
table predicted from frames without a face would look like a result and be none. A still image (JPEG,
PNG, ...) is refused: the run was trained on the motion of faces over time, and one frame has none. A video whose frame rate
differs from the rate the post-processing chain was fitted at is resampled to the chain's rate for the
chain (linear interpolation) and back to the frames' time stamps.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotrack.apps.overlay import draw_overlay, write_overlay
from emotrack.config.run import load_checkpoint, load_run_config
from emotrack.data.align import delay_frames, undo_label_delay
from emotrack.faces.crop import CropSpec, crop_faces
from emotrack.faces.detect import Face, FaceDetector
from emotrack.faces.finder import find_faces, make_face_finder
from emotrack.faces.track import FaceTracker
from emotrack.files import atomic_path, check_writable
from emotrack.inference.session import CompiledModel, hold_last_face, predict_frames
from emotrack.inference.streaming import DEFAULT_BLOCK_FRAMES, BlockPredictor
from emotrack.media.audio import (
    AUDIO_RATE,
    AudioError,
    has_audio_stream,
    samples_per_frame,
    session_audio,
)
from emotrack.media.video import VideoError, iter_frames, video_timing
from emotrack.preprocess.align import align_ratings, at_rate, held_index, on_grid
from emotrack.preprocess.options import PreprocessOptions
from emotrack.preprocess.session import NoFaceError
from emotrack.records.tfrecord import encode_image

__all__ = ["DEFAULT_BLOCK_FRAMES", "DETECTORS", "BlockPredictor", "CompiledModel", "FrameCutter", "NoFaceError",
           "VideoPrediction", "apply_postprocessing", "as_trained", "draw_overlay", "face_finder", "predict_video",
           "run_crop_spec", "run_face_pipeline", "run_preprocessing", "write_overlay"]


#: How faces are found: ``tracker`` (`FaceTracker`, fast) or ``mtcnn`` (`FaceDetector` on every frame,
#: as ``emotrack preprocess`` does).
DETECTORS = ("tracker", "mtcnn")

def run_preprocessing(config: dict[str, Any]) -> PreprocessOptions:
    """The preprocessing options a run's training data was made with (``data.preprocessing``).

    Data preprocessed before the face tracker existed records no ``tracker``: its faces were found by
    MTCNN on every frame, and so they are here."""
    stored = dict(config["data"]["preprocessing"])
    known = {f.name for f in dataclasses.fields(PreprocessOptions)}
    options = {k: v for k, v in stored.items() if k in known}
    options.setdefault("tracker", False)
    return PreprocessOptions(**options)


def run_crop_spec(config: dict[str, Any], options: PreprocessOptions) -> CropSpec:
    """The crops a run's model was trained on: the set ``data.crops`` names, else the data's default set."""
    from emotrack.faces.crop import crop_set

    sets = options.crop_sets()
    name = config["data"].get("crops")
    if name is None:
        return next(iter(sets.values()))
    return sets[name] if name in sets else crop_set(name)[1]


def run_face_pipeline(run_dir: Path, detector: str | FaceTracker | FaceDetector | None = None,
                      every: int | None = None, min_face: float | None = None, batch_size: int | None = None,
                      most_every: int | None = None
                      ) -> tuple[dict[str, Any], PreprocessOptions, FaceTracker | FaceDetector]:
    """A run's config, the preprocessing options its data was made with, and its face finder (see
    `face_finder`; ``detector`` may also be a `FaceTracker` or `FaceDetector` to use as it is;
    ``batch_size`` replaces the frames per MTCNN call; ``most_every`` caps the run's key-frame spacing
    where ``every`` is not given)."""
    config = load_run_config(run_dir)
    options = run_preprocessing(config)
    if batch_size is not None:
        options = dataclasses.replace(options, batch_size=batch_size)
    if every is None and most_every is not None:
        every = min(options.detect_every, most_every)
    finder = detector if isinstance(detector, (FaceTracker, FaceDetector)) else \
        face_finder(options, detector, every, min_face)
    return config, options, finder


class FrameCutter:
    """Each frame's crop as the run's preprocessing cut it: at the frame's face, or where it has none at the
    last face box seen (a blank crop before the first face), stored and read back in the data's image
    format (`as_trained`).

    Use: ``box(face)`` for each frame's face (None where none was found), then ``cutter(frame)``."""

    def __init__(self, config: dict[str, Any], options: PreprocessOptions):
        self.spec, self.options = run_crop_spec(config, options), options
        self.blank = as_trained(np.zeros(self.spec.shape, np.uint8), options.image_format)
        self.last: Face | None = None

    def box(self, face: Face | None) -> tuple[float, float, float, float]:
        """The box the frame is cut at (NaN before the first face); remembers ``face``."""
        if face is not None:
            self.last = face
        return tuple(self.last.box) if self.last is not None else (np.nan,) * 4

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.last is None:
            return self.blank
        o = self.options
        return as_trained(crop_faces(frame, self.last, [self.spec], o.margin, o.align)[0], o.image_format)


def face_finder(options: PreprocessOptions, detector: str | None = None, every: int | None = None,
                min_face: float | None = None) -> FaceTracker | FaceDetector:
    """The face finder the run's preprocessing used (``options``: tracker or MTCNN on every frame, how
    often the tracker detects, the smallest face, the confidence threshold, the face chosen), with any
    of the arguments given replacing the run's choice.

    Args:
        detector: ``tracker``: `FaceTracker` (MTCNN on every ``every``-th frame, faces down to ``min_face``
            of the frame's shorter side, O-Net tracking in between); ``mtcnn``: `FaceDetector`, MTCNN on
            every frame at its defaults (many times slower).
    """
    if detector not in (None, *DETECTORS):
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {detector!r}")
    return make_face_finder(tracker=options.tracker if detector is None else detector == "tracker",
                            every=every or options.detect_every,
                            min_face=options.min_face if min_face is None else min_face,
                            min_confidence=options.min_confidence, select=options.select,
                            batch_size=options.batch_size)


def as_trained(crop: np.ndarray, image_format: str) -> np.ndarray:
    """A crop as the run's model saw it in training: stored in the data's image format (`encode_image`)
    and read back as `emotrack.data.pipeline` reads it (``tf.io.decode_image``). JPEG changes pixels by a few
    grey levels; PNG not at all."""
    if image_format == "png":
        return crop
    import tensorflow as tf

    data = encode_image(crop, image_format)
    return tf.io.decode_image(data, channels=crop.shape[-1], expand_animations=False).numpy()


@dataclasses.dataclass
class VideoPrediction:
    """What `predict_video` made.

    Attributes:
        table: one row per frame: time (s, from the first frame), one column per target (held from the last
            frame with a face where the frame has none, NaN before the first face), face_present.
        boxes: float32 (T, 4), the (x, y, w, h) box each frame's crop was cut at (the last face box seen
            where the frame has none; NaN before the first face).
        fps: the video's frame rate.
        csv, overlay: the files written, or None.
        crops_held: the most face crops held in memory at any time.
    """

    table: pd.DataFrame
    boxes: np.ndarray
    fps: float
    csv: Path | None = None
    overlay: Path | None = None
    crops_held: int = 0


def still_image_format(path: str | Path) -> str | None:
    """The format of ``path`` when it is a still image (``JPEG``, ``PNG``, ...; an animated GIF counts as
    a video), else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return None if getattr(image, "n_frames", 1) > 1 else image.format
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def apply_postprocessing(chain, pred: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """A fitted `emotrack.evaluation.postprocess.PostProcessingChain` applied to one video's (T, D) prediction at
    the rate the chain was fitted at: when the video's frame rate differs, the prediction is resampled
    to the chain's rate (linear interpolation on a grid from time 0), post-processed, and interpolated
    back at the frames' ``times`` (s), so that median windows and time shifts keep their durations."""
    if math.isclose(fps, chain.rate_hz, rel_tol=1e-6):
        return np.asarray(chain.apply(pred, fps), np.float32)
    grid = np.arange(0.0, times[-1] + 0.5 / chain.rate_hz, 1.0 / chain.rate_hz)
    out = chain.apply(align_ratings(times, pred, grid), chain.rate_hz)
    return align_ratings(grid, out, times)


def predict_video(run_dir: str | Path, video: str | Path, out_csv: str | Path | None = None,
                  checkpoint: str = "best.keras", postprocess: bool = True, overlay: str | Path | None = None,
                  detector: str | FaceTracker | FaceDetector | None = None, every: int | None = None,
                  min_face: float | None = None, block_frames: int | None = None,
                  progress: bool = False) -> VideoPrediction:
    """Predict every frame of ``video`` with the run in ``run_dir`` (see the module docstring).

    Args:
        out_csv: CSV to write (atomically): time, <targets...>, face_present.
        checkpoint: model file in the run folder.
        postprocess: apply the run's ``postprocessing.json`` when it has one.
        overlay: a video to write (atomically): the input with the face box and the arousal-valence
            plane drawn (see `write_overlay`).
        detector, every, min_face: how to find faces (see `face_finder`); None: as the run's preprocessing
            did. ``detector`` may also be a `FaceTracker` or `FaceDetector` to use as it is.
        block_frames: crops predicted per block (see `BlockPredictor`); None: `DEFAULT_BLOCK_FRAMES`.
        progress: show a progress bar over frames.
    Raises:
        FileNotFoundError: the run folder, its config or the checkpoint is missing.
        VideoError: naming the video, when it cannot be read.
        NoFaceError: no face in any frame.
        AudioError: the model takes the sound track and the video has none.
    """
    from tqdm import tqdm

    from emotrack.evaluation.postprocess import PostProcessingChain
    from emotrack.models import model_info

    run_dir, video = Path(run_dir), Path(video)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not video.is_file():
        raise VideoError(f"video {video} does not exist")
    if video.stat().st_size == 0:
        raise VideoError(f"video {video} is empty (0 bytes): it was not written completely; copy or record it again")
    for path, option in ((out_csv, "--out"), (overlay, "--overlay")):
        if path is not None:
            check_writable(path, option)  # before the video is decoded, not after
    still = still_image_format(video)
    if still:
        raise VideoError(f"{video} is a still image ({still}), not a video: the run predicts from faces over "
                         f"time; give a video file (e.g. MP4)")
    config, options, finder = run_face_pipeline(run_dir, detector, every, min_face)
    inputs = model_info(config["model"]["name"]).inputs
    timing = video_timing(video)  # names the video when it is missing or unreadable
    fps = timing.rate
    if fps <= 0:
        raise VideoError(f"{video} declares no frame rate; re-encode it, e.g. "
                         f"`ffmpeg -i {video.name} -r 25 out.mp4`")
    if "audio" in inputs and not has_audio_stream(video):
        raise AudioError(f"the model of {run_dir} ({config['model']['name']}) takes the sound track, but "
                         f"{video} has none")
    model = CompiledModel.wrap(load_checkpoint(run_dir, checkpoint))

    # A run trained on subsampled frames (preprocess --fps) sees the video at that rate, and a variable
    # frame-rate video is seen at its nominal rate, every 1/fps s the frame on screen then (`on_grid`);
    # the predictions are carried back to every frame, at its true time, at the end.
    video_rate = fps
    if options.fps is not None and options.fps < video_rate - 1e-6:
        fps = float(options.fps)
    resampled = fps < video_rate or timing.variable
    if "audio" in inputs:
        wanted = next(int(t.shape[-1]) for t in model.inputs if len(t.shape) == 3)  # (batch, time, samples)
        if samples_per_frame(fps) != wanted:
            rate = AUDIO_RATE / wanted
            raise AudioError(f"the model of {run_dir} takes {wanted} audio samples per frame, as its data had at "
                             f"{rate:g} fps, but {video} runs at {fps:g} fps ({samples_per_frame(fps)} samples); "
                             f"re-encode it at the run's rate, e.g. `ffmpeg -i {video.name} -r {rate:g} out.mp4`")
    streamed, cropped = "audio" not in inputs, "video" in inputs
    block_frames = DEFAULT_BLOCK_FRAMES if block_frames is None else block_frames
    blocks = BlockPredictor(model, config, fps, block_frames) if streamed else None
    kept: list[np.ndarray] = []
    cut = FrameCutter(config, options)
    times: list[float] = []  # of the frames the model sees
    every_time: list[float] = []  # of every frame of the video
    present, boxes = [], []

    def timed():
        for t, frame in iter_frames(video):
            every_time.append(t)
            yield t - every_time[0], frame

    def decoded():
        pairs = on_grid(timed(), fps) if timing.variable else at_rate(timed(), fps if resampled else None)
        for t, frame in pairs:
            times.append(t)
            yield frame

    bar = tqdm(desc=video.name, unit="frame", disable=not progress)
    try:
        # Preprocessing's own face finding (emotrack.preprocess.session.face_crops): frames read ahead, the face
        # chosen as preprocessing chooses it; each frame is cut at once and dropped.
        select = finder.select if finder is detector else options.select  # a finder given is used as it is
        for frame, face in find_faces(finder, decoded(), select):
            present.append(face is not None)
            boxes.append(cut.box(face))
            if cropped:
                crop = cut(frame)
                if blocks is not None:
                    blocks.push(crop)
                else:
                    kept.append(crop)
            del frame
            bar.update()
    finally:
        bar.close()
    if not present:
        raise VideoError(f"video {video} holds no decodable frames")
    if not any(present):
        raise NoFaceError(f"no face found in any frame of {video}; check the video, or find smaller faces "
                          f"with a lower --min-face or --detector mtcnn")
    times_arr = np.asarray(times, np.float64)
    if blocks is not None:
        pred = blocks.finish()
    else:
        video_end = every_time[-1] - every_time[0] + 1.0 / video_rate
        audio, _ = session_audio(video, times_arr, fps, video_end, own_track=True,
                                 max_length_mismatch_s=options.max_length_mismatch_s)
        session = {"frames": np.stack(kept) if kept else np.zeros((len(times), 0), np.uint8),
                   "audio": audio, "fps": fps}
        pred = predict_frames(model, session, config)
    if not np.isfinite(pred).all():
        raise ValueError(f"the model {run_dir / checkpoint} gave non-finite predictions for {video}")
    present_arr, boxes_arr = np.asarray(present, np.int64), np.asarray(boxes, np.float32)
    pred = undo_label_delay(pred, delay_frames(config["data"]["label_delay_s"], fps))
    pred = hold_last_face(pred, present_arr, before_first="first")
    chain_file = run_dir / "postprocessing.json"
    if postprocess and chain_file.is_file():
        pred = apply_postprocessing(PostProcessingChain.load(chain_file), pred, times_arr, fps)

    if resampled:
        # Back to every frame: predictions interpolated between the frames the model saw, the face of
        # the last frame seen held.
        all_times = np.asarray(every_time, np.float64) - every_time[0]
        pred = align_ratings(times_arr, pred, all_times)
        held = held_index(times_arr, all_times)
        present_arr, boxes_arr, times_arr, fps = present_arr[held], boxes_arr[held], all_times, video_rate
    pred = hold_last_face(pred, present_arr)
    table = pd.DataFrame({"time": np.round(times_arr, 6)})
    for k, name in enumerate(config["targets"]):
        table[name] = pred[:, k].astype(np.float32)
    table["face_present"] = present_arr
    result = VideoPrediction(table=table, boxes=boxes_arr, fps=fps,
                             crops_held=blocks.held_max if blocks is not None else len(kept))
    if out_csv is not None:
        out_csv = Path(out_csv)
        with atomic_path(out_csv, keep_suffix=True) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
        result.csv = out_csv
    if overlay is not None:
        result.overlay = write_overlay(video, overlay, table, result.boxes, config["targets"])
    return result
