"""Speed of the face pipeline on a 640x360 video, and agreement with MTCNN run on every frame.

Runs, on one video:

(a) ``mtcnn`` 1.0.0 at its defaults, one frame at a time: the reference boxes (cached next to the video,
    keyed by the video's checksum, since it takes minutes);
(b) `emotrack.faces.detect.FaceDetector` with ``min_face``: proposals on shrunk frames, batched, O-Net at full
    resolution, on every frame;
(c) the whole per-frame pipeline: decode (PyAV, read ahead in a thread) -> `FaceTracker` -> `crop_faces`
    at the four model families' sizes -> JPEG -> one TFRecord, with cropping and encoding in a second
    thread;
(d) what ``emotrack preprocess`` does: `emotrack.preprocess.session.process_session` on the video as a one-session
    corpus (generic layout, constant ratings), from the rating file to the session's record and checksum,
    with `PreprocessOptions` at their defaults (one 112x112 gray crop set, JPEG) and in PNG, then with the
    four model families' crop sets (``--crops``) in JPEG and in PNG; each the best of ``--repeat`` runs;

(e) with ``--mediapipe PYTHON``: MediaPipe's per-frame face detection pass (benchmarks/mediapipe_pass.py, in
    an environment of its own) and ``emotrack preprocess`` at its defaults, in turns, two rounds, and the
    ratio of the two;
(f) ``emotrack preprocess`` at its defaults on a corpus of four sessions (the video four times) with
    ``--workers 1`` and ``--workers 2``;

and prints frames per second and, for (b) to (e), the fraction of frames that agree with (a): both
without a face, or both with one and the boxes' IoU >= 0.7. The boxes of (d) are read back from the
record. The machine's load (1-minute average) is printed before and after, as figures on a shared
machine depend on it.

Without ``--video`` it makes one (cached): 640x360, 30 fps, H.264, two synthetic subjects
(`emotrack.synth.corpus`, built from a real portrait) panning across the frame, a cut between them, and half
a second of covered camera (no face) in the middle.

Run with `make bench-preprocess` (the first run takes a few minutes more: it makes the video and the
reference boxes). Figures depend on the machine; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WIDTH, HEIGHT, FPS = 640, 360, 30
AGREE_IOU = 0.7


def scene_parts(frames: int, fps: float = FPS, seed: int = 0) -> tuple[int, int, int]:
    """Frames of the benchmark scene's three parts: subject A, covered camera, subject B."""
    first = int(frames * 0.4)
    covered = max(int(frames * 0.05), 1)
    return first, covered, frames - first - covered


