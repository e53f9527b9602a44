"""What a preprocessing run checks before its first session, and what a session's record depends on.

- `check_output`: the output folder can be created and written, tried before anything is decoded.
- `remove_stale_temporaries`: files a killed run left under `emotrack.files.temporary_path` names
  (``.<name>.<pid>-<id>.tmp...``) are removed when the process that wrote them is gone from this
  machine (a run of another process still writing is left alone).
- `verified_entry`: an earlier entry of a session kept after its inputs and record are verified.
- `session_inputs`: a session's inputs, compared by a rerun with those recorded in its manifest entry
  (``inputs``) before its record is kept: the content hash (SHA-256) of its video, rating files and
  separate audio file (with ``--faces all``, its people's rating files too), its partition and its
  subject. The spec and the options are the run's fingerprint (`emotrack.preprocess.corpus`). Hashes are
  cached in ``<out>/.input-hashes.json`` by each file's size and modification time, so that a rerun
  reads only the files that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from emotrack.corpora.layout import Session
from emotrack.corpora.schema import CorpusSpec
from emotrack.files import atomic_path, temporary_path
from emotrack.media.audio import AudioError
from emotrack.preprocess.options import PreprocessError, PreprocessOptions
from emotrack.preprocess.session import audio_source
from emotrack.records.manifest import file_sha256

HASH_CACHE = ".input-hashes.json"

#: `emotrack.files.temporary_path`'s names: ``.<name>.<pid>-<8 hex>.tmp`` and any suffixes kept.
_TEMPORARY = re.compile(r"\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp(\..+)?")


def check_output(out_dir: Path) -> None:
    """Refuse an output folder that cannot be created or written, before any work is done.

    Raises:
        PreprocessError: naming the folder, what is in the way and the fix.
    """
    out_dir = Path(out_dir)
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PreprocessError(f"--out {out_dir} cannot be created: {existing} is a file, not a folder; choose "
                              f"another --out")
    for folder in (existing, out_dir / "sessions"):
        if not folder.is_dir():
            continue
        probe = temporary_path(folder / "write-probe")
        try:
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise PreprocessError(f"--out {out_dir} cannot be written: {folder}: {err.strerror or err}; choose "
                                  f"a folder you can write to, or make this one writable") from None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(*folders: Path) -> list[Path]:
    """Remove the temporary files (and folders) of runs that are no longer running; returns them."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).iterdir()):
            m = _TEMPORARY.fullmatch(path.name)
            if m and not _alive(int(m.group("pid"))):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
    return removed


class HashCache:
    """SHA-256 of files (and of folders of frames) by their path, size and modification time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        self.entries: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}
        self.changed = False

    def _file(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        known = self.entries.get(key)
        if isinstance(known, dict) and known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns:
            return known["sha256"]
        digest = file_sha256(path)
        self.entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        self.changed = True
        return digest

    def sha256(self, path: Path) -> str | None:
        """The file's SHA-256; for a folder, that of its files' names and hashes; None when missing."""
        path = Path(path)
        if path.is_file():
            return self._file(path)
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(f"{f.relative_to(path).as_posix()}\0{self._file(f)}\n".encode())
            return h.hexdigest()
        return None

    def save(self) -> None:
        if self.changed:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.entries))
            self.changed = False


def session_inputs(spec: CorpusSpec, root: Path, info: Session, options: PreprocessOptions,
                   cache: HashCache) -> dict[str, Any]:
    """What a session's record is made from beside the spec and the options: ``partition``, ``subject``
    (as the partition file or the paths give them) and ``files``: each input file's path and SHA-256
    (None for an audio file that is not there)."""
    people = {p for files in info.track_ratings.values() for p in files.values()}  # --faces all
    paths = [info.video, *sorted(set(info.ratings.values()) | people)]
    try:
        source, own_track = audio_source(spec, root, info, options)
    except AudioError:  # several files match: the session reports it when it is run
        source, own_track = None, False
    if source is not None and not own_track:
        paths.append(source)
    return {"partition": info.partition, "subject": info.subject,
            "files": {str(p): cache.sha256(Path(p)) for p in paths}}


def changed_inputs(before: dict[str, Any] | None, now: dict[str, Any]) -> str:
    """What differs between the inputs a record was made from and the session's inputs now, in words."""
    if not isinstance(before, dict):
        return "the run that wrote it did not record its inputs"
    changes = [f"its {key} changed from {before.get(key)!r} to {now[key]!r}"
               for key in ("partition", "subject") if before.get(key) != now[key]]
    old = before.get("files") or {}
    changes += [f"{path} {'is new' if path not in old else 'changed'}"
                for path, digest in now["files"].items() if old.get(path) != digest]
    changes += [f"{path} is no longer one of its files" for path in old if path not in now["files"]]
    return "; ".join(changes) or "its inputs changed"


def verified_entry(out_dir: Path, session: str, candidates: list[dict[str, Any]],
                   inputs: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The earlier entry made from the session's inputs as they are now whose record is on disk with the
    checksum it names, or None and why not."""
    same = [entry for entry in candidates if entry.get("inputs") == inputs]
    if not same:
        return None, changed_inputs(candidates[-1].get("inputs"), inputs)
    expected = f"sessions/{session}.tfrecord"
    path = out_dir / expected
    if not path.is_file():
        return None, f"its record {path} is missing"
    digest = file_sha256(path)
    for entry in same:
        if entry.get("file") == expected and entry.get("sha256") == digest:
            return entry, ""
    return None, f"its record {path} does not match the checksum in the manifest (truncated or changed)"
