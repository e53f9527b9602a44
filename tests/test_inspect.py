"""emotrack inspect: the manifest in numbers, and a contact sheet of the crops the models will see."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from emotrack.apps.inspect_corpus import (
    BORDER,
    LABEL_WIDTH,
    TITLE_HEIGHT,
    contact_sheet,
    evenly_spaced,
    summarize,
)
from emotrack.cli import main
from emotrack.records.manifest import read_manifest
from emotrack.records.tfrecord import session_to_example


def test_summary_numbers_are_the_manifests(tiny_tfr):
    manifest = read_manifest(tiny_tfr)
    entries = manifest["sessions"]
    summary = summarize(tiny_tfr)
    assert summary["sessions"] == len(entries) == 3
    assert summary["frames"] == sum(e["num_frames"] for e in entries)
    assert summary["fps"] == sorted({e["fps"] for e in entries}) == [10.0]
    frames = np.array([e["num_frames"] for e in entries])
    for key in ("face_fraction", "rating_valid_fraction"):
        assert summary[key] == pytest.approx(np.average([e[key] for e in entries], weights=frames))
    for name, sessions in manifest["partitions"].items():
        part = summary["partitions"][name]
        assert part["sessions"] == len(sessions)
        assert part["frames"] == sum(e["num_frames"] for e in entries if e["session"] in sessions)
    assert summary["audio"] == {"sessions_with_audio": 3, "sample_rate": 16000, "samples_per_frame": 1600}
    assert summary["failed"] == manifest["failed"] == []
    assert [s["session"] for s in summary["per_session"]] == [e["session"] for e in entries]


def test_cli_prints_the_summary_and_writes_a_sheet_of_k_crops_per_session(tiny_tfr, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["inspect", str(tiny_tfr), "--out", str(sheet), "--per-session", "5"])
    assert result.exit_code == 0, result.output
    assert "3 sessions, 120 frames" in result.output and "audio: 3 of 3 sessions, 16000 Hz" in result.output
    assert "failed: 0" in result.output
    for e in read_manifest(tiny_tfr)["sessions"]:
        assert e["session"] in result.output
    # 112x112 crops at 1:1, a bordered cell each: 5 columns x 3 rows beside the labels, under the title.
    with Image.open(sheet) as image:
        assert image.size == (LABEL_WIDTH + 5 * (112 + 2 * BORDER), TITLE_HEIGHT + 3 * (112 + 2 * BORDER))


def test_summary_figures_are_readable(tmp_path):
    """A session of 169 frames at 26.3979 fps reads as two figures; a corpus without sound says so, and one
    whose frame rates differ names no single number of audio samples per frame."""
    from emotrack.apps.inspect_corpus import format_summary, summarize

    entry = {"session": "long-session-name-01", "partition": "train", "file": "sessions/A.tfrecord",
             "num_frames": 169, "fps": 26.3979, "duration_s": 6.4, "face_fraction": 1.0,
             "rating_valid_fraction": 1.0, "audio": False}
    (tmp_path / "manifest.json").write_text(json.dumps({"sessions": [entry], "partitions": {"train": [entry["session"]]},
                                                       "audio": {"sample_rate": None}}))
    text = format_summary(summarize(tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("long-session-name-01"))
    assert row.split()[2:4] == ["169", "26.4"]
    assert "audio: no audio" in text and "None" not in text
    mixed = summarize(tmp_path)
    mixed["audio"] = {"sessions_with_audio": 1, "sample_rate": 16000, "samples_per_frame": None}
    text = format_summary(mixed)
    assert "None" not in text and "samples per frame vary" in text


def test_evenly_spaced_frames_span_the_session():
    assert evenly_spaced(40, 5).tolist() == [0, 10, 20, 29, 39]
    assert evenly_spaced(3, 8).tolist() == [0, 1, 2]


def _fake_tfr(folder, present):
    """A one-session TFRecord folder of bright 16x16 crops, with the given face_present flags."""
    import tensorflow as tf

    t = len(present)
    record = session_to_example(session="A", subject="a", partition="train", fps=5.0, rating_rate=5.0,
                                dimensions=["arousal"], frames=np.full((t, 16, 16, 1), 200, np.uint8),
                                face_present=np.array(present), boxes=np.zeros((t, 4)), ratings=np.zeros((t, 1)),
                                times=np.arange(t) / 5.0)
    (folder / "sessions").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "sessions" / "A.tfrecord")) as writer:
        writer.write(record)
    entry = {"session": "A", "subject": "a", "partition": "train", "file": "sessions/A.tfrecord", "num_frames": t,
             "fps": 5.0, "duration_s": t / 5.0, "face_fraction": float(np.mean(present)),
             "rating_valid_fraction": 1.0, "audio": False}
    manifest = {"frame": {"height": 16, "width": 16, "channels": 1}, "partitions": {"train": ["A"]},
                "sessions": [entry], "failed": [], "unlabelled": [], "audio": {"sample_rate": None}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_frames_without_a_face_are_marked_red(tmp_path):
    _fake_tfr(tmp_path / "tfr", [1, 0, 1])
    path = contact_sheet(tmp_path / "tfr", tmp_path / "sheet.png", per_session=3)
    sheet = np.asarray(Image.open(path).convert("RGB")).astype(int)
    scale = 96 // 16  # small crops are enlarged by a whole factor
    cell = 16 * scale + 2 * BORDER
    assert sheet.shape == (TITLE_HEIGHT + cell, LABEL_WIDTH + 3 * cell, 3)

    def red(rgb):
        return rgb[0] > 180 and rgb[1] < 80 and rgb[2] < 80

    for col, has_face in enumerate([1, 0, 1]):
        left = LABEL_WIDTH + col * cell
        border = sheet[TITLE_HEIGHT + 1, left + cell // 2]
        centre = sheet[TITLE_HEIGHT + cell // 2, left + cell // 2]  # on the cross's diagonals
        assert red(border) != bool(has_face) and red(centre) != bool(has_face)
        if has_face:
            assert (centre == 200).all()
