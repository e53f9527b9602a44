"""Synthetic corpora in the release layouts of the built-in corpus specs, so that a spec's reader and a
paper's whole protocol (``emotrack reproduce PAPER --smoke``) run on data laid out exactly as the
licensed corpus is.

The sessions are those of :mod:`emotrack.synth.corpus` (the same faces, voices and ratings from the
same seed); only the files differ, each in its release's format, rate and folder names (the spec files
in ``data_specs/`` document each release):

``generic`` (emotrack's own layout, what :func:`emotrack.synth.corpus.synthesize_corpus` writes)

``sewa-avec2017`` (SEWA as released for AVEC 2017), video at 50 fps::

    video/Train_01.avi      MPEG-4 part 2 (what Xvid writes), no sound
    audio/Train_01.wav      16 kHz mono PCM
    labels/Train_01.csv     'Train_01';0.000000;<arousal>;<valence>;<liking>, a row every 0.1 s, no
                            header; train and devel only (the test labels are not released)

``recola-avec2016`` (RECOLA as released for AVEC 2016), video at 25 fps::

    recordings_video/{train,dev,test}_N.mp4                  H.264, no sound
    recordings_audio/{train,dev,test}_N.wav                  16 kHz mono PCM
    ratings_gold_standard/{arousal,valence}/train_N.arff     ARFF, a row every 40 ms; train and dev only

``recola`` (the full RECOLA release), video at 25 fps::

    RECOLA-Video-recordings/P16.mp4                          H.264, no sound
    RECOLA-Audio-recordings/P16.wav                          16 kHz mono PCM
    RECOLA-Annotation/emotional_behaviour/{arousal,valence}/P16.csv
                            time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3, a row every 40 ms; the six raters differ
                            from the gold standard by noise that averages to zero over them, so their
                            mean (what the spec reads) is the session's ratings

``semaine-avec2012`` (SEMAINE as released for AVEC 2012), video at 49.979 fps::

    video/{train,devel,test}/train001.avi     MPEG-4 part 2 with a 48 kHz mono PCM sound track
    emotion labels/train/FC_train_labels/labels_continuous_train001_{arousal,expectancy,power,valence}.dat
                            one value per line at 49.979 Hz (one per video frame at the release's rate)

    The synthetic face shows arousal and valence only: ``power`` holds the session's liking track and
    ``expectancy`` the liking track of an unrelated session (index + 100000), so both are smooth,
    plausible and independent of what the face shows.

``afew-va`` (AFEW-VA: clips shipped as frames, no sound; the spec reads them at 25 fps)::

    001/00000.png, 00001.png, ...       the frames
    001/001.json                        {"video_id": "001", "actor": "actor01", "frames": {"00000":
                                        {"valence": v, "arousal": a}, ...}}, integers in -10..10

    Clips are numbered into the spec's blocks (train from 001, devel from 361, test from 481). The
    release's 68 landmarks per frame are left out: the synthetic face has five known points, not 68,
    and the spec does not read them.

``affwild2-va`` (Aff-Wild2's valence-arousal track), video at 30 fps::

    videos/batch1/<n>-30-<W>x<H>.mp4                  H.264 with a 48 kHz mono AAC sound track
    annotations/VA_Estimation_Challenge/{Train_Set,Validation_Set}/<n>-30-<W>x<H>.txt
                            "valence,arousal", then one line per video frame (3 decimals); the test
                            videos have no annotation file, as in the release

Session ``k`` of a layout is session ``k`` of the generic corpus of the same seed (the same face, voice
and ratings), and its partition is the generic corpus's, mapped to the release's naming. Ratings are
always written at the release's rate (``rating_rate`` in the result); the video's rate is the release's
unless ``fps`` asks for another (smaller, for fast tests), except AFEW-VA, whose frames must be at the
25 fps its spec reads them at.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrack.files import atomic_path
from emotrack.media.video import write_video
from emotrack.synth.corpus import (AUDIO_RATE, assign_partitions, iter_session_frames, session_ratings,
                                   session_voice, synthesize_corpus)

#: The release layouts this module writes, by spec name.
LAYOUTS: dict[str, Callable[..., dict]] = {}
#: Each release's video frame rate (the default ``fps``) and rating rate (Hz; None: one per frame).
RELEASE_RATES: dict[str, tuple[float, float | None]] = {
    "generic": (10.0, 10.0), "sewa-avec2017": (50.0, 10.0), "recola-avec2016": (25.0, 25.0),
    "recola": (25.0, 25.0), "semaine-avec2012": (49.979, 49.979), "afew-va": (25.0, None),
    "affwild2-va": (30.0, None),
}
RECOLA_RATERS = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")
#: RECOLA participant numbers used per partition (data_specs/recola.yaml: 1-39, 40-49, 50-99).
RECOLA_FIRST = {"train": 16, "devel": 40, "test": 50}
#: AFEW-VA clip numbers used per partition (data_specs/afew-va.yaml: 1-360, 361-480, 481-600).
AFEW_FIRST = {"train": 1, "devel": 361, "test": 481}
SEMAINE_DIMENSIONS = ("arousal", "expectancy", "power", "valence")
#: The session whose liking track SEMAINE's expectancy takes is this far from the session's own index.
_UNRELATED = 100_000
_SPLIT = (0.6, 0.2, 0.2)


def _layout(name: str):
    def register(function):
        LAYOUTS[name] = function
        return function
    return register


def write_wav(path: Path, samples: np.ndarray, rate: int = AUDIO_RATE) -> None:
    """16-bit PCM mono WAV, written atomically."""
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    with atomic_path(path, keep_suffix=True) as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())


def _write_text(path: Path, text: str) -> None:
    with atomic_path(_here(path)) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def _here(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _voice_48k(seed: int, index: int, seconds: float) -> np.ndarray:
    """The session's voice at 48 kHz (the releases that ship it so), resampled from 16 kHz."""
    from scipy.signal import resample_poly

    return np.clip(resample_poly(session_voice(seed, index, seconds), 3, 1), -1, 1).astype(np.float32)


