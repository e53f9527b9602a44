"""The one atomic writer: temporary names keep every suffix a writer checks, a file or a folder
replaces its target only when complete, and nothing is left under a temporary name."""

import os

import pytest

from emotrack.files import atomic_path, temporary_path


def test_temporary_names_are_hidden_unique_and_keep_the_suffixes(tmp_path):
    target = tmp_path / "backbone.weights.h5"
    first, second = temporary_path(target, keep_suffix=True), temporary_path(target, keep_suffix=True)
    assert first != second and first.parent == tmp_path and first.name.startswith(".backbone.")
    assert first.name.endswith(".tmp.weights.h5")  # Keras saves weights only to a name ending so
    assert temporary_path(tmp_path / "best.keras", keep_suffix=True).name.endswith(".tmp.keras")
    plain = temporary_path(target)
    assert plain.name.startswith(".backbone.weights.h5.") and plain.name.endswith(".tmp")
    assert temporary_path(tmp_path / "folder", keep_suffix=True).name.endswith(".tmp")


def test_a_file_replaces_its_target_only_when_complete(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_folder_replaces_a_folder_and_a_failure_keeps_the_old_one(tmp_path):
    target = tmp_path / "model.savedmodel"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, keep_suffix=True) as tmp:
            tmp.mkdir()
            (tmp / "half").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["old"] and [p.name for p in tmp_path.iterdir()] == [target.name]
    with atomic_path(target, keep_suffix=True) as tmp:
        tmp.mkdir()
        (tmp / "saved_model.pb").write_text("new")
    assert [p.name for p in target.iterdir()] == ["saved_model.pb"]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # the old folder is removed


def test_stderr_to_file_drops_native_output_unless_the_block_fails(capfd):
    """What C++ code writes to file descriptor 2 inside the block is dropped when it succeeds and shown
    when it fails, and the descriptor is restored either way."""
    from emotrack.files import stderr_to_file

    with stderr_to_file():
        os.write(2, b"delegate applied\n")
    assert "delegate applied" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), stderr_to_file():
        os.write(2, b"why it failed\n")
        raise RuntimeError("boom")
    assert "why it failed" in capfd.readouterr().err
    os.write(2, b"after\n")
    assert "after" in capfd.readouterr().err
