"""Tests of the synthetic corpus generator (`emotrack.synth.corpus`).

Convention checked here: a session of `seconds` has ceil(seconds * rate) frames / rating rows, at the
instants 0, 1/rate, ... before `seconds`.
"""

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.synth import corpus as synth

SECONDS = 3.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3 sessions x 3 s at the default 160x128, 10 fps: big enough for MTCNN, small enough to be quick."""
    root = tmp_path_factory.mktemp("synth")
    return synth.synthesize_corpus(root, sessions=3, seconds=SECONDS, seed=7, progress=False)


def _read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _decode_video(path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, rate


def _decode_audio(path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        layouts = set()
        chunks = []
        for frame in container.decode(stream):
            layouts.add(frame.layout.name)
            chunks.append(frame.to_ndarray().reshape(-1))
        return np.concatenate(chunks), stream.rate, layouts


def _gray(image):
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _tiny(root, seed, sessions=3, seconds=2.0):
    return synth.synthesize_corpus(root, sessions=sessions, seconds=seconds, seed=seed, width=64, height=48,
                                   progress=False)


def _hashes(root) -> dict[str, str]:
    """sha256 of every file under `root`, by path relative to it."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _synth_args(out, seed, *extra):
    return ["synth", "--out", str(out), "--sessions", "3", "--seconds", "2", "--width", "64", "--height", "64",
            "--seed", str(seed), *extra]


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    runner = CliRunner()
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        result = runner.invoke(main, _synth_args(tmp_path / name, seed))
        assert result.exit_code == 0, result.output
    a, b, c = (_hashes(tmp_path / name) for name in "abc")
    assert sorted(a) == ["partitions.csv", "ratings/S01.csv", "ratings/S02.csv", "ratings/S03.csv",
                         "videos/S01.mp4", "videos/S02.mp4", "videos/S03.mp4"]
    assert a == b
    assert all(a[name] != c[name] for name in a if name != "partitions.csv")


