"""Audio for the speech models: decoded with PyAV, 16 kHz mono, normalised per session, cut per video frame.

Tzirakis et al. 2017 (Sec. 3.1) feed their speech network the raw waveform at 16 kHz, each recording
normalised to zero mean and unit variance, in 40 ms pieces: one piece of 640 samples per video frame
at 25 fps. Preprocessing stores the audio the same way, so that every frame carries its own sound:

- :func:`read_audio` decodes the first audio stream of a file (a corpus' separate wav files, or the
  sound track of a video), mixes it to mono and resamples it to 16 kHz with FFmpeg's resampler
  (``av.AudioResampler``).
- :func:`normalise` subtracts the mean and divides by the standard deviation, both taken over the
  samples that the session's frames cover (see below), so that what is stored has zero mean and unit
  variance over the session.
- :func:`frame_windows` gives frame ``k``, shown at time ``t_k``, the ``S = round(rate / fps)`` samples
  that start at ``t_k``: ``[round(t_k * rate), round(t_k * rate) + S)``. Where ``rate / fps`` is a
  whole number (640 at 25 fps, 1600 at 10 fps) the windows tile the recording exactly. Where it is not
  (533.87 samples at 29.97 fps) every window still has the fixed length S and starts at its frame's
  time stamp, so neighbouring windows overlap by, or leave out, less than one sample. Samples before
  the start or after the end of the recording are zeros (the normalised mean).

Time 0 of the audio is time 0 of the video, the first frame the decoder outputs (the time origin of
:func:`emotrack.media.video.read_video`). For a video's own sound track the offset of its first sample to
the first video frame comes from the stream's time stamps; a separate audio file is taken to start
with the video, as the corpora release them (RECOLA, SEWA).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

#: Samples per second of the stored audio (Tzirakis et al. 2017).
AUDIO_RATE = 16000

#: A recording whose RMS over the session stays below this (-80 dB full scale) is silent: a muted or
#: disconnected microphone, nothing a speech model can learn from.
SILENCE_RMS = 1e-4


class AudioError(RuntimeError):
    """An audio file or sound track that is missing, unreadable, empty or does not match its video."""


@dataclasses.dataclass
class Audio:
    """A decoded recording: ``samples`` float32 (N,) mono at ``rate``; ``start_s`` the time of sample 0
    on the video's clock; ``source_rate`` and ``source_channels`` as stored in the file."""

    samples: np.ndarray
    rate: int
    start_s: float
    source_rate: int
    source_channels: int
    path: Path

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.samples) / self.rate


def samples_per_frame(fps: float, rate: int = AUDIO_RATE) -> int:
    """Audio samples stored with each video frame: ``round(rate / fps)`` (640 at 25 fps)."""
    if not fps or fps <= 0:
        raise ValueError(f"a positive frame rate is needed, got {fps}")
    return int(round(rate / float(fps)))


