"""Corpus specs: the declarative facts of a corpus layout, and the readers of the files they describe.

A spec is a YAML file. The built-in ones ship inside the package (``emotrack/data_specs/*.yaml``,
from the repository's top-level ``data_specs/`` folder); a user may also pass the path of their own.
Beside ``name``, ``description`` and ``reference`` (the corpus paper), its sections are:

``sessions``
    How sessions are found when no partition file lists them: ``discover`` names the file sets
    (``video``, ``ratings``) whose paths name sessions, ``fields`` gives the regular expression of
    each ``{field}`` used in the path templates, ``name`` builds the session name from the fields
    (``"{split}_{number}"``) and ``subject`` the subject's (default: the session name).
``partitions``
    ``names`` and the rule that assigns them: a CSV file (``file`` and its column names), the value
    of a field (``field`` + ``map``) or a numeric field's inclusive ranges (``field`` + ``ranges``).
    ``unlabelled`` lists partitions whose sessions come without ratings (challenge test sets): such
    a session is listed, not failed.
``video``
    ``path``: one template or a list of alternatives; ``kind``: ``file`` (a video file) or ``frames``
    (a folder of numbered images, ``frames`` their glob, ``fps`` their rate); ``fps``: ``from_file``
    or a number; ``face_select``: which face to keep (``largest``, ``confident``, ``left``, ``right``:
    the face furthest left or right, or ``{field: F, map: {value: choice}}`` to choose by a field);
    ``hint``: what to tell a user when no video matches (``ratings`` may have one too).
``audio``
    Where the audio is and its rate (facts for the user; preprocessing does not read audio).
``ratings``
    ``path`` (``{dimension}`` in it: one file per dimension), ``format`` (a key of
    :data:`RATING_READERS`), the columns (``time_column``, ``value_column``, ``raters``,
    ``columns``, ``header``, ``separator``, ``index_column``), ``rate_hz`` (a number, or ``video``:
    one rating per video frame), ``dimensions``, ``range`` (mapped linearly to [-1, 1]) and
    ``missing_value`` (a marker of steps that carry no rating; they are masked, never trained on).

Path templates are relative to the corpus root. ``{field}`` is a named part of a path; ``*`` and
``**`` are glob wildcards. One template both finds the files (as a glob, once per corpus) and reads the
fields back from every path found (as a regular expression), so that a session's video and its rating
files are joined by their common fields.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


class SpecError(ValueError):
    """A corpus spec that is missing, unreadable or incomplete."""


class LayoutError(FileNotFoundError):
    """A corpus tree that does not match its spec: nothing where the spec says the files are."""


class RatingsError(ValueError):
    """A rating file that is missing, unreadable, holds NaN or does not match its video."""


FACE_SELECT = ("largest", "confident", "left", "right")
_FIELD = re.compile(r"\{(\w+)\}")
_TOKEN = re.compile(r"(\{\w+\}|\*\*/|\*|\?)")
_DEFAULT_FIELD = r"[^/]+?"


class PathTemplate:
    """A path relative to a corpus root with ``{field}`` parts and glob wildcards.

    ``glob()`` finds the candidate files; ``match()`` reads the fields back from one of them;
    ``format()`` writes the path of given fields (wildcards stay, for messages).
    """

    def __init__(self, text: str):
        self.text = str(text)
        self.fields = tuple(dict.fromkeys(_FIELD.findall(self.text)))

    def __repr__(self) -> str:
        return f"PathTemplate({self.text!r})"

    def glob(self) -> str:
        marked = _FIELD.sub("\0", self.text)
        parts = [part if part == "**" else re.sub(r"[\0*]+", "*", part) for part in marked.split("/")]
        return "/".join(parts)

    def regex(self, patterns: dict[str, str]) -> re.Pattern:
        out, seen = [], set()
        for token in _TOKEN.split(self.text):
            field = _FIELD.fullmatch(token)
            if field:
                name = field.group(1)
                out.append(f"(?P={name})" if name in seen else f"(?P<{name}>{patterns.get(name, _DEFAULT_FIELD)})")
                seen.add(name)
            elif token == "**/":
                out.append(r"(?:[^/]+/)*")
            elif token == "*":
                out.append(r"[^/]*")
            elif token == "?":
                out.append(r"[^/]")
            elif token:
                out.append(re.escape(token))
        return re.compile("".join(out))

    def format(self, **values: str) -> str:
        return _FIELD.sub(lambda m: str(values.get(m.group(1), m.group(0))), self.text)

    def find(self, root: Path, patterns: dict[str, str], want_dir: bool = False) -> list[tuple[dict, Path]]:
        """Every path under ``root`` that matches, with its fields; hidden files are skipped."""
        regex = self.regex(patterns)
        found = []
        for path in sorted(root.glob(self.glob())):
            rel = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in rel.split("/")) or path.is_dir() != want_dir:
                continue
            m = regex.fullmatch(rel)
            if m:
                found.append(({k: v or "" for k, v in m.groupdict().items()}, path))
        return found


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """The facts of one corpus layout, as read from its YAML file."""

    name: str
    description: str
    source: str
    partitions: dict[str, Any]
    video: dict[str, Any]
    ratings: dict[str, Any]
    sessions: dict[str, Any] = dataclasses.field(default_factory=dict)
    audio: dict[str, Any] = dataclasses.field(default_factory=dict)
    reference: str = ""

    @property
    def dimensions(self) -> list[str]:
        return list(self.ratings["dimensions"])

    @property
    def rating_rate_hz(self) -> float | None:
        """Rating steps per second; None when there is one rating per video frame (``rate_hz: video``)."""
        rate = self.ratings["rate_hz"]
        return None if rate == "video" else float(rate)

    @property
    def listed_in_file(self) -> bool:
        """Whether a partition file lists the sessions (else their files' paths name them)."""
        return "file" in self.partitions

    @property
    def video_templates(self) -> list[PathTemplate]:
        paths = self.video["path"]
        return [PathTemplate(p) for p in (paths if isinstance(paths, list) else [paths])]

    @property
    def ratings_template(self) -> PathTemplate:
        return PathTemplate(self.ratings["path"])

    @property
    def per_dimension_files(self) -> bool:
        return "dimension" in self.ratings_template.fields

    def field_patterns(self) -> dict[str, str]:
        patterns = {k: str(v) for k, v in (self.sessions.get("fields") or {}).items()}
        patterns["dimension"] = "|".join(re.escape(d) for d in self.dimensions)
        return patterns

    def video_path(self, root: Path, session: str) -> Path:
        """The video of a session named by ``{session}`` alone (layouts listed in a partition file)."""
        return Path(root) / self.video_templates[0].format(session=session)

    def ratings_path(self, root: Path, session: str) -> Path:
        return Path(root) / self.ratings_template.format(session=session)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def with_overrides(spec: CorpusSpec, video_path: str | None = None, video_fps: float | None = None,
                   rater: str | None = None) -> CorpusSpec:
    """The spec with a user's choices in place: another video path template (for a copy of a corpus
    whose video names differ), a frame rate, or one rater instead of the raters' mean.

    Raises:
        SpecError: when the choice does not fit the spec.
    """
    video, ratings = dict(spec.video), dict(spec.ratings)
    if video_path:
        video["path"] = video_path
    if video_fps:
        video["fps"] = float(video_fps)
    if rater:
        raters = [str(r).strip() for r in ratings.get("raters") or []]
        if rater not in raters:
            raise SpecError(f"spec {spec.name!r} has no rater {rater!r}"
                            + (f"; its raters are {', '.join(raters)}" if raters else
                               "; it reads one gold-standard value per dimension, so --rater does not apply"))
        ratings["raters"] = [rater]
    out = dataclasses.replace(spec, video=video, ratings=ratings)
    _check_templates(out, f"{out.source} with --video-path {video_path!r}" if video_path else out.source)
    return out


# ----------------------------------------------------------------------------------------------
# Loading and checking a spec

_REQUIRED = {
    "partitions": ("names",),
    "video": ("path",),
    "ratings": ("path", "format", "rate_hz", "dimensions", "range"),
}
_FILE_PARTITIONS = ("file", "session_column", "subject_column", "partition_column", "names")

#: Every key a spec may hold, by section (None: the top level); anything else is a typo and is refused.
SPEC_KEYS: dict[str | None, tuple[str, ...]] = {
    None: ("name", "description", "reference", "partitions", "video", "ratings", "sessions", "audio"),
    "partitions": ("names", "field", "map", "ranges", "unlabelled", *_FILE_PARTITIONS),
    "video": ("path", "kind", "fps", "frames", "face_select", "hint"),
    "ratings": ("path", "format", "rate_hz", "dimensions", "range", "columns", "header", "separator",
                "index_column", "time_column", "value_column", "frames_key", "subject_key", "raters",
                "missing_value"),
    "sessions": ("name", "fields", "discover", "subject"),
    "audio": ("path", "rate_hz"),
}


def _check_keys(raw: dict[str, Any], source: str) -> None:
    """Refuse a key the spec format does not have, naming the closest one (``video: {fsp: 5}``)."""
    import difflib

    for section, allowed in SPEC_KEYS.items():
        block = raw if section is None else raw.get(section)
        if not isinstance(block, dict):
            continue
        for key in block:
            if key not in allowed:
                where = "" if section is None else f"{section}."
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
                hint = f"did you mean {where}{close[0]}?" if close else f"known: {', '.join(allowed)}"
                raise SpecError(f"spec {source}: unknown key {where}{key!r}; {hint}")


def builtin_specs() -> list[str]:
    """Names of the specs that ship with emotrack, sorted."""
    folder = resources.files("emotrack.data_specs")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _spec_text(name_or_path: str | Path) -> tuple[str, str, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file {path} does not exist; pass a built-in name "
                            f"({', '.join(builtin_specs())}) or the path of a YAML spec")
        return path.read_text(), str(path), path.stem
    resource = resources.files("emotrack.data_specs") / f"{name_or_path}.yaml"
    if not resource.is_file():
        raise SpecError(f"no built-in spec named {name_or_path!r}; built-in specs: "
                        f"{', '.join(builtin_specs())}; or pass the path of a YAML spec")
    return resource.read_text(), f"emotrack/data_specs/{name_or_path}.yaml", str(name_or_path)


def spec_text(name_or_path: str | Path) -> str:
    """The YAML text of a built-in spec or a spec file."""
    return _spec_text(name_or_path)[0]


def load_spec(name_or_path: str | Path) -> CorpusSpec:
    """Load a built-in spec by name (``generic``) or a spec file by path.

    Raises:
        SpecError: naming the file and the missing or wrong field.
    """
    text, source, stem = _spec_text(name_or_path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"spec {source} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise SpecError(f"spec {source} must be a YAML mapping")
    _check_keys(raw, source)
    for section, keys in _REQUIRED.items():
        if not isinstance(raw.get(section), dict):
            raise SpecError(f"spec {source} lacks the section {section!r}")
        if section == "partitions" and "field" not in raw[section]:
            keys = _FILE_PARTITIONS
        missing = [k for k in keys if k not in raw[section]]
        if missing:
            raise SpecError(f"spec {source}: section {section!r} lacks {', '.join(missing)}")
    for section in ("sessions", "audio"):
        if not isinstance(raw.get(section) or {}, dict):
            raise SpecError(f"spec {source}: section {section!r} must be a mapping")
    spec = CorpusSpec(name=str(raw.get("name", stem)), description=str(raw.get("description", "")).strip(),
                      source=source, partitions=raw["partitions"], video=raw["video"], ratings=raw["ratings"],
                      sessions=raw.get("sessions") or {}, audio=raw.get("audio") or {},
                      reference=str(raw.get("reference", "")).strip())
    _check(spec, source)
    return spec


def _check(spec: CorpusSpec, source: str) -> None:
    r, v, p = spec.ratings, spec.video, spec.partitions
    try:
        low, high = (float(x) for x in r["range"])
    except (TypeError, ValueError):
        raise SpecError(f"spec {source}: ratings.range must be [low, high]") from None
    if not high > low:
        raise SpecError(f"spec {source}: ratings.range must be [low, high] with high > low")
    if r["format"] not in RATING_READERS:
        raise SpecError(f"spec {source}: rating format {r['format']!r} is not one of {', '.join(RATING_READERS)}")
    if r["rate_hz"] != "video" and not (isinstance(r["rate_hz"], (int, float)) and r["rate_hz"] > 0):
        raise SpecError(f"spec {source}: ratings.rate_hz must be a positive number or 'video'")
    if not spec.dimensions:
        raise SpecError(f"spec {source}: ratings.dimensions is empty")
    if r.get("header", True) in (False, "auto") and r["format"] == "csv" and not r.get("columns"):
        raise SpecError(f"spec {source}: a rating CSV without a header (header: {r.get('header')}) needs "
                        f"ratings.columns, the column names in order")
    kind = v.get("kind", "file")
    if kind not in ("file", "frames"):
        raise SpecError(f"spec {source}: video.kind must be 'file' or 'frames', not {kind!r}")
    fps = v.get("fps", "from_file")
    if fps != "from_file" and not (isinstance(fps, (int, float)) and fps > 0):
        raise SpecError(f"spec {source}: video.fps must be 'from_file' or a positive number")
    if kind == "frames" and fps == "from_file":
        raise SpecError(f"spec {source}: a folder of frames has no rate of its own; set video.fps")
    select = v.get("face_select")
    choices = list((select or {}).get("map", {}).values()) if isinstance(select, dict) else [select] if select else []
    bad = [c for c in choices if c not in FACE_SELECT]
    if bad:
        raise SpecError(f"spec {source}: video.face_select {bad} must be among {', '.join(FACE_SELECT)}")
    names = list(p["names"])
    if "field" in p:
        if ("map" in p) == ("ranges" in p):
            raise SpecError(f"spec {source}: partitions with a field need exactly one of map or ranges")
        targets = list(p["map"].values()) if "map" in p else list(p["ranges"])
        wrong = sorted({str(t) for t in targets} - set(names))
        if wrong:
            raise SpecError(f"spec {source}: partitions name {wrong}, which are not in names {names}")
    wrong = sorted(set(p.get("unlabelled") or []) - set(names))
    if wrong:
        raise SpecError(f"spec {source}: partitions.unlabelled {wrong} are not in names {names}")
    _check_templates(spec, source)


def _check_templates(spec: CorpusSpec, source: str) -> None:
    """Every field a path needs must be known from the paths that name the sessions."""
    ratings_fields = set(spec.ratings_template.fields) - {"dimension"}
    video_fields = [set(t.fields) for t in spec.video_templates]
    if any(f != video_fields[0] for f in video_fields):
        raise SpecError(f"spec {source}: the alternatives of video.path must use the same fields")
    if spec.listed_in_file:
        used = ratings_fields | video_fields[0]
        if used - {"session"}:
            raise SpecError(f"spec {source}: with a partition file, paths may only use {{session}}, "
                            f"not {sorted(used - {'session'})}")
        return
    discover = spec.sessions.get("discover", ["video", "ratings"])
    if not discover or set(discover) - {"video", "ratings"}:
        raise SpecError(f"spec {source}: sessions.discover must list 'video' and/or 'ratings'")
    name = PathTemplate(spec.sessions.get("name", "{session}"))
    known = set().union(*[ratings_fields if d == "ratings" else video_fields[0] for d in discover])
    for role, fields in (("video.path", video_fields[0]), ("ratings.path", ratings_fields),
                         ("sessions.name", set(name.fields)),
                         ("sessions.subject", set(PathTemplate(spec.sessions.get("subject", "")).fields))):
        if fields - known:
            raise SpecError(f"spec {source}: {role} uses {sorted(fields - known)}, which the paths that "
                            f"name the sessions ({', '.join(discover)}) do not give")
    for d in discover:
        fields = ratings_fields if d == "ratings" else video_fields[0]
        if set(name.fields) - fields:
            raise SpecError(f"spec {source}: sessions.name needs {sorted(set(name.fields) - fields)}, "
                            f"which {d} paths do not give")
    select = spec.video.get("face_select")
    if isinstance(select, dict) and select.get("field") not in known:
        raise SpecError(f"spec {source}: video.face_select.field {select.get('field')!r} is not a session field")


# ----------------------------------------------------------------------------------------------
# Listing

def describe_spec(spec: CorpusSpec) -> dict[str, Any]:
    """The facts a user chooses a spec by: description, dimensions, rating rate, partitions."""
    r, p = spec.ratings, spec.partitions
    if spec.rating_rate_hz is None:
        fps = spec.video.get("fps", "from_file")
        rate = "one per video frame" + (f" ({fps:g} fps)" if fps != "from_file" else " (rate read from each video)")
    else:
        rate = f"{spec.rating_rate_hz:g} Hz"
    if spec.listed_in_file:
        rule = f"from {p['file']}"
    elif "map" in p:
        rule = f"by {{{p['field']}}}: " + ", ".join(f"{k} -> {v}" for k, v in p["map"].items())
    else:
        rule = f"by {{{p['field']}}}: " + ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in p["ranges"].items())
    unlabelled = p.get("unlabelled") or []
    return {"name": spec.name, "description": spec.description, "dimensions": spec.dimensions,
            "rating_rate": rate, "rating_format": r["format"], "range": list(r["range"]),
            "partitions": list(p["names"]), "partition_rule": rule, "unlabelled": list(unlabelled)}


def describe_specs() -> list[dict[str, Any]]:
    """:func:`describe_spec` of every built-in spec, sorted by name."""
    return [describe_spec(load_spec(name)) for name in builtin_specs()]


def specs_summary() -> str:
    """The built-in specs as text, one block each (what ``emotrack specs`` prints)."""
    blocks = []
    for d in describe_specs():
        unlabelled = f"; without ratings: {', '.join(d['unlabelled'])}" if d["unlabelled"] else ""
        low, high = d["range"]
        blocks.append(
            f"{d['name']}\n  {d['description']}\n"
            f"  dimensions: {', '.join(d['dimensions'])} (range {low:g}..{high:g})\n"
            f"  ratings:    {d['rating_rate']}, {d['rating_format']}\n"
            f"  partitions: {', '.join(d['partitions'])} ({d['partition_rule']}{unlabelled})")
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------------------------
# Finding the sessions of a corpus

@dataclasses.dataclass
class Session:
    """One session of a corpus: where its video and rating files are, and who and where it belongs.

    ``ratings`` maps each dimension to its file (the same file for all when one file holds them all).
    ``face_select`` is None unless the spec chooses the face for this session (``left``, ``right``...).
    """

    session: str
    subject: str
    partition: str
    video: Path | None = None
    ratings: dict[str, Path] = dataclasses.field(default_factory=dict)
    face_select: str | None = None
    fields: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Discovery:
    """What a corpus tree holds for a spec: complete sessions, sessions without ratings in an
    unlabelled partition, and problems (``{"session", "error"}``) that name the files involved."""

    sessions: list[Session]
    unlabelled: list[Session]
    problems: list[dict[str, str]]


def read_partitions(spec: CorpusSpec, root: Path) -> list[Session]:
    """The sessions a partition file lists, with their subject and partition, in file order."""
    p = spec.partitions
    path = Path(root) / p["file"]
    if not path.is_file():
        raise LayoutError(f"partition file {path} does not exist; is --root the corpus folder "
                          f"of spec {spec.name!r}?")
    table = pd.read_csv(path, dtype=str)
    cols = [p["session_column"], p["subject_column"], p["partition_column"]]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)} that spec {spec.name!r} names")
    bad = sorted(set(table[p["partition_column"]]) - set(p["names"]))
    if bad:
        raise ValueError(f"{path} names unknown partition(s) {bad}; allowed: {p['names']}")
    return [Session(str(r[cols[0]]), str(r[cols[1]]), str(r[cols[2]]), fields={"session": str(r[cols[0]])})
            for _, r in table.iterrows()]


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _describe_template(template: PathTemplate, spec: CorpusSpec) -> str:
    patterns = spec.field_patterns()
    parts = [f"{{{f}}} = {patterns.get(f, 'any name')}" for f in template.fields]
    return f"{template.text!r}" + (f" ({'; '.join(parts)})" if parts else "")


