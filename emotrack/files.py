"""Files written whole or not at all: into a temporary name beside the target, renamed when complete,
so that an interrupted run never leaves a half-written file under the target's name."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def temporary_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """A hidden name beside ``path`` to write into before renaming, unique to this process and call (so
    concurrent runs on one folder never write into each other's files): ``.<name>.<id>.tmp``, or with
    ``keep_suffix`` ``.<stem>.<id>.tmp<suffix>`` for writers that pick the format from the suffix."""
    path = Path(path)
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.stem}.{unique}.tmp{path.suffix}" if keep_suffix else f".{path.name}.{unique}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a `temporary_path` to write; on leaving without an error it replaces ``path``, and either way
    nothing is left under the temporary name."""
    tmp = temporary_path(path, keep_suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
