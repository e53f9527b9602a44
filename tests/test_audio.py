"""Audio: decoded and resampled to 16 kHz mono, normalised per session, cut per frame, stored and read back."""

import wave
from fractions import Fraction

import numpy as np
import pytest

from emotrack.data.pipeline import session_arrays
from emotrack.media.audio import (
    AUDIO_RATE,
    AudioError,
    covered_span,
    frame_windows,
    normalise,
    read_audio,
    samples_per_frame,
    session_audio,
)
from emotrack.records.manifest import read_manifest
from emotrack.records.tfrecord import parse_session, session_to_example
from emotrack.synth.corpus import session_voice

TINY_SEED, TINY_SECONDS = 7, 4.0  # tests/conftest.py's TINY_CORPUS


def _write_wav(path, signal, rate, channels=1):
    """16-bit PCM with the standard library, independent of the decoder under test."""
    pcm = np.round(np.clip(signal, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def _sine(rate, seconds, hz=440.0, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)


def test_a_48_khz_wav_becomes_the_sine_at_16_khz(tmp_path):
    _write_wav(tmp_path / "a.wav", _sine(48000, 1.0), 48000)
    audio = read_audio(tmp_path / "a.wav")
    assert audio.rate == AUDIO_RATE and audio.source_rate == 48000 and audio.source_channels == 1
    assert audio.start_s == 0.0 and audio.samples.dtype == np.float32
    assert abs(len(audio.samples) - AUDIO_RATE) <= 32
    expected = _sine(AUDIO_RATE, 1.0)
    n = min(len(expected), len(audio.samples))
    inner = slice(64, n - 64)  # away from the resampling filter's edges
    np.testing.assert_allclose(audio.samples[inner], expected[inner], atol=1e-4)  # 16-bit steps: 3e-5


def test_stereo_is_mixed_to_mono(tmp_path):
    left = _sine(16000, 0.5, 300.0, 0.3)
    _write_wav(tmp_path / "s.wav", np.stack([left, left], 1).reshape(-1), 16000, channels=2)
    audio = read_audio(tmp_path / "s.wav")
    assert audio.source_channels == 2 and audio.samples.shape == left.shape
    # Identical channels: the mix is the channel up to a gain, which the normalisation removes.
    np.testing.assert_allclose(normalise(audio.samples)[0], normalise(left)[0], atol=2e-3)


def test_samples_of_frame_k_are_the_normalised_waveform_from_t_k():
    rng = np.random.default_rng(0)
    wave_ = rng.standard_normal(16000).astype(np.float32) * 0.1 + 0.02
    fps = 10.0
    times = np.arange(10) / fps
    s = samples_per_frame(fps)
    assert (s, samples_per_frame(25.0), samples_per_frame(29.97)) == (1600, 640, 534)
    normed, mean, std = normalise(wave_, covered_span(len(wave_), times, 0.0, s))
    windows = frame_windows(normed, times, s)
    assert windows.shape == (10, 1600) and windows.dtype == np.float32
    for k, t in enumerate(times):
        start = int(round(t * AUDIO_RATE))
        np.testing.assert_array_equal(windows[k], normed[start:start + s])
    # Per-session normalisation: zero mean, unit variance over what the frames hold.
    assert abs(windows.mean()) < 1e-5 and windows.std() == pytest.approx(1.0, abs=1e-5)
    assert mean == pytest.approx(float(np.mean(wave_, dtype=np.float64)))
    assert std == pytest.approx(float(np.std(wave_, dtype=np.float64)))


def test_non_integer_samples_per_frame_and_edges_are_zero_padded():
    wave_ = np.arange(1, 1001, dtype=np.float32)
    fps = 29.97
    times = np.arange(4) / fps - 0.01  # the first frame starts 160 samples before the recording
    windows = frame_windows(wave_, times, samples_per_frame(fps), start_s=0.0)
    assert windows.shape == (4, 534)
    np.testing.assert_array_equal(windows[0, :160], 0.0)
    np.testing.assert_array_equal(windows[0, 160:], wave_[:534 - 160])
    start = int(round(times[2] * AUDIO_RATE))
    np.testing.assert_array_equal(windows[2, :1000 - start], wave_[start:])
    np.testing.assert_array_equal(windows[2, 1000 - start:], 0.0)
    # A recording that starts later than the video is shifted by its start time.
    late = frame_windows(wave_, np.array([0.05]), 100, start_s=0.05)
    np.testing.assert_array_equal(late[0], wave_[:100])


def test_missing_or_silent_audio_is_named(tmp_path):
    with pytest.raises(AudioError, match=f"audio file {tmp_path / 'none.wav'} does not exist"):
        read_audio(tmp_path / "none.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(AudioError, match="bad.wav"):
        read_audio(tmp_path / "bad.wav")
    _write_wav(tmp_path / "short.wav", _sine(16000, 0.5), 16000)
    with pytest.raises(AudioError, match="short.wav lasts until 0.50 s but its video ends at 4.00 s"):
        session_audio(tmp_path / "short.wav", np.arange(40) / 10, 10.0, 4.0, own_track=False)


def test_video_without_sound_track_is_named(tmp_path):
    import av

    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(AudioError, match=f"{path} holds no audio stream; pass --no-audio"):
        read_audio(path)


def test_records_with_and_without_audio_parse():
    t = 3
    common = dict(session="s", subject="p", partition="train", fps=10.0, rating_rate=10.0, dimensions=["a"],
                  frames=np.zeros((t, 8, 8, 1), np.uint8), face_present=np.ones(t), boxes=np.zeros((t, 4)),
                  ratings=np.zeros((t, 1)), times=np.arange(t) / 10.0)
    audio = np.arange(t * 5, dtype=np.float32).reshape(t, 5) / 7
    with_audio = parse_session(session_to_example(**common, audio=audio, audio_rate=16000), 1, 1, audio_samples=5)
    np.testing.assert_array_equal(with_audio["audio"].numpy(), audio)
    assert with_audio["audio"].shape == (t, 5) and with_audio["audio"].dtype == np.float32
    without = parse_session(session_to_example(**common), 1, 1)
    assert without["audio"].shape == (t, 0) and without["frames"].shape == (t, 8, 8, 1)


def test_tiny_corpus_records_hold_normalised_audio_of_each_frame(tiny_corpus, tiny_tfr):
    manifest = read_manifest(tiny_tfr)
    assert manifest["audio"]["sample_rate"] == 16000 and manifest["audio"]["samples_per_frame"] == 1600
    entries = {e["session"]: e for e in manifest["sessions"]}
    for s in session_arrays(tiny_tfr):
        audio = s["audio"]
        assert audio.shape == (len(s["frames"]), 1600) and audio.dtype == np.float32
        entry = entries[s["session"]]["audio"]
        assert entry["samples_per_frame"] == 1600 and entry["sample_rate"] == 16000 and entry["own_track"]
        # 10 fps x 1600 samples tile the session: its stored audio has zero mean and unit variance.
        assert abs(audio.mean()) < 1e-4 and audio.std() == pytest.approx(1.0, abs=1e-4)
        # Frame k holds the decoded track from t_k on, normalised with the manifest's statistics.
        track = read_audio(tiny_corpus / "videos" / f"{s['session']}.mp4", relative_to_video=True)
        flat = (track.samples[:audio.size].astype(np.float64) - entry["mean"]) / entry["std"]
        np.testing.assert_allclose(audio.reshape(-1), flat, atol=1e-4)
        # ... which is the voice the corpus was made from (AAC is lossy, so compared by correlation).
        index = int(s["session"][1:]) - 1
        voice = session_voice(TINY_SEED, index, TINY_SECONDS)[:audio.size]
        assert np.corrcoef(audio.reshape(-1)[:len(voice)], voice)[0, 1] > 0.99
