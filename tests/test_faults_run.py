"""Bad input on the run side (train, evaluate, predict, inspect): every fault stops with exit code 1 and one
message naming the file or key and the fix, no traceback, and nothing half-written left behind; frames
without a face in predict hold the last face's prediction; TensorFlow's start-up messages stay out."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from emotrack.cli import main
from emotrack.media.video import write_video

# tests/test_predict.py's tiny ConvLSTM, one epoch, no TensorBoard.
TINY = ["train.epochs=1", "data.window=8", "data.hop=4", "data.label_delay_s=0.5", "data.batch_size=4",
        "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4", "train.tensorboard=false",
        "data.validation.subjects=0", "evaluate.partitions=[devel, test]"]
REDO = "emotrack preprocess"  # the fix every damaged-data message gives


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _train_args(data, out, *sets):
    return ["train", "huang2018-convlstm", "--data", data, "--out", out] + [
        a for s in TINY + list(sets) for a in ("--set", s)]


def _refused(result, *names):
    """Exit code 1 from a message (a ClickException), no traceback, and every one of ``names`` in it."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an unhandled exception
    assert "Traceback" not in result.output
    for name in names:
        assert str(name) in result.output, (name, result.output)
    return result.output


def _no_temporary_files(folder):
    assert not [p.name for p in Path(folder).rglob(".*tmp*")], "a temporary file was left behind"


def _data_copy(tiny_tfr, tmp_path):
    copy = tmp_path / "tfr"
    shutil.copytree(tiny_tfr, copy)
    return copy, json.loads((copy / "manifest.json").read_text())


def _record(data, manifest, partition):
    return data / next(s["file"] for s in manifest["sessions"] if s["partition"] == partition)


@pytest.fixture(scope="module")
def run(tiny_tfr, tmp_path_factory):
    """A tiny trained run, trained into a folder that held only the config.yaml of a run that failed
    before its first epoch: a new run replaces such a folder without --overwrite."""
    out = tmp_path_factory.mktemp("faults") / "run"
    out.mkdir()
    (out / "config.yaml").write_text("experiment: huang2018-convlstm\n")
    result = _invoke(*_train_args(tiny_tfr, out))
    assert result.exit_code == 0, result.output
    return out


def _run_copy(run, tmp_path, checkpoint=True):
    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copy(run / "config.yaml", copy / "config.yaml")
    if checkpoint:
        shutil.copy(run / "best.keras", copy / "best.keras")
    return copy


def _face_video(path, blank=(), count=40, fps=10.0):
    """A synthetic face video (the tiny corpus' face and rate), with gray frames (no face) at ``blank``."""
    from emotrack.synth.corpus import iter_session_frames

    images = [item.image for _, item in zip(range(count), iter_session_frames(7, 1, count / fps + 1, fps))]
    for k in blank:
        images[k] = np.full_like(images[k], 128)
    return write_video(path, images, fps, quality=12)


# --- train --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_train_refuses_a_damaged_record_before_making_the_run(tiny_tfr, tmp_path, damage):
    data, manifest = _data_copy(tiny_tfr, tmp_path)
    record = _record(data, manifest, "train")
    raw = bytearray(record.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 3] ^= 0x10
    record.write_bytes(bytes(raw))
    out = tmp_path / "run"
    message = _refused(_invoke(*_train_args(data, out)), record, "damaged", REDO)
    assert "same options" in message or "made with" in message
    assert not out.exists()


def test_train_refuses_a_manifest_that_is_not_json(tiny_tfr, tmp_path):
    data, _ = _data_copy(tiny_tfr, tmp_path)
    (data / "manifest.json").write_text('{"format": "emotrack-sessions/1", "sessions": [')
    out = tmp_path / "run"
    _refused(_invoke(*_train_args(data, out)), data / "manifest.json", "not JSON", REDO)
    assert not out.exists()


def test_train_names_a_missing_data_folder(tmp_path):
    out = tmp_path / "run"
    _refused(_invoke(*_train_args(tmp_path / "nowhere", out)), tmp_path / "nowhere" / "manifest.json",
             "emotrack preprocess")
    assert not out.exists()


def test_train_names_an_unknown_experiment(tiny_tfr, tmp_path):
    out = tmp_path / "run"
    _refused(_invoke("train", "huang2018-convlstn", "--data", tiny_tfr, "--out", out),
             "unknown experiment 'huang2018-convlstn'", "huang2018-convlstm")
    assert not out.exists()


def test_train_names_a_config_key_typo(tiny_tfr, tmp_path):
    out = tmp_path / "run"
    _refused(_invoke(*_train_args(tiny_tfr, out, "train.epochz=2")), "train.epochz", "did you mean train.epochs")
    assert not out.exists()