def scene_frames(frames: int, fps: float = FPS, seed: int = 0) -> Iterator[np.ndarray]:
    """The benchmark scene, 640x360 RGB: subject A panning (40 %), covered camera (5 %), subject B
    panning and leaning in (the rest)."""
    from emotrack.synth.corpus import iter_session_frames

    rng = np.random.default_rng(seed)
    first, covered, second = scene_parts(frames, fps, seed)
    seconds = max(first, second) / fps + 1.0

    def panned(session: int, count: int, amplitude: float, period_s: float, zoom: float):
        """Frames of one synthetic session, shifted along a slow sine (a head moving across the frame)."""
        source = iter_session_frames(seed, session, seconds=seconds, fps=fps, width=WIDTH, height=HEIGHT)
        for k, item in zip(range(count), source):
            t = k / fps
            dx = amplitude * np.sin(2 * np.pi * t / period_s)
            dy = 0.15 * amplitude * np.sin(2 * np.pi * t / (0.7 * period_s))
            scale = 1.0 + zoom * np.sin(np.pi * t / (count / fps))
            yield _shift_zoom(item.image, dx, dy, scale)

    yield from panned(0, first, 110.0, 4.0, 0.0)
    for _ in range(covered):
        yield np.clip(rng.normal(20, 6, size=(HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    yield from panned(3, second, 90.0, 3.0, 0.25)


def make_video(path: Path, frames: int = 300, seed: int = 0) -> None:
    """The benchmark video (`scene_frames`), written to ``path`` as H.264."""
    from emotrack.media.video import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, scene_frames(frames, FPS, seed), FPS, quality=18)


def cached_video(cache: Path, frames: int) -> Path:
    """The benchmark video of ``frames`` frames, made once in ``cache``."""
    video = cache / f"faces-{WIDTH}x{HEIGHT}-{frames}.mp4"
    if not video.is_file():
        print(f"making {video} ...")
        make_video(video, frames)
    return video


def _shift_zoom(image: np.ndarray, dx: float, dy: float, scale: float) -> np.ndarray:
    """The image moved by (dx, dy) pixels and zoomed about its centre, edge pixels repeated."""
    from PIL import Image

    h, w = image.shape[:2]
    # PIL's affine maps output to input pixels: x_in = a x + b y + c.
    a = 1.0 / scale
    c = w / 2 - a * (w / 2 + dx)
    f = h / 2 - a * (h / 2 + dy)
    pad = 200
    padded = Image.fromarray(np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    out = padded.transform((w, h), Image.AFFINE, (a, 0, c + pad, 0, a, f + pad), resample=Image.BILINEAR)
    return np.asarray(out)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def boxes_array(faces) -> np.ndarray:
    """(N, 4) x, y, w, h; NaN where a frame has no face."""
    out = np.full((len(faces), 4), np.nan)
    for i, face in enumerate(faces):
        if face is not None:
            out[i] = face.box
    return out


def agreement(boxes: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Fraction of frames that agree with the reference (both without a face, or IoU >= 0.7), and the mean
    IoU over frames where both have a face."""
    from emotrack.faces.detect import box_iou

    agree, ious = 0, []
    for box, ref in zip(boxes, reference):
        has, ref_has = not np.isnan(box[0]), not np.isnan(ref[0])
        if has and ref_has:
            ious.append(box_iou(box, ref))
            agree += ious[-1] >= AGREE_IOU
        else:
            agree += has == ref_has
    return agree / len(reference), float(np.mean(ious)) if ious else float("nan")


def reference_boxes(video: Path, frames: list[np.ndarray], cache: Path) -> tuple[np.ndarray, float, bool]:
    """(a): mtcnn's ``detect_faces`` at its defaults on every frame, one at a time, largest face.

    Returns the boxes, the frames/s it ran at and whether they came from the cache."""
    from importlib.metadata import version

    key = f"{sha256(video)[:16]}-mtcnn{version('mtcnn')}"
    path = cache / f"reference-{key}.npz"
    if path.is_file():
        stored = np.load(path)
        return stored["boxes"], float(stored["fps"]), True
    from emotrack.faces.detect import FaceDetector

    detector = FaceDetector(batch_size=1, min_confidence=0.0)
    detector.detect(frames[:1])  # load the networks outside the timing
    start = time.perf_counter()
    boxes = boxes_array(detector.detect(frames))
    fps = len(frames) / (time.perf_counter() - start)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, boxes=boxes, fps=fps)
    return boxes, fps, False


def end_to_end(video: Path, out: Path, tracker, specs, quality: int = 95) -> tuple[list, float]:
    """(c): decode -> track -> crop at every spec -> JPEG -> TFRecord; cropping, encoding and writing run
    in a second thread. Returns the faces and frames/s."""
    import io

    import tensorflow as tf
    from PIL import Image

    from emotrack.faces.crop import crop_faces
    from emotrack.media.video import iter_frames

    def encode(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()

    work: queue.Queue = queue.Queue(maxsize=64)
    failure: list[BaseException] = []

    def write():
        try:
            with tf.io.TFRecordWriter(str(out)) as writer:
                while (item := work.get()) is not None:
                    (t, frame), face = item
                    feature = {"time": tf.train.Feature(float_list=tf.train.FloatList(value=[t]))}
                    if face is not None:
                        crops = crop_faces(frame, face, specs, margin=0.2)
                        feature["box"] = tf.train.Feature(float_list=tf.train.FloatList(value=face.box))
                        for i, crop in enumerate(crops):
                            feature[f"image/{i}"] = tf.train.Feature(
                                bytes_list=tf.train.BytesList(value=[encode(crop)]))
                    example = tf.train.Example(features=tf.train.Features(feature=feature))
                    writer.write(example.SerializeToString())
        except BaseException as err:
            failure.append(err)
            while work.get() is not None:  # let the producer finish
                pass

    writer = threading.Thread(target=write, name="bench-writer")
    writer.start()
    faces = []
    start = time.perf_counter()
    try:
        for item in tracker.track(iter_frames(video), frame=lambda pair: pair[1]):
            work.put(item)
            faces.append(item[1])
    finally:
        work.put(None)
        writer.join()
    fps = len(faces) / (time.perf_counter() - start)
    if failure:
        raise failure[0]
    return faces, fps


def bench_corpus(video: Path, folder: Path) -> Path:
    """A one-session corpus in emotrack's generic layout around ``video`` (linked, not copied), with ratings
    at 10 Hz that cover it, for `emotrack.preprocess.session.process_session`."""
    from emotrack.media.video import read_video

    _, times, fps = read_video(video)
    end = times[-1] + 1.0 / fps
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    (folder / "ratings").mkdir(exist_ok=True)
    link = folder / "videos" / "bench.mp4"
    if not link.exists():
        link.symlink_to(video.resolve())
    (folder / "partitions.csv").write_text("session,subject,partition\nbench,bench,train\n")
    steps = int(np.ceil(end * 10 - 1e-9))
    rows = "".join(f"{k / 10:.1f},0,0,0\n" for k in range(steps))
    (folder / "ratings" / "bench.csv").write_text("time,arousal,valence,liking\n" + rows)
    return folder


def preprocessed(root: Path, out: Path, options, cpu: list | None = None) -> tuple[np.ndarray, float, float]:
    """(d): `process_session` on the corpus' one session. Returns its boxes (read back from the record; NaN
    without a face), frames/s and bytes per frame of the record; appends the CPU milliseconds per frame (the
    process's, every thread) to ``cpu`` when given."""
    import tensorflow as tf

    from emotrack.corpora.layout import discover
    from emotrack.corpora.spec import load_spec
    from emotrack.preprocess.session import process_session

    spec = load_spec("generic")
    info = discover(spec, root).sessions[0]
    (out / "sessions").mkdir(parents=True, exist_ok=True)
    start, used = time.perf_counter(), time.process_time()
    entry = process_session(spec, root, info, out, options)
    fps = entry["num_frames"] / (time.perf_counter() - start)
    if cpu is not None:
        cpu.append(1000 * (time.process_time() - used) / entry["num_frames"])
    record = next(iter(tf.data.TFRecordDataset(str(out / entry["file"])))).numpy()
    lists = tf.train.SequenceExample.FromString(record).feature_lists.feature_list
    boxes = np.array([f.float_list.value for f in lists["box"].feature], np.float64)
    present = np.array([f.int64_list.value[0] for f in lists["face_present"].feature])
    boxes[present == 0] = np.nan
    return boxes, fps, len(record) / entry["num_frames"]


def mediapipe_pass(python: Path, video: Path, cpu: list | None = None) -> tuple[np.ndarray, float, str]:
    """The peer's per-frame pass (benchmarks/mediapipe_pass.py, in its own environment ``python``): its boxes
    (NaN without a face), frames/s (decoding included) and MediaPipe's version; appends its CPU milliseconds
    per frame to ``cpu`` when given."""
    import json
    import subprocess

    done = subprocess.run([str(python), str(Path(__file__).with_name("mediapipe_pass.py")), str(video)],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    boxes = np.array([b if b is not None else [np.nan] * 4 for b in result["boxes"]], np.float64)
    if cpu is not None:
        cpu.append(1000 * result["cpu_seconds"] / result["frames"])
    return boxes, result["frames"] / result["seconds"], result["version"]


def workers_scaling(video: Path, folder: Path, options, sessions: int = 4) -> dict[int, float]:
    """``emotrack preprocess`` (`preprocess_corpus`) on a corpus of ``sessions`` sessions (links to the video)
    with 1 and 2 workers: frames/s of the whole corpus for each."""
    from emotrack.preprocess.corpus import preprocess_corpus

    root = bench_corpus(video, folder / "corpus")
    rows = (root / "ratings" / "bench.csv").read_text()
    lines = ["session,subject,partition"]
    for k in range(sessions):
        name = f"bench{k}"
        link = root / "videos" / f"{name}.mp4"
        if not link.exists():
            link.symlink_to(video.resolve())
        (root / "ratings" / f"{name}.csv").write_text(rows)
        lines.append(f"{name},s{k},train")
    (root / "videos" / "bench.mp4").unlink()
    (root / "ratings" / "bench.csv").unlink()
    (root / "partitions.csv").write_text("\n".join(lines) + "\n")
    speed = {}
    for workers in (1, 2):
        out = folder / f"workers{workers}"
        start = time.perf_counter()
        report = preprocess_corpus("generic", root, out, options, progress=False, log=lambda *_: None,
                                   workers=workers, resume=False)
        seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError(f"preprocessing failed: {report.failed}")
        speed[workers] = sum(e["num_frames"] for e in report.done) / seconds
    return speed


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="a video to use instead of the synthetic one")
    parser.add_argument("--frames", type=int, default=300, help="length of the synthetic video")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "emotrack" / "bench_preprocess", help="where the video and reference boxes are kept")
    parser.add_argument("--every", type=int, default=None,
                        help="FaceTracker: a key frame every N frames (default: preprocessing's)")
    parser.add_argument("--min-face", type=float, default=None,
                        help="smallest face, as a fraction of the frame's shorter side (default: preprocessing's)")
    parser.add_argument("--repeat", type=int, default=2, help="(d): runs of each configuration, the best reported")
    parser.add_argument("--mediapipe", type=Path, help="(e): the Python of an environment with mediapipe==0.10.21 "
                        "(make bench-preprocess makes .venv-mediapipe); without it (e) is skipped")
    args = parser.parse_args()

    from emotrack.faces.crop import CROP_SPECS
    from emotrack.faces.detect import FaceDetector
    from emotrack.faces.track import FaceTracker
    from emotrack.media.video import read_video
    from emotrack.preprocess.options import PreprocessOptions

    if args.min_face is None:
        args.min_face = PreprocessOptions().min_face
    if args.every is None:
        args.every = PreprocessOptions().detect_every

    video = args.video or cached_video(args.cache, args.frames)

    start = time.perf_counter()
    frames, _, fps = read_video(video)
    decode_fps = len(frames) / (time.perf_counter() - start)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    print(f"video       {video}: {len(frames)} frames, {w}x{h}, {fps:g} fps; {os.cpu_count()} CPU cores, {load()}")
    print(f"decode      {decode_fps:8.1f} frames/s  (PyAV, to RGB arrays)")

    reference, reference_fps, cached = reference_boxes(video, frames, args.cache)
    print(f"(a) MTCNN   {reference_fps:8.1f} frames/s  (mtcnn defaults, one frame at a time; the reference, "
          f"a face in {np.mean(~np.isnan(reference[:, 0])):.1%} of frames{'; cached run' if cached else ''})")

    detector = FaceDetector(min_face=args.min_face, batch_size=32)
    detector.detect(frames[:32])  # compile outside the timing
    start = time.perf_counter()
    batched = detector.detect(frames)
    batched_fps = len(frames) / (time.perf_counter() - start)
    agree, mean_iou = agreement(boxes_array(batched), reference)
    scale = detector.detection_scale(frames[0].shape)
    print(f"(b) batched {batched_fps:8.1f} frames/s  agreement {agree:6.1%} (mean IoU {mean_iou:.3f})  "
          f"(proposals at {round(w * scale)}x{round(h * scale)}, batch 32, O-Net at {w}x{h}; no decode)")

    specs = list(CROP_SPECS.values())
    tracker = FaceTracker(every=args.every, min_face=args.min_face)
    tracker.track_all(frames[:2 * args.every + 1])  # compile outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        faces, e2e_fps = end_to_end(video, Path(tmp) / "faces.tfrecord", tracker, specs)
        size = (Path(tmp) / "faces.tfrecord").stat().st_size
    agree, mean_iou = agreement(boxes_array(faces), reference)
    tracked = np.mean([f is not None and f.source == "tracked" for f in faces])
    sizes = ", ".join(f"{s.height}x{s.width}{' gray' if s.gray else ''}" for s in specs)
    print(f"(c) tracker {e2e_fps:8.1f} frames/s  agreement {agree:6.1%} (mean IoU {mean_iou:.3f})  "
          f"(decode + key frame every {args.every}, {tracked:.0%} of frames tracked + crops {sizes} + JPEG + "
          f"TFRecord, {size / len(faces) / 1024:.1f} KiB/frame)")

    runs = [("defaults", {}), ("PNG", {"image_format": "png"}), ("--crops, JPEG", {"crops": tuple(CROP_SPECS)}),
            ("--crops, PNG", {"crops": tuple(CROP_SPECS), "image_format": "png"})]
    with tempfile.TemporaryDirectory() as tmp:
        root = bench_corpus(video, Path(tmp) / "corpus")
        for k, (label, changes) in enumerate(runs):
            options = PreprocessOptions(min_face=args.min_face, detect_every=args.every, audio=False, **changes)
            results = [preprocessed(root, Path(tmp) / f"out{k}", options) for _ in range(max(args.repeat, 1))]
            boxes, session_fps, per_frame = max(results, key=lambda r: r[1])
            agree, mean_iou = agreement(boxes, reference)
            sets = ", ".join(options.crop_sets())
            print(f"{'(d) session' if k == 0 else '':<12}{session_fps:8.1f} frames/s  agreement {agree:6.1%} "
                  f"(mean IoU {mean_iou:.3f})  ({label}: process_session, min_face {options.min_face}, crops {sets}, "
                  f"{options.image_format.upper()}, {per_frame / 1024:.1f} KiB/frame)")
            if k == 0:
                default_fps = session_fps
        if args.mediapipe is not None:
            # Side by side, in turns: emotrack preprocess at its defaults and the peer's per-frame pass.
            options = PreprocessOptions(min_face=args.min_face, detect_every=args.every, audio=False)
            ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
            for round_ in range(2):
                _, ours_fps, _ = preprocessed(root, Path(tmp) / f"round{round_}", options, ours_cpu)
                peer_boxes, peer_fps, version = mediapipe_pass(args.mediapipe, video, theirs_cpu)
                ours.append(ours_fps)
                theirs.append(peer_fps)
            agree, mean_iou = agreement(peer_boxes, reference)
            print(f"(e) MediaPipe {version} short-range, per frame with decoding, largest face -> 112x112 gray JPEG: "
                  f"{', '.join(f'{v:.1f}' for v in theirs)} frames/s (agreement {agree:.1%}, mean IoU "
                  f"{mean_iou:.3f}); emotrack preprocess defaults in the same rounds: "
                  f"{', '.join(f'{v:.1f}' for v in ours)} frames/s; ratio emotrack / MediaPipe "
                  f"{', '.join(f'{a / b:.2f}' for a, b in zip(ours, theirs))} (goal >= 1.0); CPU time per frame "
                  f"(every thread): emotrack {', '.join(f'{v:.2f}' for v in ours_cpu)} ms, MediaPipe "
                  f"{', '.join(f'{v:.2f}' for v in theirs_cpu)} ms")
        options = PreprocessOptions(min_face=args.min_face, detect_every=args.every, audio=False)
        speed = workers_scaling(video, Path(tmp) / "scaling", options)
        print(f"(f) corpus  4 sessions of this video, emotrack preprocess defaults: {speed[1]:.1f} frames/s with "
              f"--workers 1, {speed[2]:.1f} with --workers 2 (x{speed[2] / speed[1]:.2f})  ({load()})")
    corpus = 900_000
    print(f"            a SEWA-sized corpus ({corpus:,} frames) at (d) defaults: {corpus / default_fps / 3600:.1f} h; "
          f"at (a): {corpus / reference_fps / 3600:.0f} h  ({load()})")


if __name__ == "__main__":
    main()
