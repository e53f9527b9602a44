"""Corpus spec files: loading and checking the declarative facts of a corpus layout, listing the built-in ones.

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
    :data:`emotrack.corpora.ratings.RATING_READERS`), the columns (``time_column``, ``value_column``, ``raters``,
    ``columns``, ``header``, ``separator``, ``index_column``), ``rate_hz`` (a number, or ``video``:
    one rating per video frame), ``dimensions``, ``range`` (mapped linearly to [-1, 1]) and
    ``missing_value`` (a marker of steps that carry no rating; they are masked, never trained on).

Path templates are relative to the corpus root. ``{field}`` is a named part of a path; ``*`` and
``**`` are glob wildcards. One template both finds the files (as a glob, once per corpus) and reads the
fields back from every path found (as a regular expression), so that a session's video and its rating
files are joined by their common fields.

The typed spec is :mod:`emotrack.corpora.schema`, the sessions a spec finds in a corpus tree
:mod:`emotrack.corpora.layout`, and the readers of its rating files :mod:`emotrack.corpora.ratings`.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from emotrack.corpora.ratings import RATING_READERS
from emotrack.corpora.schema import CorpusSpec, PathTemplate


class SpecError(ValueError):
    """A corpus spec that is missing, unreadable or incomplete."""


FACE_SELECT = ("largest", "confident", "left", "right")


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