def _nothing_found(spec: CorpusSpec, root: Path, role: str, templates: list[PathTemplate]) -> LayoutError:
    section = spec.video if role == "video" else spec.ratings
    what = "video" if role == "video" else "rating file"
    first = {t.text.split("/")[0] for t in templates}
    folder = next(iter(first)) if len(first) == 1 else ""
    where = (f"is --root the folder that holds {folder}/?" if folder and not re.search(r"[{*?]", folder)
             else "is --root the corpus folder?")
    hint = f" {section['hint'].strip()}" if section.get("hint") else (
        " If your copy is laid out differently, write a spec of your own (see `emotrack specs "
        f"{spec.name}`) and pass its path to --spec.")
    return LayoutError(f"spec {spec.name!r} found no {what} under {root}: nothing matches "
                       f"{' or '.join(_describe_template(t, spec) for t in templates)}; {where}{hint}")


def _face_select(spec: CorpusSpec, fields: dict[str, str]) -> str | None:
    select = spec.video.get("face_select")
    if isinstance(select, dict):
        return select.get("map", {}).get(fields.get(select["field"], ""), select.get("default"))
    return select


def _partition(spec: CorpusSpec, fields: dict[str, str]) -> tuple[str | None, str]:
    p = spec.partitions
    value = fields.get(p["field"], "")
    if "map" in p:
        part = p["map"].get(value)
        return part, f"{{{p['field']}}} = {value!r} is not one of {', '.join(map(str, p['map']))}"
    digits = re.search(r"\d+", value)
    if digits:
        number = int(digits.group())
        for name, (low, high) in p["ranges"].items():
            if int(low) <= number <= int(high):
                return name, ""
    return None, f"{{{p['field']}}} = {value!r} lies in none of the ranges {dict(p['ranges'])}"