@pytest.mark.skipif(sys.platform != "linux", reason="MALLOC_PERTURB_ is glibc's")
@pytest.mark.parametrize("layout", ["generic", "recola-avec2016"])
def test_files_do_not_depend_on_what_the_process_left_in_memory(tmp_path, layout):
    """Two processes whose new heap blocks start filled with different bytes (glibc's MALLOC_PERTURB_) write
    the same files: nothing written depends on memory that was never set. x264's MB-tree once did, so
    the same seed gave different videos depending on what numpy had freed before each encode."""
    command = str(Path(sys.executable).parent / "emotrack")
    for fill in ("85", "170"):
        env = {**os.environ, "MALLOC_PERTURB_": fill}
        done = subprocess.run([command, *_synth_args(tmp_path / fill, 1, "--layout", layout, "--fps", "10")],
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    first = _hashes(tmp_path / "85")
    assert any(name.endswith((".mp4", ".avi")) for name in first)
    assert first == _hashes(tmp_path / "170")


def test_layout_partitions_and_ratings(corpus):
    root = Path(corpus["root"])
    rows = _read_rows(root / "partitions.csv")
    assert (root / "partitions.csv").read_text().splitlines()[0] == "session,subject,partition"
    assert [r["session"] for r in rows] == ["S01", "S02", "S03"]
    assert sorted(r["partition"] for r in rows) == ["devel", "test", "train"]
    assert len({r["subject"] for r in rows}) == 3
    assert [(s["session"], s["subject"], s["partition"]) for s in corpus["sessions"]] == \
        [(r["session"], r["subject"], r["partition"]) for r in rows]
    for session in corpus["sessions"]:
        path = Path(session["ratings"])
        assert path == root / "ratings" / f"{session['session']}.csv"
        lines = path.read_text().splitlines()
        assert lines[0] == "time,arousal,valence,liking"
        assert len(lines) - 1 == 30  # 3 s at 10 Hz
        assert lines[1].split(",")[0] == "0.000" and lines[-1].split(",")[0] == "2.900"
        values = np.array([[float(x) for x in line.split(",")] for line in lines[1:]])
        assert np.all(np.abs(values[:, 1:]) <= 1.0)
        # The file holds exactly what session_ratings computes, to its 6 decimals.
        index = int(session["session"][1:]) - 1
        times, expected = synth.session_ratings(7, index, SECONDS)
        np.testing.assert_allclose(values[:, 0], times, atol=5e-4)
        np.testing.assert_allclose(values[:, 1:], expected, atol=5.1e-7)
        assert Path(session["video"]) == root / "videos" / f"{session['session']}.mp4"
        assert session["frames"] == 30
    assert not [p for p in root.rglob(".*")], "temporary files left behind"


def test_video_and_audio_streams(corpus):
    session = corpus["sessions"][1]
    frames, rate = _decode_video(session["video"])
    assert len(frames) == 30 and rate == pytest.approx(10.0)
    assert frames[0].shape == (128, 160, 3)
    # Decoded frames are the rendered ones up to H.264 and yuv420p rounding.
    rendered = [f.image for f in synth.iter_session_frames(7, 1, SECONDS)]
    assert np.mean([np.abs(d.astype(float) - r).mean() for d, r in zip(frames, rendered, strict=True)]) < 4.0
    audio, audio_rate, layouts = _decode_audio(session["video"])
    assert audio_rate == 16000 and layouts == {"mono"}
    assert len(audio) / audio_rate == pytest.approx(SECONDS, abs=0.1)
    # The encoded voice follows the synthesised one (loudness per 100 ms window).
    voice = synth.session_voice(7, 1, SECONDS)
    n = min(len(audio), len(voice)) // 1600 * 1600
    rms = [np.sqrt((x[:n].reshape(-1, 1600) ** 2).mean(1)) for x in (audio, voice)]
    assert np.corrcoef(*rms)[0, 1] > 0.9


def test_mtcnn_finds_exactly_one_face(corpus):
    from mtcnn import MTCNN

    detector = MTCNN()
    frames = [f for s in corpus["sessions"] for f in _decode_video(s["video"])[0]]
    faces = detector.detect_faces(frames)
    assert len(faces) == 90
    one = [len(found) == 1 for found in faces]
    assert np.mean(one) >= 0.95, f"exactly one face in {sum(one)} of {len(one)} frames"
    # The face found is the one drawn: MTCNN's eyes lie on the rendered landmarks.
    truth = [f.keypoints for i in range(3) for f in synth.iter_session_frames(7, i, SECONDS)]
    eyes = ("left_eye", "right_eye")
    errors = [max(np.hypot(*np.subtract(found[0]["keypoints"][eye], kp[eye])) for eye in eyes)
              for found, kp in zip(faces, truth, strict=True) if len(found) == 1]
    assert np.median(errors) < 3.0


def test_ratings_lag_latent_affect_by_annotator_delay():
    seconds, rate = 60.0, 10.0
    for delay in (2.0, 3.5):
        times, ratings = synth.session_ratings(3, 0, seconds, rate, annotator_delay_s=delay, rater_noise=0.05)
        latent = synth.latent_affect(times, seed=3, session_index=0, seconds=seconds)
        lags = np.arange(0, 61)
        for dim in (0, 1):
            corr = [np.corrcoef(ratings[lag:, dim], latent[:len(times) - lag, dim])[0, 1] for lag in lags]
            assert abs(lags[int(np.argmax(corr))] - delay * rate) <= 1, (delay, dim)
    # Without rater noise a rating is exactly the delayed latent affect, the first value held at the start.
    times, ratings = synth.session_ratings(3, 0, seconds, rate, annotator_delay_s=2.0, rater_noise=0.0)
    np.testing.assert_allclose(ratings, synth.latent_affect(np.maximum(times - 2.0, 0), 3, 0, seconds))
    assert np.all(ratings[:21] == ratings[0])


def test_latent_affect_spans_range_and_liking_follows_valence():
    for index in range(4):
        affect = synth.latent_affect(np.arange(0, 40, 0.1), seed=0, session_index=index, seconds=40.0)
        assert np.all(np.abs(affect) <= 1.0)
        assert np.all(affect.max(0) - affect.min(0) > 1.2)  # a good part of [-1, 1] in every session
        assert np.corrcoef(affect[:, 1], affect[:, 2])[0, 1] > 0.6


def test_voice_loudness_and_pitch_rise_with_arousal():
    seconds = 30.0
    voice = synth.session_voice(1, 2, seconds)
    assert voice.dtype == np.float32 and len(voice) == 30 * 16000 and np.abs(voice).max() <= 1.0
    arousal = synth.latent_affect(np.arange(0.5, seconds, 1.0), 1, 2, seconds)[:, 0]
    rms = np.sqrt((voice.reshape(30, -1).astype(np.float64) ** 2).mean(1))
    assert np.corrcoef(arousal, 20 * np.log10(rms))[0, 1] > 0.8
    # Pitch: autocorrelation peak of the loudest 50 ms window of every second, 60-400 Hz.
    pitches = []
    for second in voice.reshape(30, -1).astype(np.float64):
        windows = second.reshape(20, -1)
        w = windows[np.argmax((windows ** 2).sum(1))]
        ac = np.correlate(w, w, "full")[len(w) - 1:]
        lo, hi = 16000 // 400, 16000 // 60
        pitches.append(16000 / (lo + np.argmax(ac[lo:hi])))
    assert np.corrcoef(arousal, pitches)[0, 1] > 0.6


def test_face_shows_arousal_in_eyes_and_valence_in_mouth():
    """Across the frames of a session: the eye regions darken as the eyes open (arousal), and the dark line
    of the mouth corners rises with valence (measured where the neutral landmarks are in each frame)."""
    eye, mouth, arousal, valence = [], [], [], []
    for frame in synth.iter_session_frames(0, 3, seconds=20.0):
        gray, kp = _gray(frame.image), frame.keypoints
        d = np.hypot(*np.subtract(kp["right_eye"], kp["left_eye"]))  # interocular distance, pixels

        def window(x, y, half_width, half_height):
            return gray[int(round(y - half_height)):int(round(y + half_height)),
                        int(round(x - half_width)):int(round(x + half_width))]

        eye.append(np.mean([window(*kp[e], 0.2 * d, 0.2 * d).mean() for e in ("left_eye", "right_eye")]))
        heights = []
        for corner in ("mouth_left", "mouth_right"):
            w = window(*kp[corner], 0.15 * d, 0.4 * d)
            darkness = (w.max() - w) ** 2
            heights.append((darkness.sum(1) * np.arange(len(w))).sum() / darkness.sum())  # dark-line row
        mouth.append(np.mean(heights))
        arousal.append(frame.arousal)
        valence.append(frame.valence)
    assert np.ptp(arousal) > 0.8 and np.ptp(valence) > 0.8
    assert np.corrcoef(arousal, eye)[0, 1] < -0.7
    assert np.corrcoef(valence, mouth)[0, 1] < -0.5  # rows count downwards: corners up -> smaller row


def test_subjects_look_different(corpus):
    first = [_decode_video(s["video"])[0][0].astype(float) for s in corpus["sessions"]]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(first[i] - first[j]).mean() > 20


def test_partition_sizes_and_bad_arguments(tmp_path):
    counts = {p: synth.assign_partitions(0, 12, (0.6, 0.2, 0.2)).count(p) for p in synth.PARTITIONS}
    assert counts == {"train": 8, "devel": 2, "test": 2}
    assert sorted(synth.assign_partitions(0, 3, (1.0, 0.0, 0.0))) == ["devel", "test", "train"]
    with pytest.raises(ValueError, match="at least 3 sessions"):
        synth.synthesize_corpus(tmp_path / "x", sessions=2, progress=False)
    with pytest.raises(ValueError, match="even"):
        synth.synthesize_corpus(tmp_path / "x", width=161, progress=False)
    assert not (tmp_path / "x").exists()


def test_rewrite_replaces_an_earlier_corpus(tmp_path):
    _tiny(tmp_path, seed=1, sessions=4, seconds=1.0)
    summary = _tiny(tmp_path, seed=2, sessions=3, seconds=1.0)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["S01.mp4", "S02.mp4", "S03.mp4"]
    assert sorted(p.name for p in (tmp_path / "ratings").iterdir()) == ["S01.csv", "S02.csv", "S03.csv"]
    assert len(_read_rows(tmp_path / "partitions.csv")) == 3
    times, values = synth.session_ratings(2, 0, 1.0)
    assert _read_rows(summary["sessions"][0]["ratings"])[0]["arousal"] == f"{values[0, 0]:.6f}"
