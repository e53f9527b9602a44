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


def test_a_fresh_non_editable_install_adds_only_emotrack(tmp_path):
    """Build and install the checkout into an empty folder (no dependencies) and list what lands."""
    import sys

    repo = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(repo)], check=True, capture_output=True,
                   cwd=tmp_path)
    tops = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert tops <= {"emotrack", "bin"} and "emotrack" in tops
    assert (target / "emotrack" / "data_specs" / "generic.yaml").is_file()
    assert (target / "emotrack" / "cli" / "__init__.py").is_file()
    # Its built-in spec is found from that install, not from the checkout.
    code = ("import emotrack, emotrack.corpora.spec as s; "
            "print(emotrack.__file__); print(s.load_spec('generic').source)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}).stdout
    assert out.splitlines()[0].startswith(str(target)) and "generic.yaml" in out