def has_audio_stream(path: str | Path) -> bool:
    """Whether a media file holds an audio stream (False when it cannot be opened at all)."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def read_audio(path: str | Path, rate: int = AUDIO_RATE, relative_to_video: bool = False) -> Audio:
    """Decode the first audio stream of a file, mixed to mono and resampled to ``rate``.

    Args:
        path: a wav file, or any container FFmpeg reads (the sound track of a video).
        relative_to_video: give ``start_s`` on the clock of the file's first video frame (the origin
            of :func:`emotrack.media.video.read_video`); otherwise relative to the file's own time 0.
    Returns:
        :class:`Audio`, samples float32 (N,) in [-1, 1] full scale.
    Raises:
        AudioError: naming the file when it is missing, cannot be decoded or holds no audio.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist; check the spec's audio.path and --root, "
                         f"or pass --no-audio")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes); copy it again from the corpus, or pass "
                         f"--no-audio")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise AudioError(f"audio file {path} cannot be read ({err}); convert it, e.g. "
                         f"`ffmpeg -i {path.name} -ac 1 -ar {rate} out.wav`, or pass --no-audio") from err
    try:
        if not container.streams.audio:
            raise AudioError(f"{path} holds no audio stream; pass --no-audio to preprocess without audio")
        stream = container.streams.audio[0]
        source_rate, channels = int(stream.rate or 0), int(stream.channels or 0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces, first_time = [], None
        for frame in container.decode(stream):
            if first_time is None and frame.time is not None:
                first_time = float(frame.time)
            pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        origin = _first_video_time(container) if relative_to_video else 0.0
    except av.error.FFmpegError as err:
        raise AudioError(f"audio of {path} could not be decoded ({err}); the file may be truncated") from err
    finally:
        container.close()
    samples = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    if not len(samples):
        raise AudioError(f"{path} holds no decodable audio samples; pass --no-audio to preprocess without audio")
    return Audio(samples=samples, rate=rate, start_s=(first_time or 0.0) - origin, source_rate=source_rate,
                 source_channels=channels, path=path)


def _first_video_time(container) -> float:
    """Time stamp of the first video frame the decoder outputs (0 when the file has no video)."""
    if not container.streams.video:
        return 0.0
    container.seek(0)
    for frame in container.decode(container.streams.video[0]):
        return float(frame.time) if frame.time is not None else 0.0
    return 0.0


def _start_indices(frame_times: np.ndarray, start_s: float, rate: int) -> np.ndarray:
    return np.round((np.asarray(frame_times, np.float64) - start_s) * rate).astype(np.int64)


def covered_span(num_samples: int, frame_times: np.ndarray, start_s: float, frame_samples: int,
                 rate: int = AUDIO_RATE) -> tuple[int, int]:
    """The sample range ``[lo, hi)`` of a recording that the frames' windows cover (within the recording)."""
    first = _start_indices(frame_times[:1], start_s, rate)[0]
    last = _start_indices(frame_times[-1:], start_s, rate)[0] + frame_samples
    return int(np.clip(first, 0, num_samples)), int(np.clip(last, 0, num_samples))


def normalise(samples: np.ndarray, span: tuple[int, int] | None = None) -> tuple[np.ndarray, float, float]:
    """Zero mean, unit variance, with the statistics of ``samples[lo:hi]`` (all samples by default).

    A silent span (standard deviation 0) is only centred.

    Returns:
        normalised float32 samples (N,), mean, standard deviation.
    """
    lo, hi = span or (0, len(samples))
    part = np.asarray(samples[lo:hi], np.float64)
    if not len(part):
        raise ValueError("no samples to take the statistics of")
    mean, std = float(part.mean()), float(part.std())
    scaled = (np.asarray(samples, np.float64) - mean) / (std if std > 0 else 1.0)
    return scaled.astype(np.float32), mean, std


def frame_windows(samples: np.ndarray, frame_times: np.ndarray, frame_samples: int, start_s: float = 0.0,
                  rate: int = AUDIO_RATE) -> np.ndarray:
    """The ``frame_samples`` samples that start at each frame's time stamp, zeros outside the recording.

    Args:
        samples: (N,) audio at ``rate``, sample 0 at ``start_s`` seconds.
        frame_times: (T,) seconds.
    Returns:
        float32 (T, frame_samples): row k is ``samples[i_k : i_k + frame_samples]`` with
        ``i_k = round((t_k - start_s) * rate)``.
    """
    index = _start_indices(frame_times, start_s, rate)
    left = int(max(0, -index.min()))
    right = int(max(0, index.max() + frame_samples - len(samples)))
    padded = np.pad(np.asarray(samples, np.float32), (left, right))
    return padded[(index + left)[:, None] + np.arange(frame_samples)[None, :]]


def session_audio(path: str | Path, frame_times: np.ndarray, fps: float, video_end_s: float,
                  own_track: bool, max_length_mismatch_s: float = 1.0,
                  rate: int = AUDIO_RATE) -> tuple[np.ndarray, dict[str, Any]]:
    """A session's audio, normalised over the session and cut per frame (see the module docstring).

    Args:
        path: the audio file, or the video whose sound track is used (``own_track``).
        frame_times: (T,) the stored frames' time stamps, seconds.
        video_end_s: where the video ends; audio whose start or end differs from the video's by more
            than ``max_length_mismatch_s`` is refused (`check_span`).
    Returns:
        audio float32 (T, S) with ``S = samples_per_frame(fps, rate)``, and its manifest entry
        (source, rates, samples per frame, normalisation mean and std in full-scale units, the
        recording's RMS over the session and ``silent``: below `SILENCE_RMS`).
    Raises:
        AudioError: naming the file.
    """
    audio = read_audio(path, rate, relative_to_video=own_track)
    check_span(audio, video_end_s, max_length_mismatch_s)
    frame_samples = samples_per_frame(fps, rate)
    span = covered_span(len(audio.samples), frame_times, audio.start_s, frame_samples, rate)
    if span[1] <= span[0]:
        raise AudioError(f"audio {audio.path} ({audio.start_s:.2f}-{audio.end_s:.2f} s) does not overlap the "
                         f"frames of its video; pass --no-audio")
    normalised, mean, std = normalise(audio.samples, span)
    windows = frame_windows(normalised, frame_times, frame_samples, audio.start_s, rate)
    rms = float(np.sqrt(np.mean(np.square(audio.samples[span[0]:span[1]], dtype=np.float64))))
    info = {"source": str(audio.path), "own_track": bool(own_track), "source_rate": audio.source_rate,
            "source_channels": audio.source_channels, "sample_rate": rate, "samples_per_frame": frame_samples,
            "start_s": round(audio.start_s, 6), "mean": mean, "std": std, "rms": rms, "silent": rms < SILENCE_RMS}
    return windows, info


def check_span(audio: Audio, video_end_s: float, tolerance_s: float = 1.0) -> None:
    """One rule at both ends: a recording that starts later or earlier than its video's first frame, or
    ends earlier or later than its video, by more than ``tolerance_s`` does not belong to it as it is.

    Raises:
        AudioError: naming the file, the end that is off and by how much.
    """
    for audio_end, video_end, audio_s, video_s in (("starts at", "starts at", audio.start_s, 0.0),
                                                   ("lasts until", "ends at", audio.end_s, video_end_s)):
        gap = audio_s - video_s
        if abs(gap) > tolerance_s:
            raise AudioError(f"audio {audio.path} {audio_end} {audio_s:.2f} s but its video {video_end} "
                             f"{video_s:.2f} s ({abs(gap):.2f} s {'later' if gap > 0 else 'earlier'}; tolerance "
                             f"{tolerance_s:g} s at either end); check that they belong to the same session and "
                             f"are in sync, or pass --no-audio")
