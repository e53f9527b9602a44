"""Preprocessing writes what the loader reads back exactly; bad sessions are reported and skipped."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.data import read_manifest, session_arrays
from emotrack.faces import crop_face
from emotrack.preprocess import align_ratings, align_valid
from emotrack.specs import discover, load_spec
from emotrack.video import read_video


def test_loader_reads_back_frames_mask_ratings_and_ids(tiny_corpus, tiny_tfr):
    manifest = read_manifest(tiny_tfr)
    partitions = pd.read_csv(tiny_corpus / "partitions.csv", dtype=str)
    sessions = {s["session"]: s for s in session_arrays(tiny_tfr)}
    assert sorted(sessions) == sorted(partitions["session"])
    for _, row in partitions.iterrows():
        s = sessions[row["session"]]
        assert (s["subject"], s["partition"]) == (row["subject"], row["partition"])
        frames, times, fps = read_video(tiny_corpus / "videos" / f"{row['session']}.mp4")
        assert s["frames"].shape == (len(frames), 112, 112, 1) and s["frames"].dtype == np.uint8
        np.testing.assert_allclose(s["time"], times, atol=1e-6)
        assert float(s["fps"]) == pytest.approx(fps)
        # The stored crops are the decoded frames cropped at the stored boxes, pixel for pixel.
        for t in np.flatnonzero(s["face_present"])[::7]:
            np.testing.assert_array_equal(s["frames"][t], crop_face(frames[t], s["box"][t], (112, 112), 0.2))
        # The ratings are the rating file interpolated at the frame times.
        csv = pd.read_csv(tiny_corpus / "ratings" / f"{row['session']}.csv")
        expected = np.stack([np.interp(times, csv["time"], csv[d]) for d in ("arousal", "valence", "liking")], 1)
        np.testing.assert_allclose(s["ratings"], expected, atol=1e-6)
        entry = next(e for e in manifest["sessions"] if e["session"] == row["session"])
        assert entry["num_frames"] == len(frames) and entry["face_fraction"] >= 0.95
    assert manifest["partitions"] == {p: sorted(partitions.loc[partitions.partition == p, "session"])
                                      for p in ("train", "devel", "test")}
    assert manifest["options"]["size"] == [112, 112] and manifest["failed"] == []


def test_mtcnn_boxes_sit_on_the_face(tiny_tfr):
    for s in session_arrays(tiny_tfr):
        boxes = s["box"][s["face_present"] == 1]
        assert len(boxes) >= 0.95 * len(s["box"])
        assert (boxes[:, 2] > 20).all() and (boxes[:, 3] > 20).all()  # a face, not a speck


def test_align_ratings_by_time():
    rating_times = np.array([0.0, 0.1, 0.2])
    ratings = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    out = align_ratings(rating_times, ratings, np.array([0.0, 0.05, 0.15, 0.3]))
    np.testing.assert_allclose(out, [[0, 1], [0.5, 0.5], [0.75, 0.25], [0.5, 0.5]])


def test_align_valid_needs_valid_steps_on_both_sides():
    rating_times = np.array([0.0, 0.1, 0.2, 0.3])
    valid = np.array([True, False, True, True])
    out = align_valid(rating_times, valid, np.array([0.0, 0.05, 0.1, 0.2, 0.25, 0.4]))
    assert out.tolist() == [True, False, False, True, True, True]


def test_listed_sessions_without_video_or_ratings_are_named(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    names = list(pd.read_csv(corpus / "partitions.csv")["session"])
    (corpus / "videos" / f"{names[0]}.mp4").unlink()
    (corpus / "ratings" / f"{names[1]}.csv").unlink()
    found = discover(load_spec("generic"), corpus)
    assert [s.session for s in found.sessions] == [names[2]]
    errors = {p["session"]: p["error"] for p in found.problems}
    assert f"have no video: expected '{corpus / 'videos' / f'{names[0]}.mp4'}'" in errors[names[0]]
    assert f"{names[1]}.mp4 of session {names[1]} has no rating file: expected " \
           f"'{corpus / 'ratings' / f'{names[1]}.csv'}'" in errors[names[1]]


def test_unreadable_video_is_reported_skipped_and_exit_nonzero(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    victim = pd.read_csv(corpus / "partitions.csv")["session"][1]
    (corpus / "videos" / f"{victim}.mp4").write_bytes(b"this is not a video")
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(corpus),
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 1
    assert victim in result.output and f"{victim}.mp4" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["session"] for f in manifest["failed"]] == [victim]
    assert len(manifest["sessions"]) == 2 and victim not in [s["session"] for s in manifest["sessions"]]
    assert not list(out.rglob("*.tmp"))
    assert not (out / "sessions" / f"{victim}.tfrecord").exists()


def test_nan_ratings_and_length_mismatch_are_named(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    names = list(pd.read_csv(corpus / "partitions.csv")["session"])
    nan_file = corpus / "ratings" / f"{names[0]}.csv"
    table = pd.read_csv(nan_file)
    table.loc[5, "valence"] = np.nan
    table.to_csv(nan_file, index=False)
    short_file = corpus / "ratings" / f"{names[2]}.csv"
    pd.read_csv(short_file).iloc[:10].to_csv(short_file, index=False)
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(corpus),
                                       "--out", str(tmp_path / "tfr"), "--quiet"])
    assert result.exit_code == 1
    assert f"{names[0]}.csv holds NaN" in result.output
    assert f"{names[2]}.csv" in result.output and "lasts" in result.output


def test_wrong_spec_or_root_fails_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["preprocess", "--spec", "nope", "--root", str(tmp_path),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no built-in spec named 'nope'" in result.output
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(tmp_path),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "partitions.csv does not exist" in result.output
