"""The manifest of a preprocessed corpus (``manifest.json``): its name, its format, and reading it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


FORMAT = "emotrack-sessions/1"


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of a preprocessed corpus; a clear error when the folder is not one."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `emotrack preprocess ... --out {data_dir}` first")
    return json.loads(path.read_text())


def manifest_hash(data_dir: str | Path) -> str:
    """SHA-256 of ``manifest.json``, recorded in run folders to trace a result to its data."""
    return hashlib.sha256((Path(data_dir) / MANIFEST).read_bytes()).hexdigest()


def session_files(data_dir: str | Path, partitions: str | list[str] | None = None) -> list[str]:
    manifest = read_manifest(data_dir)
    if isinstance(partitions, str):
        partitions = [partitions]
    files = [str(Path(data_dir) / s["file"]) for s in manifest["sessions"]
             if partitions is None or s["partition"] in partitions]
    if not files:
        raise ValueError(f"{data_dir} holds no session of partition(s) {partitions}")
    return files
