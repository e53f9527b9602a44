"""Reading rating files: one reader per file format in :data:`RATING_READERS`, each turning a file into a
table, and :func:`read_ratings`, which turns a session's tables into times, values in [-1, 1] and a
mask of the steps that carry a rating.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from emotrack.corpora.schema import CorpusSpec


class RatingsError(ValueError):
    """A rating file that is missing, unreadable, holds NaN or does not match its video."""


#: A rating-file reader: the spec and one file -> the file as a table of strings, one column per named
#: column, and the facts it holds besides (``{"subject": ...}`` or ``{}``).
RatingReader = Callable[[CorpusSpec, Path], tuple[pd.DataFrame, dict]]

#: Rating-file formats (the spec's ``ratings.format``) and their readers. A corpus with a new file
#: format needs one reader registered with :func:`register_rating_reader` and nothing else.
RATING_READERS: dict[str, RatingReader] = {}


def register_rating_reader(name: str) -> Callable[[RatingReader], RatingReader]:
    """Register the decorated function as the reader of rating files of format ``name``.

    Raises:
        ValueError: when another reader already has that name.
    """

    def register(reader: RatingReader) -> RatingReader:
        if name in RATING_READERS:
            raise ValueError(f"rating format {name!r} already has a reader ({RATING_READERS[name].__name__})")
        RATING_READERS[name] = reader
        return reader

    return register


def read_arff(path: str | Path) -> pd.DataFrame:
    """An ARFF file as a table of strings, one column per ``@attribute`` (SciPy's reader refuses the
    string attributes that AVEC's files have, such as ``Instance_name``).

    Raises:
        RatingsError: naming the file when it has no ``@data`` section or a row of the wrong width.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    names, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        low = text.lower()
        if low.startswith("@attribute"):
            m = re.match(r"@attribute\s+('[^']*'|\"[^\"]*\"|\S+)", text, re.IGNORECASE)
            names.append(m.group(1).strip("'\"") if m else f"column{len(names)}")
        elif low.startswith("@data"):
            start = i + 1
            break
    if start is None or not names:
        raise RatingsError(f"rating file {path} is not an ARFF file (no @attribute lines or no @data section)")
    body = "\n".join(line for line in lines[start:] if line.strip() and not line.lstrip().startswith("%"))
    if not body:
        return pd.DataFrame(columns=names)
    try:
        table = pd.read_csv(io.StringIO(body), header=None, dtype=str, keep_default_na=False, quotechar="'",
                            skipinitialspace=True, index_col=False)
    except pd.errors.ParserError as err:
        raise RatingsError(f"rating file {path} cannot be parsed ({err})") from err
    if table.shape[1] != len(names):
        raise RatingsError(f"rating file {path}: its rows have {table.shape[1]} values but it declares "
                           f"{len(names)} attributes ({', '.join(names)})")
    table.columns = names
    return table


@register_rating_reader("csv")
def _read_csv_table(spec: CorpusSpec, path: Path) -> tuple[pd.DataFrame, dict]:
    """A delimited text file; with ``header: false`` or ``auto`` its columns are named by ``ratings.columns``."""
    r = spec.ratings
    header = r.get("header", True)
    try:
        table = pd.read_csv(path, sep=r.get("separator", ","), header=0 if header is True else None, dtype=str,
                            keep_default_na=False, index_col=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(), {}
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise RatingsError(f"rating file {path} cannot be parsed ({err})") from err
    if header is True:
        table.columns = [str(c).strip() for c in table.columns]
        return table, {}
    columns = list(r["columns"])
    if table.shape[1] != len(columns):
        raise RatingsError(f"rating file {path} has {table.shape[1]} columns but spec {spec.name!r} expects "
                           f"{len(columns)} ({', '.join(columns)})")
    table.columns = columns
    if header == "auto" and len(table):
        probe = r.get("time_column") or r.get("value_column") or spec.dimensions[0]
        if pd.isna(pd.to_numeric(table[probe].iloc[0], errors="coerce")):
            table = table.iloc[1:].reset_index(drop=True)  # the first row names the columns
    return table, {}


@register_rating_reader("arff")
def _read_arff_table(spec: CorpusSpec, path: Path) -> tuple[pd.DataFrame, dict]:
    """An ARFF file (the AVEC 2016 gold standard of RECOLA), read by :func:`read_arff`."""
    return read_arff(path), {}


@register_rating_reader("json_frames")
def _read_json_frames(spec: CorpusSpec, path: Path) -> tuple[pd.DataFrame, dict]:
    """A JSON file with a mapping of frame numbers to their values (and the subject, under ``subject_key``)."""
    r = spec.ratings
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RatingsError(f"rating file {path} is not valid JSON ({err})") from err
    frames = data.get(r.get("frames_key", "frames")) if isinstance(data, dict) else None
    if not isinstance(frames, dict):
        raise RatingsError(f"rating file {path} has no {r.get('frames_key', 'frames')!r} mapping of frames")
    index = r.get("index_column", "frame")
    rows = []
    for key, values in frames.items():
        if not (str(key).isdigit() and isinstance(values, dict)):
            raise RatingsError(f"rating file {path}: frame {key!r} is not a frame number with its values")
        rows.append({index: int(key), **{k: v for k, v in values.items() if not isinstance(v, (list, dict))}})
    table = pd.DataFrame(rows).sort_values(index).reset_index(drop=True) if rows else pd.DataFrame()
    meta = {"subject": str(data[r["subject_key"]])} if r.get("subject_key") in data else {}
    return table, meta


@dataclasses.dataclass
class RatingTrack:
    """A session's ratings as read: ``times`` float64 (N,) seconds; ``values`` float32 (N, D) mapped to
    [-1, 1] (steps marked missing hold values interpolated from their valid neighbours); ``valid`` bool
    (N,); ``rate_hz``; ``subject`` when the file names one; ``files`` read."""

    times: np.ndarray
    values: np.ndarray
    valid: np.ndarray
    rate_hz: float
    subject: str | None
    files: list[Path]


def _column(table: pd.DataFrame, name: str, path: Path, separator: str = ",") -> np.ndarray:
    if name not in table.columns:
        found = ", ".join(map(str, table.columns))
        other = [sep for sep in (";", "\t", ",", "|", " ") if sep != separator
                 and len(table.columns) == 1 and sep in str(table.columns[0])]
        fix = (f"; its lines seem separated by {other[0]!r}, not the spec's ratings.separator {separator!r}: "
               f"write it with {separator!r} or set ratings.separator in a spec of your own") if other else \
            "; rename the column, or name the file's own in ratings.time_column / value_column / columns"
        raise RatingsError(f"rating file {path} lacks the column {name!r} (it has {found}){fix}")
    values = pd.to_numeric(table[name].astype(str).str.strip().str.strip("'\""), errors="coerce")
    return values.to_numpy(dtype=np.float64)


def _read_rating_file(spec: CorpusSpec, path: Path, dims: list[str], rate: float) -> tuple[np.ndarray, dict, dict]:
    """One rating file: its times (N,), the raw columns of each of its dimensions {dim: (N, raters)},
    and the facts its reader found (the subject)."""
    r = spec.ratings
    if not path.is_file():
        raise RatingsError(f"rating file {path} does not exist")
    if path.stat().st_size == 0:
        raise RatingsError(f"rating file {path} is empty (0 bytes); write its ratings there, one row per "
                           f"rating step, or remove the session from the corpus")
    table, meta = RATING_READERS[r["format"]](spec, path)
    if len(table) < 2:
        raise RatingsError(f"rating file {path} holds {'no' if len(table) == 0 else 'only one'} rating row; "
                           f"write its ratings there, one row per rating step, or remove the session from "
                           f"the corpus")
    sep = r.get("separator", ",")
    if r.get("time_column"):
        times = _column(table, r["time_column"], path, sep)
    elif r.get("index_column"):
        times = _column(table, r["index_column"], path, sep) / rate
    else:
        times = np.arange(len(table)) / rate
    raw = {}
    for dim in dims:
        if spec.per_dimension_files and r.get("raters"):
            names = [str(x).strip() for x in r["raters"]]
        elif spec.per_dimension_files and r.get("value_column"):
            names = [r["value_column"]]
        else:
            names = [dim]
        raw[dim] = np.stack([_column(table, n, path, sep) for n in names], axis=1)
    bad = ~np.isfinite(np.concatenate([times[:, None]] + list(raw.values()), axis=1)).all(axis=1)
    if bad.any():
        raise RatingsError(f"rating file {path} holds NaN, infinite or non-numeric values (first at data "
                           f"row {int(np.flatnonzero(bad)[0]) + 1}); fill or remove them before preprocessing")
    steps = np.diff(times)
    if np.any(steps <= 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        what = (f"repeats the time of the row before ({times[row]:g} s)" if steps[row - 1] == 0 else
                f"({times[row]:g} s) comes after a later time ({times[row - 1]:g} s)")
        raise RatingsError(f"rating file {path}: time stamps must increase strictly, but data row {row + 1} "
                           f"{what}; sort the rows by time and keep one row per time")
    return times, raw, meta


def read_ratings(spec: CorpusSpec, files: dict[str, Path], video_fps: float | None = None) -> RatingTrack:
    """Read a session's rating files as the spec describes them.

    Args:
        files: dimension -> rating file (one file may serve several dimensions).
        video_fps: the video's frame rate, needed when the spec has one rating per video frame.
    Raises:
        RatingsError: naming the file: missing or empty, NaN or non-numeric values, values outside the
            spec's range, time stamps that do not increase, files of one session that disagree.
    """
    rate = spec.rating_rate_hz or video_fps
    if not rate:
        raise RatingsError(f"spec {spec.name!r} rates every video frame, but the video's frame rate is unknown")
    missing_value = spec.ratings.get("missing_value")
    low, high = (float(v) for v in spec.ratings["range"])
    by_file: dict[Path, list[str]] = {}
    for dim in spec.dimensions:
        by_file.setdefault(Path(files[dim]), []).append(dim)
    times, first, columns, marked, subject = None, None, {}, np.zeros(0, bool), None
    for path, dims in by_file.items():
        t, raw, meta = _read_rating_file(spec, path, dims, rate)
        subject = meta.get("subject", subject)
        if times is None:
            times, first, marked = t, path, np.zeros(len(t), bool)
        elif len(t) != len(times) or np.abs(t - times).max() > 1e-6:
            raise RatingsError(f"rating files {first} ({len(times)} rows) and {path} ({len(t)} rows) of one "
                               f"session do not cover the same time steps")
        for dim, cols in raw.items():
            is_missing = (np.isclose(cols, float(missing_value)).any(axis=1) if missing_value is not None
                          else np.zeros(len(cols), bool))
            marked |= is_missing
            # Every rater's value must lie in the range, not only their mean.
            out = ((cols < low - 1e-6) | (cols > high + 1e-6)).any(axis=1) & ~is_missing
            if out.any():
                row = int(np.flatnonzero(out)[0])
                raise RatingsError(f"rating file {path} holds {dim} values outside the spec's range "
                                   f"[{low:g}, {high:g}] (first at data row {row + 1}: "
                                   f"{', '.join(f'{v:g}' for v in cols[row])}); correct them, or give the "
                                   f"scale the file uses in the spec's ratings.range")
            columns[dim] = cols.mean(axis=1)
    valid = ~marked
    if not valid.any():
        raise RatingsError(f"rating file(s) {', '.join(map(str, by_file))} mark every step as missing "
                           f"({missing_value}); there is nothing to learn from")
    values = np.zeros((len(times), len(spec.dimensions)), np.float64)
    for d, dim in enumerate(spec.dimensions):
        col = np.where(valid, columns[dim], np.interp(times, times[valid], columns[dim][valid]))
        values[:, d] = 2.0 * (col - low) / (high - low) - 1.0
    return RatingTrack(times=times, values=values.astype(np.float32), valid=valid, rate_hz=float(rate),
                       subject=subject, files=list(by_file))
