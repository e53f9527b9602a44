"""Synthetic corpora in the release layouts of the built-in corpus specs, so that a spec's reader and a
paper's whole protocol (``emotrack reproduce PAPER --smoke``) run on data laid out exactly as the
licensed corpus is.

The sessions are those of :mod:`emotrack.synth.corpus` (the same faces, voices and ratings from the
same seed); only the files differ, each in its release's format:

``sewa-avec2017`` (SEWA as released for AVEC 2017)::

    video/Train_01.avi      MPEG-4 part 2 (what Xvid writes), no sound
    audio/Train_01.wav      16 kHz mono PCM
    labels/Train_01.csv     'Train_01';0.000000;<arousal>;<valence>;<liking>, a row every 0.1 s, no
                            header; train and devel only (the test labels are not released)

``recola`` (the full RECOLA release)::

    RECOLA-Video-recordings/P16.mp4                          H.264, no sound
    RECOLA-Audio-recordings/P16.wav                          16 kHz mono PCM
    RECOLA-Annotation/emotional_behaviour/{arousal,valence}/P16.csv
                            time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3, a row every 40 ms; the six raters are
                            the gold standard plus independent rater noise each

Session ``k`` of a layout is session ``k`` of the generic corpus of the same seed, and its partition is
the generic corpus's, mapped to the release's naming (SEWA: Train/Devel/Test numbered per partition;
RECOLA: participant numbers in data_specs/recola.yaml's ranges).
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emotrack.files import atomic_path
from emotrack.media.video import write_video
from emotrack.synth.corpus import (AUDIO_RATE, assign_partitions, iter_session_frames, session_ratings,
                                   session_voice)

#: The release layouts this module writes, by spec name.
LAYOUTS: dict[str, Callable[..., dict]] = {}
RECOLA_RATERS = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")
#: RECOLA participant numbers used per partition (data_specs/recola.yaml: 1-39, 40-49, 50-99).
RECOLA_FIRST = {"train": 16, "devel": 40, "test": 50}


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
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def _here(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _frames(seed, index, seconds, fps, width, height):
    return (f.image for f in iter_session_frames(seed, index, seconds, fps, width, height))


@_layout("sewa-avec2017")
def sewa_avec2017(root: Path, sessions: int, seconds: float, fps: float, seed: int, annotator_delay_s: float,
                  width: int, height: int) -> dict:
    """SEWA in its AVEC 2017 release layout (see the module docstring)."""
    split = {"train": "Train", "devel": "Devel", "test": "Test"}
    counters = {p: 0 for p in split}
    out = []
    for index, partition in enumerate(assign_partitions(seed, sessions, (0.6, 0.2, 0.2))):
        counters[partition] += 1
        name = f"{split[partition]}_{counters[partition]:02d}"
        write_video(_here(root / "video" / f"{name}.avi"), _frames(seed, index, seconds, fps, width, height), fps,
                    codec="mpeg4")
        write_wav(_here(root / "audio" / f"{name}.wav"), session_voice(seed, index, seconds))
        if partition != "test":
            times, values = session_ratings(seed, index, seconds, 10.0, annotator_delay_s)
            _write_text(_here(root / "labels" / f"{name}.csv"), "".join(
                f"'{name}';{t:.6f};{a:.6f};{v:.6f};{li:.6f}\n" for t, (a, v, li) in zip(times, values)))
        out.append({"session": name, "subject": name, "partition": partition, "index": index})
    return {"sessions": out}


@_layout("recola")
def recola(root: Path, sessions: int, seconds: float, fps: float, seed: int, annotator_delay_s: float,
           width: int, height: int) -> dict:
    """The full RECOLA release layout (see the module docstring); ``fps`` should be 25, RECOLA's rate."""
    next_number = dict(RECOLA_FIRST)
    noise = np.random.default_rng(np.random.SeedSequence([seed, 4242]))
    out = []
    for index, partition in enumerate(assign_partitions(seed, sessions, (0.6, 0.2, 0.2))):
        number = next_number[partition]
        next_number[partition] += 1
        name = f"P{number}"
        write_video(_here(root / "RECOLA-Video-recordings" / f"{name}.mp4"),
                    _frames(seed, index, seconds, fps, width, height), fps)
        write_wav(_here(root / "RECOLA-Audio-recordings" / f"{name}.wav"), session_voice(seed, index, seconds))
        times, values = session_ratings(seed, index, seconds, 25.0, annotator_delay_s)
        for k, dimension in enumerate(("arousal", "valence")):
            raters = np.clip(values[:, k, None] + noise.normal(scale=0.02, size=(len(times), len(RECOLA_RATERS))), -1, 1)
            header = "time;" + ";".join(f"{r} " for r in RECOLA_RATERS) + "\n"
            rows = "".join(f"{t:.2f};" + ";".join(f"{v:.6f}" for v in row) + "\n" for t, row in zip(times, raters))
            _write_text(_here(root / "RECOLA-Annotation" / "emotional_behaviour" / dimension / f"{name}.csv"), header + rows)
        out.append({"session": name, "subject": name, "partition": partition, "index": index})
    return {"sessions": out}


def synthesize_layout(spec: str, out_dir: str | Path, sessions: int = 6, seconds: float = 3.0, seed: int = 0,
                      fps: float | None = None, annotator_delay_s: float = 2.0, width: int = 160,
                      height: int = 128) -> dict:
    """Write a synthetic corpus in ``spec``'s release layout under ``out_dir``.

    Returns:
        ``{"root", "spec", "sessions": [{"session", "subject", "partition", "index"}, ...]}``, where
        ``index`` is the session's index in :mod:`emotrack.synth.corpus` (its ratings are
        ``session_ratings(seed, index, ...)``).

    Raises:
        ValueError: a spec without a release layout here (naming those there are).
    """
    if spec not in LAYOUTS:
        raise ValueError(f"no synthetic release layout for spec {spec!r}; there are: {', '.join(sorted(LAYOUTS))}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rate = fps or (25.0 if spec == "recola" else 10.0)
    result = LAYOUTS[spec](root, int(sessions), float(seconds), rate, seed, annotator_delay_s, width, height)
    return {"root": str(root), "spec": spec, "fps": rate, **result}
