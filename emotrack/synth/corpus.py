"""A small synthetic audiovisual emotion corpus, made from a seed, in emotrack's generic layout.

`make demo` and the tests use it where no licensed corpus is at hand. Every session has one subject who
shows a hidden ("latent") arousal and valence in the face and the voice; the ratings are that latent affect
as an annotator reports it, two seconds late and a little noisy, as in real continuous annotation.

Layout written under `out_dir`::

    partitions.csv          session,subject,partition (train / devel / test; subjects never shared)
    videos/<session>.mp4    H.264 (yuv420p) at `fps`, width x height, with 16 kHz mono AAC audio
    ratings/<session>.csv   time,arousal,valence,liking; a row every 1/rating_rate s from 0.000

Conventions:
    - Frame k shows the latent affect at t = k / fps; frames and rating rows are the instants
      0, 1/rate, 2/rate, ... before `seconds`, so a session has ceil(seconds * fps) frames and
      ceil(seconds * rating_rate) rating rows (40 s at 10 Hz: 400 of each).
    - The rating at t is the latent affect at max(t - annotator_delay_s, 0) plus smoothed rater noise,
      clipped to [-1, 1]. `latent_affect` gives the latent affect itself.
    - Everything random comes from `numpy.random.SeedSequence(seed)` with a fixed spawn key per use
      (partitions; per session: affect, head motion, voice, rater noise; per subject: look), so a session
      does not change when the number of sessions changes, and one seed gives byte-identical files (videos
      with `emotrack.media.video.write_video`, whose x264 settings make the encode a function of the
      frames alone; sessions are written one after another, by one process).
    - Faces: the face box MTCNN finds is 0.30-0.55 of the frame height wide (subject size 0.34-0.47
      times a stretch of 0.89-1.13, then head movement; 41-70 px at 160x128), centred at 0.36-0.64 of
      the width and 0.45-0.55 of the height, and moves a few pixels around that. Keep frames at least
      96 px high so that the smallest faces stay clear of MTCNN's default 20-pixel minimum.

How the faces are made: see `emotrack.synth.face`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emotrack.files import atomic_path
from emotrack.media.video import write_video
from emotrack.synth import face as _synth_face

AUDIO_RATE = 16000
PARTITIONS = ("train", "devel", "test")
DIMENSIONS = ("arousal", "valence", "liking")

# Spawn keys of the independent random streams (see the module docstring).
_KEY_PARTITIONS, _KEY_SESSION, _KEY_SUBJECT = 0, 1, 2
_AFFECT, _MOTION, _VOICE, _RATER = 0, 1, 2, 3

# Latent affect: a sum of slow sinusoids per dimension, periods 4-30 s ("a few seconds" of emotional
# change), then stretched to span a random band of +-0.62..0.8 around a centre within +-0.15.
_AFFECT_SINES = 4
_AFFECT_PERIODS_S = (4.0, 30.0)
_AFFECT_GRID_S = 0.05


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for one use, named by its spawn key."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclasses.dataclass(frozen=True)
class _AffectTrack:
    """Parameters of one session's latent affect (see `latent_affect`)."""

    freqs: np.ndarray  # (3, K) Hz
    phases: np.ndarray  # (3, K) radians
    amps: np.ndarray  # (3, K)
    lows: np.ndarray  # (3,) raw minimum over the session
    highs: np.ndarray  # (3,) raw maximum
    centres: np.ndarray  # (3,) centre of the band each dimension spans
    halves: np.ndarray  # (3,) half width of that band
    seconds: float

    def raw(self, times: np.ndarray) -> np.ndarray:
        """(T,) seconds -> (T, 3) unnormalised arousal, valence, liking."""
        t = np.asarray(times, np.float64)[:, None, None]
        sums = (self.amps * np.sin(2 * np.pi * self.freqs * t + self.phases)).sum(-1)
        # Liking follows valence, with a taste of its own.
        sums[:, 2] = 0.8 * sums[:, 1] + 0.45 * sums[:, 2]
        return sums


def _affect_track(seed: int, session_index: int, seconds: float) -> _AffectTrack:
    rng = _rng(seed, _KEY_SESSION, session_index, _AFFECT)
    lo, hi = np.log(1 / _AFFECT_PERIODS_S[1]), np.log(1 / _AFFECT_PERIODS_S[0])
    freqs = np.exp(rng.uniform(lo, hi, size=(3, _AFFECT_SINES)))
    phases = rng.uniform(0, 2 * np.pi, size=(3, _AFFECT_SINES))
    amps = rng.uniform(0.5, 1.0, size=(3, _AFFECT_SINES))
    centres = rng.uniform(-0.15, 0.15, size=3)
    halves = rng.uniform(0.62, 0.8, size=3)
    track = _AffectTrack(freqs, phases, amps, np.zeros(3), np.ones(3), centres, halves, float(seconds))
    grid = track.raw(np.arange(0.0, seconds + _AFFECT_GRID_S, _AFFECT_GRID_S))
    return dataclasses.replace(track, lows=grid.min(0), highs=grid.max(0))


