"""How the command line reports what goes wrong, and keeps TensorFlow's start-up messages out of its output.

Errors in the input are `click.ClickException`s raised by the commands: one line naming the file or key and
the fix, exit code 1. Anything else is a bug or an environment problem: `EmotrackGroup` reports it in one
line with the path of a log file holding the traceback (``--verbose`` lets the traceback through instead).
"""

from __future__ import annotations

import datetime
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
import traceback

import click

from emotrack.files import stderr_to_file


def _write_traceback(err: BaseException) -> str:
    """Write the command line and the traceback of ``err`` to a new log file in the system's temporary
    folder; its path."""
    fd, path = tempfile.mkstemp(prefix=f"emotrack-error-{datetime.datetime.now():%Y%m%d-%H%M%S}-", suffix=".log")
    with os.fdopen(fd, "w") as log:
        log.write("emotrack " + " ".join(sys.argv[1:]) + "\n\n")
        log.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
    return path


class EmotrackGroup(click.Group):
    """The ``emotrack`` group: an exception that is not a `click.ClickException` (an error the command did
    not expect) becomes one line with the traceback's log file, unless ``--verbose`` is given."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except Exception as err:
            if ctx.params.get("verbose"):
                raise
            try:
                log = _write_traceback(err)
            except OSError as log_err:
                log = f"(not written: {log_err}; rerun with --verbose to see it)"
            first = (str(err).splitlines() or [""])[0]
            raise click.ClickException(
                f"unexpected error: {type(err).__name__}: {first}. The traceback is in {log}; rerun with "
                f"--verbose to see it, and please report it with that file") from err


class _QuietLoader(importlib.abc.Loader):
    """Loads a module with its real loader while stderr goes to a file (`emotrack.files.stderr_to_file`)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_to_file():
            self.loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self.loader


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Imports TensorFlow, the first time anything does, with its start-up messages (absl's "All log
    messages before absl::InitializeLog()", oneDNN and CPU-feature notes, TF-TRT and CUDA lines) kept
    out of the output: TensorFlow prints them from C++ while it loads, whatever TF_CPP_MIN_LOG_LEVEL says."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up and log messages below errors out of the output (a user's own
    TF_CPP_MIN_LOG_LEVEL is kept). TensorFlow is still imported only by the commands that need it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())
