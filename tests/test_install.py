"""The installed package: only `emotrack` at the top level, its CLI and built-in specs inside it."""

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import emotrack


def test_only_emotrack_is_installed_at_the_top_level():
    files = importlib.metadata.files("emotrack")
    tops = {f.parts[0] for f in files if not f.parts[0].endswith(".dist-info") and f.parts[0] != ".."}
    assert tops == {"emotrack"}
    names = {f.as_posix() for f in files}
    assert "emotrack/cli/__init__.py" in names and "emotrack/data_specs/generic.yaml" in names


def test_console_script_runs_from_anywhere(tmp_path):
    script = shutil.which("emotrack") or str(Path(emotrack.__file__).parents[4] / "bin" / "emotrack")
    result = subprocess.run([script, "--version"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"emotrack, version {emotrack.__version__}"
