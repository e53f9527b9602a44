"""Files written whole or not at all: into a temporary name beside the target, renamed when complete,
so that an interrupted run never leaves a half-written file under the target's name."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def temporary_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """A hidden name beside ``path`` to write into before renaming, unique to this process and call (so
    concurrent runs on one folder never write into each other's files): ``.<name>.<id>.tmp``, or with
    ``keep_suffix`` ``.<stem>.<id>.tmp<suffixes>`` for writers that pick the format from the name; all
    the suffixes are kept, since some writers check more than the last (Keras: ``.weights.h5``)."""
    path = Path(path)
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if not keep_suffix:
        return path.with_name(f".{path.name}.{unique}.tmp")
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    return path.with_name(f".{stem}.{unique}.tmp{suffixes}")


class UnwritableError(ValueError):
    """An output that cannot be written where it was asked for."""


def check_writable(path: str | Path, option: str, folder: bool = False) -> Path:
    """Make sure ``path`` can be written before any work is done for it: a file whose folder exists and
    is writable, or (``folder``) a folder that exists or can be made in a writable one.

    Args:
        option: the command-line option that named it (``--out``), for the message.
    Raises:
        UnwritableError: naming the path, why, and the fix.
    """
    path = Path(path)
    if folder:
        where = path
        while not os.path.lexists(where) and where != where.parent:
            where = where.parent
    else:
        where = path.parent
        if path.is_dir():
            raise UnwritableError(f"{option} {path} is a folder; give a file name in it")
        if not where.exists():
            raise UnwritableError(f"{option} {path} cannot be written: the folder {where} does not exist; "
                                  f"create it or choose another {option}")
    if not where.is_dir():
        raise UnwritableError(f"{option} {path} cannot be written: {where} is a file, not a folder; choose "
                              f"another {option}")
    probe = temporary_path(where / path.name)
    try:
        probe.open("x").close()
    except OSError as err:
        raise UnwritableError(f"{option} {path} cannot be written ({err.strerror or err}: {where}); choose "
                              f"a folder you can write to, or make {where} writable") from None
    _remove(probe)
    return path


def _remove(path: Path) -> None:
    """Remove a file or folder if it is there; cleanup never raises, so it cannot hide the error that
    caused it."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _replace(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path``. A file replaces a file in one atomic rename; a folder (or a file
    replacing a folder) needs the old one out of the way first: it is moved aside, put back if the
    rename fails, and removed after."""
    if not os.path.lexists(path) or (tmp.is_file() and path.is_file() and not path.is_symlink()):
        os.replace(tmp, path)
        return
    previous = temporary_path(path)
    os.replace(path, previous)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(previous, path)
        raise
    _remove(previous)


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a `temporary_path` to write (a file, or a folder the caller creates there); on leaving
    without an error it replaces ``path``, and either way nothing is left under the temporary name."""
    path = Path(path)
    tmp = temporary_path(path, keep_suffix)
    try:
        yield tmp
        _replace(tmp, path)
    finally:
        _remove(tmp)


@contextlib.contextmanager
def stderr_to_file() -> Iterator[None]:
    """Send file descriptor 2 (where the C++ code of TensorFlow and TensorFlow Lite writes) to a temporary
    file while inside; its text is shown if the block fails, and dropped otherwise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            caught.seek(0)
            sys.stderr.write(caught.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