def test_a_bad_value_found_after_the_folder_was_made_leaves_no_folder(tiny_tfr, tmp_path):
    """A clip longer than every session is found once the model is built and the config written: the run
    folder made for it goes again, so that a rerun needs no --overwrite."""
    out = tmp_path / "run"
    _refused(_invoke(*_train_args(tiny_tfr, out, "data.window=200", "data.hop=200")), "data.window",
             "set a shorter data.window")
    assert not out.exists()


def test_an_overwrite_that_fails_before_writing_keeps_the_old_run(run, tiny_tfr, tmp_path):
    folder = _run_copy(run, tmp_path)
    config = (folder / "config.yaml").read_bytes()
    _refused(_invoke(*_train_args(tiny_tfr, folder, "model.options.pooling=bogus"), "--overwrite"),
             "pooling must be one of")
    assert (folder / "config.yaml").read_bytes() == config and (folder / "best.keras").is_file()


def test_train_checks_that_out_can_be_written_first(tiny_tfr, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / "run"
    _refused(_invoke(*_train_args(tiny_tfr, out)), out, "is a file", "choose another --out")
    assert (tmp_path / "a-file").read_text() == "not a folder"  # the file in the way is left as it was


def test_a_run_that_failed_before_its_first_epoch_is_replaced_without_overwrite(run):
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["epochs"] == 1 and len(config["data"]["manifest_sha256"]) == 64
    assert (run / "best.keras").is_file() and (run / "last.keras").is_file()
    # A run with a checkpoint is not replaced without a word.
    _refused(_invoke(*_train_args(config["data"]["dir"], run)), run, "already holds a run", "--overwrite")


# --- evaluate -------------------------------------------------------------------------------------------


def test_evaluate_names_a_run_folder_without_config(run, tmp_path):
    folder = _run_copy(run, tmp_path)
    (folder / "config.yaml").unlink()
    _refused(_invoke("evaluate", folder), folder / "config.yaml", "emotrack train")
    assert not (folder / "report.json").exists()


def test_evaluate_names_a_damaged_config(run, tmp_path):
    folder = _run_copy(run, tmp_path)
    (folder / "config.yaml").write_text("experiment: huang2018-convlstm\ndata: {dir: [unclosed\n")
    _refused(_invoke("evaluate", folder), folder / "config.yaml", "not valid YAML", "emotrack train")
    assert not (folder / "report.json").exists()


def test_a_damaged_checkpoint_is_named_by_evaluate_and_predict(run, tmp_path, tiny_corpus):
    folder = _run_copy(run, tmp_path)
    raw = (run / "best.keras").read_bytes()
    (folder / "best.keras").write_bytes(raw[: len(raw) // 2])
    _refused(_invoke("evaluate", folder, "--postprocessing", "none"), folder / "best.keras", "damaged",
             "not a complete .keras", "emotrack train")
    assert not (folder / "report.json").exists()
    out = tmp_path / "va.csv"
    _refused(_invoke("predict", folder, tiny_corpus / "videos" / "S01.mp4", "--out", out, "--quiet"),
             folder / "best.keras", "damaged")
    assert not out.exists()
    _no_temporary_files(tmp_path)


def test_evaluate_refuses_a_damaged_record(run, tiny_tfr, tmp_path):
    data, manifest = _data_copy(tiny_tfr, tmp_path)
    record = _record(data, manifest, "devel")
    raw = bytearray(record.read_bytes())
    raw[-100] ^= 0x01
    record.write_bytes(bytes(raw))
    folder = _run_copy(run, tmp_path)
    _refused(_invoke("evaluate", folder, "--data", data, "--postprocessing", "none"), record, "damaged", REDO)
    assert not (folder / "report.json").exists()


def test_evaluate_refuses_other_data_unless_allowed_and_then_says_so(run, tiny_tfr, tmp_path):
    """The same corpus preprocessed with another margin: its manifest differs from the one the run recorded."""
    from emotrack.records.manifest import manifest_hash

    data, manifest = _data_copy(tiny_tfr, tmp_path)
    manifest["options"]["margin"] = 0.6
    (data / "manifest.json").write_text(json.dumps(manifest, indent=2))
    folder = _run_copy(run, tmp_path)
    trained = yaml.safe_load((folder / "config.yaml").read_text())["data"]["manifest_sha256"]
    here = manifest_hash(data)
    assert here != trained
    _refused(_invoke("evaluate", folder, "--data", data, "--postprocessing", "none"),
             trained, here, "margin", "--allow-other-data")
    assert not (folder / "report.json").exists()

    result = _invoke("evaluate", folder, "--data", data, "--postprocessing", "none", "--partition", "devel",
                     "--allow-other-data")
    assert result.exit_code == 0, result.output
    assert "not the data the run was trained on" in result.output
    report = json.loads((folder / "report.json").read_text())
    assert report["data"]["same_as_training"] is False
    assert (report["data"]["manifest_sha256"], report["data"]["trained_on_sha256"]) == (here, trained)
    assert any("margin" in d for d in report["data"]["differences"])


# --- predict --------------------------------------------------------------------------------------------


def test_predict_checks_out_and_overlay_before_decoding(run, tmp_path):
    """Unwritable outputs are named before the video is decoded: the video here has no face, which would
    be found only after decoding it."""
    faceless = write_video(tmp_path / "faceless.mp4", [np.full((64, 80, 3), 90, np.uint8)] * 5, 10, quality=12)
    (tmp_path / "a-file").write_text("not a folder")
    bad = tmp_path / "a-file" / "va.csv"
    _refused(_invoke("predict", run, faceless, "--out", bad, "--quiet"), bad, "is a file", "--out")
    missing = tmp_path / "no-such-folder" / "va.csv"
    _refused(_invoke("predict", run, faceless, "--out", missing, "--quiet"), missing, "does not exist",
             "create it")
    out, overlay = tmp_path / "va.csv", tmp_path / "a-file" / "overlay.mp4"
    _refused(_invoke("predict", run, faceless, "--out", out, "--overlay", overlay, "--quiet"), overlay,
             "--overlay")
    assert not out.exists()
    _no_temporary_files(tmp_path)


@pytest.mark.parametrize("kind", ["zero-byte", "text"])
def test_predict_names_a_file_that_is_no_video(run, tmp_path, kind):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"" if kind == "zero-byte" else b"these are the minutes of the meeting\n" * 40)
    out = tmp_path / "va.csv"
    _refused(_invoke("predict", run, video, "--out", out, "--quiet"), video,
             *(["is empty", "record it again"] if kind == "zero-byte" else ["is not a video file", "holds text",
                                                                     "renamed to .mp4 does not become a video"]))
    assert "re-encode" not in _invoke("predict", run, video, "--out", out, "--quiet").output
    assert not out.exists()
    _no_temporary_files(tmp_path)


def test_predict_refuses_a_still_image(run, tmp_path):
    image = tmp_path / "face.jpg"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    out = tmp_path / "va.csv"
    _refused(_invoke("predict", run, image, "--out", out, "--quiet"), image, "still image", "video file")
    assert not out.exists()


def test_frames_without_a_face_hold_the_last_face_prediction(run, tmp_path):
    """A real video whose middle second (frames 15-24 at 10 fps) has no face: those rows hold the
    prediction of the last frame with a face and are flagged face_present 0."""
    video = _face_video(tmp_path / "gap.mp4", blank=range(15, 25))
    out = tmp_path / "va.csv"
    result = _invoke("predict", run, video, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    values, present = table[["arousal", "valence"]].to_numpy(), table["face_present"].to_numpy()
    assert len(table) == 40 and present[15:25].sum() == 0 and present[:15].all() and present[25:].all()
    np.testing.assert_array_equal(values[15:25], np.repeat(values[14:15], 10, axis=0))
    assert np.isfinite(values).all()
    # The model's values move with the face, so holding them is not the same as a constant output.
    assert np.abs(values[25:] - values[14]).max() > 1e-6


def test_before_the_first_face_the_prediction_is_empty(run, tmp_path):
    video = _face_video(tmp_path / "late.mp4", blank=range(0, 6), count=30)
    out = tmp_path / "va.csv"
    result = _invoke("predict", run, video, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert table["face_present"][:6].sum() == 0 and table["face_present"][6:].all()
    assert table[["arousal", "valence"]][:6].isna().all().all()
    assert np.isfinite(table[["arousal", "valence"]][6:].to_numpy()).all()


# --- the command line as a whole --------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_with_a_log_of_its_traceback(tmp_path):
    data = tmp_path / "tfr"
    data.mkdir()
    # JSON with the manifest's keys, but sessions that are not entries: nothing in inspect expects that.
    (data / "manifest.json").write_text(json.dumps({"sessions": ["S01"], "partitions": {}}))
    output = _refused(_invoke("inspect", data), "unexpected error", "--verbose")
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1
    log = Path(lines[0].split("traceback is in ")[1].split(";")[0])
    assert log.is_file() and "Traceback" in log.read_text() and "inspect" in log.read_text()
    log.unlink()
    verbose = _invoke("--verbose", "inspect", data)
    assert verbose.exit_code != 0 and not isinstance(verbose.exception, SystemExit)  # the traceback goes through


def test_output_starts_with_emotracks_own_lines(tmp_path):
    """The real console script, with no TF_CPP_MIN_LOG_LEVEL of the caller: `emotrack models` imports
    TensorFlow, whose start-up messages (absl, oneDNN) stay out of the output."""
    script = str(Path(sys.executable).parent / "emotrack")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([script, "models"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    first = (done.stderr + done.stdout).splitlines()[0]
    assert first.startswith("astnet2017 "), first
    assert "absl" not in done.stderr and "oneDNN" not in done.stderr