def _pair(spec: CorpusSpec, root: Path, s: Session, videos: list[Path], files: dict[str, list[Path]]) -> str:
    """Fill in a session's partition, video and rating files; return what is wrong ("" when nothing)."""
    if not spec.listed_in_file:
        part, why = _partition(spec, s.fields)
        if part is None:
            return f"cannot tell the partition of session {s.session}: {why}"
        s.partition = part
    expected_video = " or ".join(repr(str(root / t.format(**s.fields))) for t in spec.video_templates)
    if len(videos) > 1:
        return (f"several videos match session {s.session}: {', '.join(map(str, videos))}; narrow the "
                f"spec's video path (--video-path) so that one matches")
    if not files:
        dims = spec.dimensions if spec.per_dimension_files else spec.dimensions[:1]
        expected = ", ".join(repr(str(root / spec.ratings_template.format(dimension=d, **s.fields))) for d in dims)
        if not videos:
            return f"session {s.session} has neither a video ({expected_video}) nor a rating file ({expected})"
        if s.partition not in (spec.partitions.get("unlabelled") or []):
            return f"video {videos[0]} of session {s.session} has no rating file: expected {expected}"
        s.video = videos[0]  # a session of a test set without public ratings
        return ""
    if not videos:
        listed = sorted({str(p) for paths in files.values() for p in paths})
        return f"rating file(s) {', '.join(listed)} of session {s.session} have no video: expected {expected_video}"
    missing = [d for d in spec.dimensions if d not in files]
    if missing:
        expected = ", ".join(str(root / spec.ratings_template.format(dimension=d, **s.fields)) for d in missing)
        return f"session {s.session} lacks the rating file(s) of {', '.join(missing)}: expected {expected}"
    doubled = [d for d in spec.dimensions if len(files[d]) > 1]
    if doubled:
        return (f"several rating files match session {s.session} for {doubled[0]}: "
                f"{', '.join(map(str, files[doubled[0]]))}")
    s.video, s.ratings = videos[0], {d: files[d][0] for d in spec.dimensions}
    s.face_select = _face_select(spec, s.fields)
    return ""