def _numbered(seed: int, sessions: int, first: dict[str, int]) -> list[tuple[int, str, int]]:
    """(session index, partition, number) per session: numbered per partition from ``first``."""
    following = dict(first)
    out = []
    for index, partition in enumerate(assign_partitions(seed, sessions, _SPLIT)):
        out.append((index, partition, following[partition]))
        following[partition] += 1
    return out


def _entry(name: str, partition: str, index: int, labelled: bool = True, subject: str | None = None) -> dict:
    return {"session": name, "subject": subject or name, "partition": partition, "index": index,
            "labelled": labelled}


def _video_and_wav(video: Path, wav: Path, seed: int, index: int, seconds: float, fps: float, width: int,
                   height: int, codec: str = "libx264") -> None:
    """A session's silent video and its sound track as a separate WAV, as SEWA and RECOLA ship them."""
    frames = (f.image for f in iter_session_frames(seed, index, seconds, fps, width, height))
    write_video(_here(video), frames, fps, codec=codec)
    write_wav(_here(wav), session_voice(seed, index, seconds))


@_layout("generic")
def generic(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """emotrack's generic layout (:func:`emotrack.synth.corpus.synthesize_corpus`)."""
    made = synthesize_corpus(root, sessions=sessions, seconds=seconds, fps=fps, seed=seed, annotator_delay_s=delay,
                             rater_noise=noise, width=width, height=height, progress=False)
    return {"sessions": [_entry(s["session"], s["partition"], i, subject=s["subject"])
                         for i, s in enumerate(made["sessions"])]}


@_layout("sewa-avec2017")
def sewa_avec2017(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """SEWA in its AVEC 2017 release layout (see the module docstring)."""
    split = {"train": "Train", "devel": "Devel", "test": "Test"}
    out = []
    for index, partition, number in _numbered(seed, sessions, {p: 1 for p in split}):
        name = f"{split[partition]}_{number:02d}"
        _video_and_wav(root / "video" / f"{name}.avi", root / "audio" / f"{name}.wav", seed, index, seconds, fps,
                       width, height, codec="mpeg4")
        if partition != "test":
            times, values = session_ratings(seed, index, seconds, 10.0, delay, noise)
            _write_text(root / "labels" / f"{name}.csv", "".join(
                f"'{name}';{t:.6f};{a:.6f};{v:.6f};{li:.6f}\n" for t, (a, v, li) in zip(times, values)))
        out.append(_entry(name, partition, index, labelled=partition != "test"))
    return {"sessions": out}


def _arff(name: str, dimension: str, times: np.ndarray, values: np.ndarray) -> str:
    """An AVEC 2016 gold-standard file: 9 header lines (see data_specs/recola-avec2016.yaml), then rows."""
    head = (f"@relation GoldStandard_{dimension}_{name}\n\n@attribute Instance_name string\n"
            "@attribute frameTime numeric\n@attribute GoldStandard numeric\n\n@data\n\n")
    return head + "".join(f"{name},{t:.2f},{v:.6f}\n" for t, v in zip(times, values))


@_layout("recola-avec2016")
def recola_avec2016(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """RECOLA in its AVEC 2016 release layout (see the module docstring)."""
    split = {"train": "train", "devel": "dev", "test": "test"}
    out = []
    for index, partition, number in _numbered(seed, sessions, {p: 1 for p in split}):
        name = f"{split[partition]}_{number}"
        _video_and_wav(root / "recordings_video" / f"{name}.mp4", root / "recordings_audio" / f"{name}.wav", seed,
                       index, seconds, fps, width, height)
        if partition != "test":
            times, values = session_ratings(seed, index, seconds, 25.0, delay, noise)
            for k, dimension in enumerate(("arousal", "valence")):
                _write_text(root / "ratings_gold_standard" / dimension / f"{name}.arff",
                            _arff(name, dimension, times, values[:, k]))
        out.append(_entry(name, partition, index, labelled=partition != "test"))
    return {"sessions": out}


def _raters(seed: int, index: int, gold: np.ndarray) -> np.ndarray:
    """(N, 6) ratings of six raters whose mean is ``gold`` (N,): independent noise of sd 0.02 with its
    mean over the raters removed, shrunk where it would leave [-1, 1]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4242, index]))
    spread = rng.normal(scale=0.02, size=(len(gold), len(RECOLA_RATERS)))
    spread -= spread.mean(axis=1, keepdims=True)
    room = np.maximum(1.0 - np.abs(gold), 0.0)
    largest = np.maximum(np.abs(spread).max(axis=1), 1e-12)
    return gold[:, None] + spread * np.minimum(1.0, room / largest)[:, None]


@_layout("recola")
def recola(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """The full RECOLA release layout (see the module docstring)."""
    out = []
    for index, partition, number in _numbered(seed, sessions, RECOLA_FIRST):
        name = f"P{number}"
        _video_and_wav(root / "RECOLA-Video-recordings" / f"{name}.mp4",
                       root / "RECOLA-Audio-recordings" / f"{name}.wav", seed, index, seconds, fps, width, height)
        times, values = session_ratings(seed, index, seconds, 25.0, delay, noise)
        header = "time;" + " ;".join(RECOLA_RATERS) + "\n"  # "time;FM1 ;FM2 ;...;FF3", as released
        for k, dimension in enumerate(("arousal", "valence")):
            raters = _raters(seed, 2 * index + k, values[:, k])
            rows = "".join(f"{t:.2f};" + ";".join(f"{v:.6f}" for v in row) + "\n" for t, row in zip(times, raters))
            _write_text(root / "RECOLA-Annotation" / "emotional_behaviour" / dimension / f"{name}.csv", header + rows)
        out.append(_entry(name, partition, index))
    return {"sessions": out}


@_layout("semaine-avec2012")
def semaine_avec2012(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """SEMAINE in its AVEC 2012 release layout (see the module docstring)."""
    rate = RELEASE_RATES["semaine-avec2012"][1]
    out = []
    for index, partition, number in _numbered(seed, sessions, {"train": 1, "devel": 1, "test": 1}):
        name = f"{partition}{number:03d}"
        frames = (f.image for f in iter_session_frames(seed, index, seconds, fps, width, height))
        write_video(_here(root / "video" / partition / f"{name}.avi"), frames, fps, codec="mpeg4",
                    audio=_voice_48k(seed, index, seconds), audio_rate=48000)
        _, values = session_ratings(seed, index, seconds, rate, delay, noise)
        _, unrelated = session_ratings(seed, index + _UNRELATED, seconds, rate, delay, noise)
        tracks = {"arousal": values[:, 0], "valence": values[:, 1], "power": values[:, 2],
                  "expectancy": unrelated[:, 2]}
        folder = root / "emotion labels" / partition / f"FC_{partition}_labels"
        for dimension in SEMAINE_DIMENSIONS:
            _write_text(folder / f"labels_continuous_{name}_{dimension}.dat",
                        "".join(f"{v:.6f}\n" for v in tracks[dimension]))
        out.append(_entry(name, partition, index))
    return {"sessions": out}


def afew_scale(values: np.ndarray) -> np.ndarray:
    """Ratings in [-1, 1] as AFEW-VA's integers in -10..10."""
    return np.clip(np.round(np.asarray(values) * 10), -10, 10).astype(int)


@_layout("afew-va")
def afew_va(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """AFEW-VA's release layout: a folder of PNG frames and a JSON per clip (see the module docstring)."""
    from PIL import Image

    out = []
    for index, partition, number in _numbered(seed, sessions, AFEW_FIRST):
        name, actor = f"{number:03d}", f"actor{index + 1:02d}"
        _, values = session_ratings(seed, index, seconds, fps, delay, noise)
        scaled = afew_scale(values[:, :2])
        ratings = {f"{k:05d}": {"valence": int(v), "arousal": int(a)} for k, (a, v) in enumerate(scaled)}
        # The clip's folder appears whole or not at all.
        with atomic_path(root / name) as tmp:
            tmp.mkdir()
            for k, frame in enumerate(iter_session_frames(seed, index, seconds, fps, width, height)):
                Image.fromarray(frame.image).save(tmp / f"{k:05d}.png")
            (tmp / f"{name}.json").write_text(json.dumps({"video_id": name, "actor": actor, "frames": ratings}),
                                              encoding="utf-8")
        out.append(_entry(name, partition, index, subject=actor))
    return {"sessions": out}


@_layout("affwild2-va")
def affwild2_va(root, sessions, seconds, fps, seed, delay, noise, width, height) -> dict:
    """Aff-Wild2's valence-arousal layout (see the module docstring)."""
    split = {"train": "Train_Set", "devel": "Validation_Set"}
    out = []
    for index, partition in enumerate(assign_partitions(seed, sessions, _SPLIT)):
        name = f"{index + 1}-{round(fps)}-{width}x{height}"
        frames = (f.image for f in iter_session_frames(seed, index, seconds, fps, width, height))
        write_video(_here(root / "videos" / "batch1" / f"{name}.mp4"), frames, fps,
                    audio=_voice_48k(seed, index, seconds), audio_rate=48000)
        if partition in split:
            _, values = session_ratings(seed, index, seconds, fps, delay, noise)
            rows = "".join(f"{v:.3f},{a:.3f}\n" for a, v in values[:, :2])
            _write_text(root / "annotations" / "VA_Estimation_Challenge" / split[partition] / f"{name}.txt",
                        "valence,arousal\n" + rows)
        out.append(_entry(name, partition, index, labelled=partition in split))
    return {"sessions": out}


def synthesize_layout(spec: str, out_dir: str | Path, sessions: int = 6, seconds: float = 3.0, seed: int = 0,
                      fps: float | None = None, annotator_delay_s: float = 2.0, rater_noise: float = 0.05,
                      width: int = 160, height: int = 128) -> dict:
    """Write a synthetic corpus in ``spec``'s release layout under ``out_dir`` (see the module docstring).

    Args:
        fps: the video's frame rate; None: the release's (``RELEASE_RATES``).
        width, height: frame size in pixels (even numbers; at least 96 high keeps the faces clear of
            MTCNN's minimum size).

    Returns:
        ``{"root", "spec", "fps", "rating_rate", "sessions": [{"session", "subject", "partition",
        "index", "labelled"}, ...]}``, where ``index`` is the session's index in
        :mod:`emotrack.synth.corpus` (its ratings are ``session_ratings(seed, index, seconds,
        rating_rate, ...)``), ``rating_rate`` is None where there is one rating per video frame (then
        at ``fps``), and ``labelled`` is False for sessions the release ships without ratings.

    Raises:
        ValueError: a spec without a release layout here (naming those there are), a frame size that is
            not even, or an ``fps`` that AFEW-VA's spec would read at another rate.
    """
    if spec not in LAYOUTS:
        raise ValueError(f"no synthetic release layout for spec {spec!r}; there are: {', '.join(sorted(LAYOUTS))}")
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"width and height must be even and at least 16 (yuv420p), got {width}x{height}")
    release_fps, rating_rate = RELEASE_RATES[spec]
    if spec == "afew-va" and fps is not None and abs(fps - release_fps) > 1e-9:
        raise ValueError(f"afew-va ships frames without a rate; its spec reads them at {release_fps:g} fps, "
                         f"so fps must be {release_fps:g} (got {fps:g})")
    rate = float(fps or release_fps)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    result = LAYOUTS[spec](root, int(sessions), float(seconds), rate, seed, float(annotator_delay_s),
                           float(rater_noise), int(width), int(height))
    return {"root": str(root), "spec": spec, "fps": rate, "rating_rate": rating_rate, **result}