def latent_affect(times, seed: int = 0, session_index: int = 0, seconds: float = 40.0) -> np.ndarray:
    """The latent (true, undelayed) affect that session `session_index` of a corpus shows.

    Args:
        times: (T,) seconds; values outside [0, seconds] are held at the nearest end.
        seed, session_index, seconds: as given to (and numbered by) `synthesize_corpus`; session
            `S01` is index 0.

    Returns:
        (T, 3) float64 arousal, valence, liking in [-1, 1]; frame k of the video shows row t = k / fps.
    """
    track = _affect_track(seed, session_index, seconds)
    t = np.clip(np.asarray(times, np.float64).ravel(), 0.0, seconds)
    unit = 2 * (track.raw(t) - track.lows) / np.maximum(track.highs - track.lows, 1e-9) - 1
    return np.clip(track.centres + track.halves * unit, -1.0, 1.0)


def _instants(seconds: float, rate: float) -> np.ndarray:
    """The instants 0, 1/rate, ... strictly before `seconds` (tolerant of float round-off)."""
    return np.arange(math.ceil(seconds * rate - 1e-9)) / rate


def session_ratings(seed: int, session_index: int, seconds: float = 40.0, rating_rate: float = 10.0,
                    annotator_delay_s: float = 2.0,
                    rater_noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The ratings written to `ratings/<session>.csv` (before rounding to the file's decimals).

    Returns:
        times: (N,) seconds, N = ceil(seconds * rating_rate); values: (N, 3) arousal, valence, liking in
        [-1, 1]: the latent affect at max(t - annotator_delay_s, 0) plus noise low-pass filtered over
        about 0.25 s and scaled to standard deviation `rater_noise`.
    """
    from scipy import ndimage

    times = _instants(seconds, rating_rate)
    values = latent_affect(np.maximum(times - annotator_delay_s, 0.0), seed, session_index, seconds)
    noise = _rng(seed, _KEY_SESSION, session_index, _RATER).standard_normal(values.shape)
    noise = ndimage.gaussian_filter1d(noise, max(0.25 * rating_rate, 0.5), axis=0, mode="nearest")
    noise *= rater_noise / np.maximum(noise.std(0), 1e-9) if len(times) > 1 else 0.0
    return times, np.clip(values + noise, -1.0, 1.0)


def head_motion(arousal: np.ndarray, rng: np.random.Generator, fps: float, height: int,
                gain: float = 1.0) -> np.ndarray:
    """Small head movements whose size and speed grow with arousal.

    Slow sway (about 0.5 s smoothing) and quick jitter (about 0.12 s) of translation, rotation and
    distance; the sway scales with arousal and the jitter comes in only as arousal rises.

    Args:
        arousal: (T,) arousal per frame in [-1, 1].
        rng: the session's motion generator.
        fps: frame rate; height: frame height in pixels (translations scale with it).
        gain: the subject's temperament, multiplies the amount.

    Returns:
        (T, 4) float32 poses (dx, dy in pixels, rotation in radians, zoom factor) for `FaceRenderer.render`.
    """
    from scipy import ndimage

    n = len(arousal)

    def smooth_noise(sigma_s):
        x = rng.standard_normal((n, 4))
        if n > 1:
            x = ndimage.gaussian_filter1d(x, max(sigma_s * fps, 0.3), axis=0, mode="nearest")
            x /= np.maximum(x.std(0), 1e-9)
        return x

    slow, quick = smooth_noise(0.5), smooth_noise(0.12)
    energy = ((np.asarray(arousal) + 1) / 2)[:, None]  # 0 (calm) .. 1 (excited)
    moves = gain * ((0.2 + energy) * slow + 0.8 * energy * quick)
    scale = np.array([0.018 * height, 0.012 * height, np.deg2rad(3.5), 0.015])
    poses = moves * scale
    poses[:, 3] += 1.0
    return poses.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SyntheticFrame:
    """One rendered frame with what produced it.

    Attributes:
        time: seconds from the start of the session.
        image: (height, width, 3) uint8 RGB.
        arousal, valence: the latent affect the face shows.
        keypoints: where MTCNN's five landmarks of the neutral face lie in this frame ((x, y) pixels,
            MTCNN's names); the expression moves the mouth corners away from theirs.
    """

    time: float
    image: np.ndarray
    arousal: float
    valence: float
    keypoints: dict


def iter_session_frames(seed: int, session_index: int, seconds: float = 40.0, fps: float = 10.0,
                        width: int = 160, height: int = 128) -> Iterator[SyntheticFrame]:
    """The frames of session `session_index` exactly as `synthesize_corpus` encodes them."""
    look = _synth_face.sample_subject_look(_rng(seed, _KEY_SUBJECT, session_index))
    renderer = _synth_face.FaceRenderer(look, width, height)
    times = _instants(seconds, fps)
    affect = latent_affect(times, seed, session_index, seconds)
    poses = head_motion(affect[:, 0], _rng(seed, _KEY_SESSION, session_index, _MOTION), fps, height,
                        look.motion_gain)
    for t, (arousal, valence, _), pose in zip(times, affect, poses):
        yield SyntheticFrame(float(t), renderer.render(arousal, valence, pose), float(arousal),
                             float(valence), renderer.keypoints(pose))


def session_voice(seed: int, session_index: int, seconds: float = 40.0) -> np.ndarray:
    """The session's audio track: a voiced-like signal whose loudness and pitch rise with arousal.

    A harmonic tone (12 harmonics, 1/h amplitudes) with a little vibrato and intonation, cut into
    syllables of 0.12-0.3 s by raised-cosine envelopes with short gaps and a pause now and then, plus
    breath noise. Arousal from -1 to 1 raises the level by 20 dB (about -30 to -10 dBFS RMS while
    voiced) and the pitch by 70 % (about 100 to 170 Hz times the subject's voice pitch).

    Returns:
        (round(seconds * 16000),) float32 in [-1, 1] at `AUDIO_RATE`.
    """
    from scipy import ndimage

    rng = _rng(seed, _KEY_SESSION, session_index, _VOICE)
    look = _synth_face.sample_subject_look(_rng(seed, _KEY_SUBJECT, session_index))
    n = int(round(seconds * AUDIO_RATE))
    t = np.arange(n) / AUDIO_RATE
    grid = np.arange(0.0, seconds + 0.02, 0.01)  # the affect changes slowly: 100 Hz is plenty
    energy = (np.interp(t, grid, latent_affect(grid, seed, session_index, seconds)[:, 0]) + 1) / 2
    # Intonation: slow pitch wander of about 4 %, small next to the 70 % that arousal moves the pitch.
    wander = ndimage.gaussian_filter1d(rng.standard_normal(len(grid)), 30.0, mode="nearest")
    intonation = np.interp(t, grid, 0.04 * wander / max(wander.std(), 1e-9))
    f0 = look.voice_pitch * (100 + 70 * energy) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t) + intonation)
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    tone = sum(np.sin(h * phase) / h for h in range(1, 13))
    tone /= np.sqrt(np.mean(tone**2)) + 1e-9

    envelope = np.zeros(n)
    start = rng.uniform(0.0, 0.2)
    while start < seconds:
        length = rng.uniform(0.12, 0.3)
        i0, i1 = int(start * AUDIO_RATE), min(int((start + length) * AUDIO_RATE), n)
        if i1 > i0:
            envelope[i0:i1] = np.sin(np.pi * np.arange(i1 - i0) / (i1 - i0)) ** 2
        start += length + rng.uniform(0.03, 0.1) + (rng.uniform(0.2, 0.5) if rng.random() < 0.1 else 0.0)
    level = 10 ** ((-28 + 20 * energy) / 20)
    breath = rng.standard_normal(n)
    signal = level * envelope * (tone + 0.15 * breath) + 0.002 * rng.standard_normal(n)
    return np.clip(signal, -1, 1).astype(np.float32)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")  # the same bytes on every platform


def assign_partitions(seed: int, sessions: int, partitions) -> list[str]:
    """Partition name per session: at least one session each, the rest by the given fractions."""
    fractions = np.asarray(partitions, np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError(f"partitions must be three non-negative fractions (train, devel, test), "
                         f"got {partitions!r}")
    if sessions < 3:
        raise ValueError(f"sessions={sessions}: the corpus needs at least 3 sessions, one for each of "
                         f"train, devel and test")
    fractions = fractions / fractions.sum()
    devel = max(1, int(round(sessions * fractions[1])))
    test = max(1, int(round(sessions * fractions[2])))
    while sessions - devel - test < 1:  # train keeps at least one session
        if devel >= test:
            devel -= 1
        else:
            test -= 1
    names = ["train"] * (sessions - devel - test) + ["devel"] * devel + ["test"] * test
    order = _rng(seed, _KEY_PARTITIONS).permutation(sessions)
    return [names[i] for i in order]


def synthesize_corpus(out_dir, sessions=12, seconds=40.0, fps=10.0, seed=0, annotator_delay_s=2.0,
                      rater_noise=0.05, width=160, height=128, rating_rate=10.0,
                      partitions=(0.6, 0.2, 0.2), progress=True) -> dict:
    """Write a synthetic audiovisual emotion corpus in the generic layout (see the module docstring).

    Args:
        out_dir: folder to write to (created; files of an earlier corpus there are replaced, and videos and
            ratings of sessions `S<number>` that this corpus does not have are removed).
        sessions: number of sessions, one subject each; at least 3.
        seconds: length of every session.
        fps: video frame rate.
        seed: the seed everything random is drawn from.
        annotator_delay_s: how far the ratings lag the face.
        rater_noise: standard deviation of the (smoothed) noise added to the ratings.
        width, height: frame size in pixels (even numbers, for yuv420p).
        rating_rate: rating rows per second.
        partitions: fractions of sessions for train, devel and test; each gets at least one session.
        progress: show a progress bar over sessions.

    Returns:
        {'root': str, 'seed', 'seconds', 'fps', 'rating_rate', 'audio_rate', 'annotator_delay_s',
         'sessions': [{'session': 'S01', 'subject': 'subj01', 'partition': 'train', 'video': str,
                       'ratings': str, 'frames': int}, ...]}
    """
    from tqdm import tqdm

    if seconds <= 0 or fps <= 0 or rating_rate <= 0:
        raise ValueError(f"seconds, fps and rating_rate must be positive, "
                         f"got {seconds}, {fps}, {rating_rate}")
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise ValueError(f"width and height must be even and at least 16 (yuv420p), got {width}x{height}")
    if annotator_delay_s < 0 or rater_noise < 0:
        raise ValueError("annotator_delay_s and rater_noise must not be negative")
    sessions = int(sessions)
    assigned = assign_partitions(seed, sessions, partitions)
    digits = max(2, len(str(sessions)))
    names = [f"S{i + 1:0{digits}d}" for i in range(sessions)]
    subjects = [f"subj{i + 1:0{digits}d}" for i in range(sessions)]

    root = Path(out_dir).resolve()
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "ratings").mkdir(parents=True, exist_ok=True)
    summary = []
    for index in tqdm(range(sessions), desc="synthetic sessions", unit="session", disable=not progress):
        name = names[index]
        times, values = session_ratings(seed, index, seconds, rating_rate, annotator_delay_s, rater_noise)
        lines = [",".join(("time",) + DIMENSIONS) + "\n"]
        lines += [f"{t:.3f},{a:.6f},{v:.6f},{li:.6f}\n" for t, (a, v, li) in zip(times, values)]
        ratings_path = root / "ratings" / f"{name}.csv"
        with atomic_path(ratings_path) as tmp:
            _write_text(tmp, "".join(lines))

        video_path = root / "videos" / f"{name}.mp4"
        images = (f.image for f in iter_session_frames(seed, index, seconds, fps, width, height))
        # crf 12 keeps the fine lines of the face.
        write_video(video_path, images, fps, quality=12, audio=session_voice(seed, index, seconds),
                    audio_rate=AUDIO_RATE)
        summary.append({"session": name, "subject": subjects[index], "partition": assigned[index],
                        "video": str(video_path), "ratings": str(ratings_path),
                        "frames": len(_instants(seconds, fps))})

    # The partition file comes last: once it lists a session, that session's files are complete.
    rows = "".join(f"{s},{j},{p}\n" for s, j, p in zip(names, subjects, assigned))
    with atomic_path(root / "partitions.csv") as tmp:
        _write_text(tmp, "session,subject,partition\n" + rows)
    keep = set(names)
    for folder, suffix in (("videos", ".mp4"), ("ratings", ".csv")):
        for stale in (root / folder).glob(f"S*{suffix}"):
            if re.fullmatch(r"S\d+", stale.stem) and stale.stem not in keep:
                stale.unlink()
    return {"root": str(root), "seed": seed, "seconds": float(seconds), "fps": float(fps),
            "rating_rate": float(rating_rate), "audio_rate": AUDIO_RATE,
            "annotator_delay_s": float(annotator_delay_s), "sessions": summary}