def discover(spec: CorpusSpec, root: str | Path) -> Discovery:
    """Find the sessions of a corpus: join every video to its rating files by their common fields.

    Raises:
        LayoutError: when the root is not a folder, or no video or no rating file at all matches the
            spec (a wrong --root or a spec that does not fit the copy), naming the pattern expected.
    """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"corpus root {root} is not a folder")
    patterns = spec.field_patterns()
    frames = spec.video.get("kind", "file") == "frames"
    video_found = [hit for t in spec.video_templates for hit in t.find(root, patterns, want_dir=frames)]
    ratings_found = spec.ratings_template.find(root, patterns)
    unlabelled_parts = set(spec.partitions.get("unlabelled") or [])
    vfields = spec.video_templates[0].fields
    rfields = tuple(f for f in spec.ratings_template.fields if f != "dimension")
    videos: dict[tuple, list[Path]] = defaultdict(list)
    for fields, path in video_found:
        videos[tuple(fields[f] for f in vfields)].append(path)
    ratings: dict[tuple, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for fields, path in ratings_found:
        dims = [fields["dimension"]] if spec.per_dimension_files else spec.dimensions
        for dim in dims:
            ratings[tuple(fields[f] for f in rfields)][dim].append(path)

    if spec.listed_in_file:
        candidates = read_partitions(spec, root)
    else:
        if not video_found:
            raise _nothing_found(spec, root, "video", spec.video_templates)
        if not ratings_found and set(spec.partitions["names"]) - unlabelled_parts:
            raise _nothing_found(spec, root, "ratings", [spec.ratings_template])
        name = PathTemplate(spec.sessions.get("name", "{session}"))
        by_name: dict[str, dict[str, str]] = {}
        for role in spec.sessions.get("discover", ["video", "ratings"]):
            found = video_found if role == "video" else ratings_found
            for fields, _ in found:
                fields = {k: v for k, v in fields.items() if k != "dimension"}
                by_name.setdefault(name.format(**fields), {}).update(fields)
        candidates = []
        for session in sorted(by_name, key=_natural):
            fields = by_name[session]
            subject = PathTemplate(spec.sessions["subject"]).format(**fields) if spec.sessions.get("subject") \
                else session
            candidates.append(Session(session, subject, "", fields=fields))

    sessions, unlabelled, problems = [], [], []
    for s in candidates:
        error = _pair(spec, root, s, videos.get(tuple(s.fields.get(f, "") for f in vfields), []),
                      ratings.get(tuple(s.fields.get(f, "") for f in rfields), {}))
        if error:
            problems.append({"session": s.session, "error": error})
        else:
            (sessions if s.ratings else unlabelled).append(s)
    return Discovery(sessions=sessions, unlabelled=unlabelled, problems=problems)


# ----------------------------------------------------------------------------------------------
# Reading rating files

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


def _read_csv_table(spec: CorpusSpec, path: Path) -> tuple[pd.DataFrame, dict]:
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


def _read_arff_table(spec: CorpusSpec, path: Path) -> tuple[pd.DataFrame, dict]:
    return read_arff(path), {}


def _read_json_frames(spec: CorpusSpec, path: Path) -> tuple[pd.DataFrame, dict]:
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


#: Rating-file formats: each reads one file into a table of strings (and facts such as the subject).
#: A corpus with a new file format needs one new entry here and nothing else.
RATING_READERS: dict[str, Callable[[CorpusSpec, Path], tuple[pd.DataFrame, dict]]] = {
    "csv": _read_csv_table,
    "arff": _read_arff_table,
    "json_frames": _read_json_frames,
}


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


def _column(table: pd.DataFrame, name: str, path: Path) -> np.ndarray:
    if name not in table.columns:
        raise RatingsError(f"rating file {path} lacks the column {name!r} "
                           f"(it has {', '.join(map(str, table.columns))})")
    values = pd.to_numeric(table[name].astype(str).str.strip().str.strip("'\""), errors="coerce")
    return values.to_numpy(dtype=np.float64)


def _read_rating_file(spec: CorpusSpec, path: Path, dims: list[str], rate: float) -> tuple[np.ndarray, dict, dict]:
    """One rating file: its times (N,), the raw columns of each of its dimensions {dim: (N, raters)},
    and the facts its reader found (the subject)."""
    r = spec.ratings
    if not path.is_file():
        raise RatingsError(f"rating file {path} does not exist")
    if path.stat().st_size == 0:
        raise RatingsError(f"rating file {path} is empty")
    table, meta = RATING_READERS[r["format"]](spec, path)
    if len(table) < 2:
        raise RatingsError(f"rating file {path} holds {'no' if len(table) == 0 else 'only one'} rating row")
    if r.get("time_column"):
        times = _column(table, r["time_column"], path)
    elif r.get("index_column"):
        times = _column(table, r["index_column"], path) / rate
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
        raw[dim] = np.stack([_column(table, n, path) for n in names], axis=1)
    bad = ~np.isfinite(np.concatenate([times[:, None]] + list(raw.values()), axis=1)).all(axis=1)
    if bad.any():
        raise RatingsError(f"rating file {path} holds NaN, infinite or non-numeric values (first at data "
                           f"row {int(np.flatnonzero(bad)[0]) + 1}); fill or remove them before preprocessing")
    if np.any(np.diff(times) <= 0):
        raise RatingsError(f"rating file {path}: time stamps must increase strictly")
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
                                   f"{', '.join(f'{v:g}' for v in cols[row])})")
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
