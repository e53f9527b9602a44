"""Speed of `emotrack predict` end to end: decode, faces, crops, model, CSV (and the overlay video).

Trains three tiny runs (one epoch, on small synthetic corpora; their weights do not matter for speed)
unless given with ``--run`` / ``--astnet-run`` / ``--audio-run``:

- ``huang2018-convlstm``: the CPU-size ConvLSTM of Huang et al. 2018 (filters 8, 16, 16, 16; 112x112
  gray faces), the demo's model. Target: at least the video's frame rate.
- ``astnet2017-la`` with ``backbone=fer2013``: AST-Net with the FER2013 mini-Xception as its attribute
  CNN, on 224x224 RGB faces (the paper's crops; the model converts them to 64x64 gray itself).
  Target: at least 40 frames/s.
- ``tzirakis2017-audio-seq150``: the speech network of Tzirakis et al. 2017 at the paper's size (raw
  16 kHz waveform, 640 samples per 40 ms frame, conv1 20 x 80, conv2 40 x 4000, 2 LSTMs of 256; only
  the training is cut to one window of 10 frames per session, as its backward pass costs seconds per
  frame on a CPU). Target: at least the video's frame rate.

The two visual runs are trained on a 10 fps corpus (4 sessions of 10 s, 160x128) and run on the
benchmark video of ``bench_preprocess.py`` (640x360, 30 fps, H.264, two synthetic subjects panning, a
cut and half a second without a face; cached; it has no sound track). The speech network's input size
is fixed by the frame rate of its training data (``round(16000 / fps)`` samples per frame, recorded as
``model.options.frame_samples``), and `predict_video` cuts the sound track at the video's own frame
rate, so the audio run is trained on a 25 fps corpus (4 sessions of 10 s with their synthetic voices,
preprocessed with audio: 640 samples per frame, the paper's rate) and run on a video at that rate with
sound (``--audio-video``, else one made here and cached: the same scene as the benchmark video, 640x360,
the same length in seconds as it (250 frames, 10 s, by default), at 25 fps, H.264 with a 16 kHz mono AAC
track: subject A's synthetic voice, near silence while the camera is covered, subject B's voice). A
30 fps video would give 533 samples per frame, which the 640-sample model cannot take.

What the audio model's figure includes: `predict_video` handles a model without video input apart
(``streamed, cropped = "audio" not in inputs, "video" in inputs``): every frame is still decoded and the
face tracker still runs on it (for the ``face_present`` column, the boxes of ``--overlay`` and the
no-face check), but no crop is cut; then the whole sound track is decoded (PyAV, resampled to 16 kHz
mono), normalised over the recording and cut into one 640-sample window per frame, and the network
runs over the whole video at the end (in pieces of ``evaluate.chunk`` = 600 frames), followed by the
delay correction, the post-processing chain and the CSV, as for the others. So the figure is face
finding + audio decoding + the speech network, not the network alone.

Each run is timed once writing only the CSV and once with ``--overlay`` as well. Prints frames per
second of the whole `emotrack.apps.predict.predict_video` call, model loading included (the best of
``--repeats`` calls); MTCNN's one-off compilation is done before the timing. The runs find faces as
their training data was preprocessed (the tracker, ``min_face`` 0.1, crops stored as JPEG and read
back so).

For the visual runs, a live source too: the video as a real-time paced MPEG-TS stream piped into ``emotrack
predict RUN - --out -`` (`live_latency`); printed: the latency from a frame's packets reaching the pipe to
its row reaching the reader (median, 95th percentile) against the goal of one clip span plus 0.2 s, the
same from a second after the command was ready on (the source sends its first second while the command
starts; working that backlog off delays the frames that follow it), and any frame without its row.

Run with `.venv/bin/python benchmarks/bench_predict.py` (the first run takes a few minutes more: it
makes the videos and trains the runs). Figures depend on the machine; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_preprocess import FPS, HEIGHT, WIDTH, cached_video  # noqa: E402  (this folder is on sys.path)

# One epoch on short windows: only the run folder is needed, not a good model.
# The 4-session corpus has two training subjects: none held out for validation.
_SMALL = ["train.epochs=1", "data.validation.subjects=0"]
HUANG = ("huang2018-convlstm", _SMALL)
ASTNET = ("astnet2017-la", [*_SMALL, "model.options.backbone=fer2013", "model.options.attribute_weights=none",
                            "data.window=8", "data.hop=8",
                            "data.frame_step=2"])
# The speech network at the paper's size; only its training is cut short: one window of 10 frames per
# session (hop 250), as its 4000-tap convolution takes about 2 s per frame to train on a CPU (forward alone:
# about 150 frames/s).
AUDIO = ("tzirakis2017-audio-seq150", ["train.epochs=1", "data.window=10", "data.hop=250", "data.batch_size=2"])

#: Frame rate of the visual runs' training corpus and of the audio run's (its corpus and its video).
VISUAL_CORPUS_FPS = 10.0
AUDIO_FPS = 25.0


def make_audio_video(path: Path, frames: int, fps: float = AUDIO_FPS, seed: int = 0) -> None:
    """`bench_preprocess.make_video`'s scene at ``fps``, with a sound track: subject A panning (40 %) and
    speaking (session 0's synthetic voice), covered camera (5 %) and near silence, subject B panning,
    leaning in and speaking (session 3's voice); 640x360, H.264 and 16 kHz mono AAC, written with PyAV."""
    import av
    from bench_preprocess import scene_frames, scene_parts

    from emotrack.media.audio import AUDIO_RATE
    from emotrack.synth.corpus import session_voice

    rng = np.random.default_rng(seed)
    first, covered, second = scene_parts(frames, fps, seed)
    seconds = max(first, second) / fps + 1.0

    def samples(count: int) -> int:
        return int(round(count / fps * AUDIO_RATE))

    audio = np.concatenate([session_voice(seed, 0, seconds)[:samples(first)],
                            (0.002 * rng.standard_normal(samples(first + covered) - samples(first))).astype(np.float32),
                            session_voice(seed, 3, seconds)[:samples(frames) - samples(first + covered)]])
    rate = Fraction(fps).limit_denominator(1001)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "threads": "1"}
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        sound.bit_rate = 64000
        written = 0

        def write_audio(until: int) -> None:  # AAC frames of 1024 samples, interleaved with the video by time
            nonlocal written
            while written < min(until, len(audio)):
                piece = audio[written:written + 1024]
                chunk = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = AUDIO_RATE, written, Fraction(1, AUDIO_RATE)
                container.mux(sound.encode(chunk))
                written += len(piece)

        for count, image in enumerate(scene_frames(frames, fps, seed), start=1):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = count - 1, 1 / rate
            container.mux(stream.encode(frame))
            write_audio(samples(count))
        write_audio(len(audio))
        container.mux(stream.encode(None))
        container.mux(sound.encode(None))
    os.replace(tmp, path)


def train_run(root: Path, out: Path, experiment: str, overrides: list[str], size: int, gray: bool) -> Path:
    """Preprocess the synthetic corpus at ``root`` with ``size`` x ``size`` crops (and its audio), train
    one run and evaluate it (which fits the post-processing chain that prediction applies, where the run
    has one)."""
    from emotrack.evaluation.report import evaluate
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.preprocess.options import PreprocessOptions
    from emotrack.training.train import train

    tfr = out.parent / f"tfr-{root.name}-{size}-{'gray' if gray else 'rgb'}"
    if not (tfr / "manifest.json").is_file():
        report = preprocess_corpus("generic", root, tfr, PreprocessOptions(size=(size, size), gray=gray),
                                   progress=False, log=lambda *_: None)
        if not report.ok:
            raise RuntimeError(f"preprocessing failed: {report.failed}")
    run = train(experiment, tfr, out, overrides=overrides, verbose=0)
    evaluate(run)
    return run


def timed(run: Path, video: Path, frames: int, overlay: Path | None, repeats: int) -> float:
    """Frames/s of `predict_video`, the best of ``repeats`` calls (other work on the machine only slows a call)."""
    from emotrack.apps.predict import predict_video

    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = predict_video(run, video, video.parent / "bench.csv", overlay=overlay)
        best = max(best, frames / (time.perf_counter() - start))
        assert len(result.table) == frames
    return best


def clip_span_s(run: Path, fps: float) -> float:
    """Seconds of video one prediction block of a live source covers: one training clip (``data.window``
    input steps of ``k`` pooled frames, every ``frame_step``-th frame; a clip-level model's clip)."""
    from emotrack.config.run import input_contract, load_run_config
    from emotrack.config.schema import with_defaults
    from emotrack.models import model_info

    config = with_defaults(load_run_config(run))
    window, step = int(config["data"]["window"]), int(config["data"]["frame_step"])
    if model_info(config["model"]["name"]).target == "clip":
        return ((window - 1) * step + 1) / fps
    k, _ = input_contract(config, fps)
    return window * k * step / fps


def live_latency(run: Path, video: Path, fps: float, work: Path) -> tuple[float, np.ndarray, np.ndarray, int, int]:
    """``emotrack predict RUN - --out -`` fed ``video`` as a real-time paced MPEG-TS stream on standard input
    (benchmarks/live_source.py). The source sends its first second, then waits until the command is ready
    (its CSV header is out: TensorFlow and the model are loaded) and paces the rest from then. Returns the
    start-up (seconds from the first frame sent to the header); for every frame sent after it, the seconds
    from its packets being written to the pipe to its row being read from the command's output; and the
    same for the frames sent more than a second after it (once the first second's frames, sent while it
    started, are worked off); and the frames sent and rows received."""
    import subprocess
    import sys

    sent_log, go = work / "sent.txt", work / "ready"
    go.unlink(missing_ok=True)
    source = subprocess.Popen([sys.executable, str(Path(__file__).with_name("live_source.py")), str(video),
                               "--pace", "--log", str(sent_log), "--go", str(go)], stdout=subprocess.PIPE)
    predict = subprocess.Popen([str(Path(sys.executable).with_name("emotrack")), "predict", str(run), "-",
                                "--out", "-", "--quiet"], stdin=source.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, bufsize=1)
    source.stdout.close()
    received = {}
    for line in predict.stdout:
        if line.startswith("time"):
            ready = time.monotonic()
            go.touch()
            continue
        received[int(round(float(line.split(",", 1)[0]) * fps))] = time.monotonic()
    predict.wait()
    source.wait()
    sent = dict(tuple(map(float, line.split())) for line in sent_log.read_text().splitlines())
    latency = np.array([received[k] - sent[k] for k in received if k in sent and sent[k] > ready])
    steady = np.array([received[k] - sent[k] for k in received if k in sent and sent[k] > ready + 1.0])
    return ready - sent[0], latency, steady, len(sent), len(received)


def run_frame_samples(run: Path) -> int:
    """Audio samples per frame that an audio run's model takes (fixed by its training data's frame rate)."""
    from emotrack.config.run import load_run_config

    return int(load_run_config(run)["model"]["options"]["frame_samples"])


def describe(video: Path) -> tuple[int, float]:
    """Print the video's line; returns its frame count and frame rate."""
    from emotrack.media.audio import has_audio_stream
    from emotrack.media.video import read_video

    frames, _, fps = read_video(video)
    count, (h, w) = len(frames), frames[0].shape[:2]
    sound = "with a sound track" if has_audio_stream(video) else "no sound track"
    print(f"video       {video}: {count} frames, {w}x{h}, {fps:g} fps, {sound}; {os.cpu_count()} CPU cores")
    return count, fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="a video to use instead of the synthetic one")
    parser.add_argument("--frames", type=int, default=300, help=f"length of the synthetic video (at {FPS} fps; "
                        "the audio run's video lasts as long at its own rate)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "emotrack" / "bench_preprocess", help="where the synthetic videos are kept")
    parser.add_argument("--run", type=Path, help="a huang2018 run folder to use instead of training one")
    parser.add_argument("--astnet-run", type=Path, help="an AST-Net run folder to use instead of training one")
    parser.add_argument("--audio-run", type=Path, help="a tzirakis2017-audio run folder to use instead of "
                        "training one (its video is made at the run's frame rate)")
    parser.add_argument("--audio-video", type=Path, help="a video with a sound track, at the audio run's frame "
                        "rate, to use instead of the synthetic one")
    parser.add_argument("--no-astnet", action="store_true", help="skip AST-Net")
    parser.add_argument("--no-audio-model", action="store_true", help="skip the Tzirakis 2017 speech network")
    parser.add_argument("--repeats", type=int, default=2, help="calls per figure; the fastest is printed")
    args = parser.parse_args()

    from emotrack.faces.track import FaceTracker
    from emotrack.media.audio import AUDIO_RATE, samples_per_frame
    from emotrack.media.video import read_video

    video = args.video or cached_video(args.cache, args.frames)
    FaceTracker().track_all(list(read_video(video)[0][:11]))  # MTCNN's compilation, once per process
    count, fps = describe(video)
    audio_video = audio_count = None
    if not args.no_audio_model:
        audio_fps = AUDIO_RATE / run_frame_samples(args.audio_run) if args.audio_run is not None else AUDIO_FPS
        audio_video = args.audio_video
        if audio_video is None:
            frames = int(round(args.frames / FPS * audio_fps))
            audio_video = args.cache / f"faces-{WIDTH}x{HEIGHT}-{audio_fps:g}fps-audio-{frames}.mp4"
            if not audio_video.is_file():
                print(f"making {audio_video} ...")
                make_audio_video(audio_video, frames, audio_fps)
        audio_count, audio_video_fps = describe(audio_video)
        if args.audio_run is not None and run_frame_samples(args.audio_run) != samples_per_frame(audio_video_fps):
            parser.error(f"{args.audio_run} takes {run_frame_samples(args.audio_run)} audio samples per frame but "
                         f"{audio_video} gives {samples_per_frame(audio_video_fps)} ({audio_video_fps:g} fps)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = tmp / "out"
        work.mkdir()

        def linked(path: Path) -> Path:
            clip = work / path.name
            if not clip.exists():
                clip.symlink_to(path.resolve())
            return clip

        # (label, run, (experiment, overrides), crop size, gray, corpus frame rate, video, frames, target)
        runs = [("huang2018-convlstm (CPU size, 112x112 gray)", args.run, HUANG, 112, True, VISUAL_CORPUS_FPS,
                 linked(video), count, fps)]
        if not args.no_astnet:
            runs.append(("astnet2017 fer2013 (224x224 RGB)", args.astnet_run, ASTNET, 224, False, VISUAL_CORPUS_FPS,
                         linked(video), count, 40.0))
        if not args.no_audio_model:
            runs.append((f"tzirakis2017-audio (paper size, {samples_per_frame(audio_video_fps)} samples/frame)", args.audio_run, AUDIO,
                         112, True, AUDIO_FPS, linked(audio_video), audio_count, audio_video_fps))
        corpora: dict[float, Path] = {}
        for label, run, (experiment, overrides), size, gray, corpus_fps, clip, frames, target in runs:
            if run is None:
                if corpus_fps not in corpora:
                    from emotrack.synth.corpus import synthesize_corpus

                    start = time.perf_counter()
                    corpora[corpus_fps] = tmp / f"corpus-{corpus_fps:g}fps"
                    synthesize_corpus(corpora[corpus_fps], sessions=4, seconds=10.0, fps=corpus_fps, progress=False)
                    print(f"            training corpus: 4 sessions of 10 s at {corpus_fps:g} fps with sound "
                          f"({time.perf_counter() - start:.0f} s)")
                start = time.perf_counter()
                run = train_run(corpora[corpus_fps], tmp / "runs" / experiment, experiment, overrides, size, gray)
                print(f"            trained and evaluated {experiment} in {time.perf_counter() - start:.0f} s")
            if experiment == AUDIO[0] and run_frame_samples(run) != samples_per_frame(target):
                raise SystemExit(f"the audio run {run} takes {run_frame_samples(run)} samples per frame "
                                 f"({AUDIO_RATE / run_frame_samples(run):g} fps) but {clip.name} is at {target:g} fps "
                                 f"({samples_per_frame(target)}); give a video at the run's rate with --audio-video")
            csv_fps = timed(run, clip, frames, None, args.repeats)
            overlay_fps = timed(run, clip, frames, work / "overlay.mp4", args.repeats)
            print(f"{label}: {csv_fps:6.1f} frames/s  CSV only; {overlay_fps:6.1f} frames/s  with --overlay "
                  f"(target {target:g} frames/s: {'met' if csv_fps >= target else 'missed'} CSV only, "
                  f"{'met' if overlay_fps >= target else 'missed'} with --overlay)")
            if experiment != AUDIO[0]:  # a live source cannot feed the speech network (see emotrack.apps.live)
                startup, latency, steady, sent, rows = live_latency(run, clip, fps, work)
                span = clip_span_s(run, fps)
                p50, p95 = np.percentile(latency, [50, 95]) if len(latency) else (np.nan, np.nan)
                s50, s95 = np.percentile(steady, [50, 95]) if len(steady) else (np.nan, np.nan)
                print(f"{label} live, '-' at {fps:g} fps in real time: latency from a frame's arrival to its row "
                      f"median {p50:.2f} s, 95th percentile {p95:.2f} s over the {len(latency)} frames sent once "
                      f"it was ready (goal: clip span {span:.2f} s + 0.2 s = {span + 0.2:.2f} s: "
                      f"{'met' if p95 <= span + 0.2 else 'missed'}); from a second after it was ready on: median "
                      f"{s50:.2f} s, 95th percentile {s95:.2f} s; start-up {startup:.1f} s; {rows} rows for "
                      f"{sent} frames sent ({sent - rows} dropped); load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
