"""Finding the sessions of a corpus: a session's video and rating files in a release layout, its subject
and its partition, joined by the fields their paths share (or listed in a partition file).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from emotrack.corpora.schema import CorpusSpec, PathTemplate


class LayoutError(FileNotFoundError):
    """A corpus tree that does not match its spec: nothing where the spec says the files are."""


@dataclasses.dataclass
class Session:
    """One session of a corpus: where its video and rating files are, and who and where it belongs.

    ``ratings`` maps each dimension to its file (the same file for all when one file holds them all).
    ``face_select`` is None unless the spec chooses the face for this session (``left``, ``right``...).
    ``track_ratings``: with ``preprocess --faces all``, the rating files of each person of the video by
    their track id (`track_session`), where the spec's rating path resolves one for that track session.
    """

    session: str
    subject: str
    partition: str
    video: Path | None = None
    ratings: dict[str, Path] = dataclasses.field(default_factory=dict)
    face_select: str | None = None
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    track_ratings: dict[int, dict[str, Path]] = dataclasses.field(default_factory=dict)


#: A track session's name: its video's session and the person's track id (`emotrack.faces.people`).
_TRACK_SESSION = re.compile(r"(?P<parent>.+)_track(?P<track>\d+)")


def track_session(session: str, track: int) -> str:
    """The session of person ``track`` of ``session``'s video (``preprocess --faces all``):
    ``<session>_track<k>``; its rating file is the spec's rating path with ``{session}`` so named."""
    return f"{session}_track{track}"


def parse_track_session(name: str) -> tuple[str, int] | None:
    """``(session, track)`` of a name `track_session` wrote; None for another name."""
    m = _TRACK_SESSION.fullmatch(name)
    return (m.group("parent"), int(m.group("track"))) if m else None


@dataclasses.dataclass
class Discovery:
    """What a corpus tree holds for a spec: complete sessions, sessions without ratings in an
    unlabelled partition, problems (``{"session", "error"}``) that name the files involved, and the
    files that match the spec's paths but belong to no session the partition file lists."""

    sessions: list[Session]
    unlabelled: list[Session]
    problems: list[dict[str, str]]
    unlisted: list[Path] = dataclasses.field(default_factory=list)


def _partition_table(path: Path) -> pd.DataFrame:
    """A partition file as strings, indexed by its line number in the file (the header is line 1)."""
    try:
        table = pd.read_csv(path, dtype=str, skip_blank_lines=False, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise LayoutError(f"partition file {path} is empty; it needs a header line and one row per "
                          f"session") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LayoutError(f"partition file {path} cannot be read as CSV ({err}); write it as comma-separated "
                          f"text with one row per session") from None
    table.index = table.index + 2
    table.columns = [str(c).strip() for c in table.columns]
    table = table.apply(lambda column: column.str.strip())
    return table[(table != "").any(axis=1)]  # blank lines


def read_partitions(spec: CorpusSpec, root: Path) -> list[Session]:
    """The sessions a partition file lists, with their subject and partition, in file order.

    Raises:
        LayoutError: naming the file and its lines: a file that is missing, unreadable or lacks a
            column, a row without a session, subject or partition, an unknown partition, or one session
            listed twice (which of its rows holds the truth cannot be told).
    """
    p = spec.partitions
    path = Path(root) / p["file"]
    if not path.is_file():
        raise LayoutError(f"partition file {path} does not exist; is --root the corpus folder "
                          f"of spec {spec.name!r}?")
    table = _partition_table(path)
    cols = [p["session_column"], p["subject_column"], p["partition_column"]]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise LayoutError(f"{path} lacks the column(s) {', '.join(missing)} that spec {spec.name!r} names "
                          f"(it has {', '.join(map(str, table.columns))}); its first line must name the columns")
    for line, row in table.iterrows():
        empty = [c for c in cols if not row[c]]
        if empty:
            raise LayoutError(f"{path} line {line} has no {' and no '.join(empty)}; fill it in or remove the row")
        if row[cols[2]] not in p["names"]:
            raise LayoutError(f"{path} line {line}: partition {row[cols[2]]!r} of session {row[cols[0]]} is not "
                              f"one of {', '.join(p['names'])}; allowed: {p['names']}")
    lines = table.groupby(cols[0], sort=False).groups
    for session, at in lines.items():
        if len(at) > 1:
            rows = "; ".join(f"line {n}: {','.join(table.loc[n, cols])}" for n in at)
            raise LayoutError(f"{path} lists session {session} {len(at)} times ({rows}); keep one row per "
                              f"session, since which one holds its subject and partition cannot be told")
    return [Session(r[cols[0]], r[cols[1]], r[cols[2]], fields={"session": r[cols[0]]})
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


def _rating_files(spec: CorpusSpec, root: Path, session: str, fields: dict[str, str],
                  files: dict[str, list[Path]]) -> tuple[dict[str, Path], str]:
    """One rating file per dimension of ``session`` (``{dimension: path}``), or what is wrong."""
    missing = [d for d in spec.dimensions if d not in files]
    if missing:
        expected = ", ".join(str(root / spec.ratings_template.format(dimension=d, **fields)) for d in missing)
        return {}, f"session {session} lacks the rating file(s) of {', '.join(missing)}: expected {expected}"
    doubled = [d for d in spec.dimensions if len(files[d]) > 1]
    if doubled:
        return {}, (f"several rating files match session {session} for {doubled[0]}: "
                    f"{', '.join(map(str, files[doubled[0]]))}")
    return {d: files[d][0] for d in spec.dimensions}, ""


def _pair(spec: CorpusSpec, root: Path, s: Session, videos: list[Path], files: dict[str, list[Path]],
          tracks: dict[int, dict[str, list[Path]]] | None = None) -> str:
    """Fill in a session's partition, video and rating files (and, with ``--faces all``, its people's
    rating files, ``tracks``); return what is wrong ("" when nothing)."""
    tracks = tracks or {}
    if not spec.listed_in_file:
        part, why = _partition(spec, s.fields)
        if part is None:
            return f"cannot tell the partition of session {s.session}: {why}"
        s.partition = part
    expected_video = " or ".join(repr(str(root / t.format(**s.fields))) for t in spec.video_templates)
    if len(videos) > 1:
        return (f"several videos match session {s.session}: {', '.join(map(str, videos))}; narrow the "
                f"spec's video path (--video-path) so that one matches")
    if not files and not tracks:
        dims = spec.dimensions if spec.per_dimension_files else spec.dimensions[:1]
        expected = ", ".join(repr(str(root / spec.ratings_template.format(dimension=d, **s.fields))) for d in dims)
        if not videos:
            return f"session {s.session} has neither a video ({expected_video}) nor a rating file ({expected})"
        if s.partition not in (spec.partitions.get("unlabelled") or []):
            return f"video {videos[0]} of session {s.session} has no rating file: expected {expected}"
        s.video = videos[0]  # a session of a test set without public ratings
        return ""
    if not videos:
        listed = sorted({str(p) for group in [files, *tracks.values()] for paths in group.values() for p in paths})
        return f"rating file(s) {', '.join(listed)} of session {s.session} have no video: expected {expected_video}"
    ratings: dict[str, Path] = {}
    if files:
        ratings, error = _rating_files(spec, root, s.session, s.fields, files)
        if error:
            return error
    for track, found in sorted(tracks.items()):
        name = track_session(s.session, track)
        s.track_ratings[track], error = _rating_files(spec, root, name, {**s.fields, "session": name}, found)
        if error:
            return error
    s.video, s.ratings = videos[0], ratings
    s.face_select = _face_select(spec, s.fields)
    return ""


def _track_files(spec: CorpusSpec, ratings: dict[tuple, dict[str, list[Path]]], names: set[str]
                 ) -> dict[tuple, dict[int, dict[str, list[Path]]]]:
    """The rating files of track sessions (``<session>_track<k>``, the spec's rating path with
    ``{session}`` so named) of the sessions ``names``, taken out of ``ratings``: by the key their
    session's own files would have, then by track."""
    rfields = tuple(f for f in spec.ratings_template.fields if f != "dimension")
    if "session" not in rfields:
        return {}
    at = rfields.index("session")
    tracks: dict[tuple, dict[int, dict[str, list[Path]]]] = defaultdict(dict)
    for key in list(ratings):
        parsed = parse_track_session(key[at])
        if parsed and parsed[0] in names:
            parent = key[:at] + (parsed[0],) + key[at + 1:]
            tracks[parent][parsed[1]] = ratings.pop(key)
    return tracks


def discover(spec: CorpusSpec, root: str | Path, people: bool = False) -> Discovery:
    """Find the sessions of a corpus: join every video to its rating files by their common fields.

    ``people`` (``preprocess --faces all``): rating files of track sessions (`track_session`:
    ``{session}`` = ``<session>_track<k>`` in the spec's rating path) belong to their video's session,
    as its ``track_ratings``; a session with such files needs no rating file of its own.

    Raises:
        LayoutError: when the root is not a folder, or no video or no rating file at all matches the
            spec (a wrong --root or a spec that does not fit the copy), naming the pattern expected;
            or when the partition file is unreadable or lists a session twice (`read_partitions`).
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

    unlisted: list[Path] = []
    if spec.listed_in_file:
        candidates = read_partitions(spec, root)
        listed = {s.session for s in candidates}
        owner = {name: parse_track_session(name) for name in {f.get("session", "") for f, _ in ratings_found}}
        mine = {name for name, parsed in owner.items() if people and parsed and parsed[0] in listed}
        unlisted = sorted(path for fields, path in video_found + ratings_found
                          if fields.get("session") not in listed | mine)
    if not video_found:
        raise _nothing_found(spec, root, "video", spec.video_templates)
    if not ratings_found and set(spec.partitions["names"]) - unlabelled_parts:
        raise _nothing_found(spec, root, "ratings", [spec.ratings_template])
    if not spec.listed_in_file:
        name = PathTemplate(spec.sessions.get("name", "{session}"))
        by_name: dict[str, dict[str, str]] = {}
        for role in spec.sessions.get("discover", ["video", "ratings"]):
            found = video_found if role == "video" else ratings_found
            for fields, _ in found:
                fields = {k: v for k, v in fields.items() if k != "dimension"}
                by_name.setdefault(name.format(**fields), {}).update(fields)
        if people and "session" in rfields:  # a person's rating file is no session of its own
            for session in [n for n in by_name if (parse_track_session(n) or ("",))[0] in by_name]:
                del by_name[session]
        candidates = []
        for session in sorted(by_name, key=_natural):
            fields = by_name[session]
            subject = PathTemplate(spec.sessions["subject"]).format(**fields) if spec.sessions.get("subject") \
                else session
            candidates.append(Session(session, subject, "", fields=fields))

    tracks = _track_files(spec, ratings, {s.session for s in candidates}) if people else {}
    sessions, unlabelled, problems = [], [], []
    for s in candidates:
        key = tuple(s.fields.get(f, "") for f in rfields)
        error = _pair(spec, root, s, videos.get(tuple(s.fields.get(f, "") for f in vfields), []),
                      ratings.get(key, {}), tracks.get(key))
        if error:
            problems.append({"session": s.session, "error": error})
        else:
            (sessions if s.ratings or s.track_ratings else unlabelled).append(s)
    return Discovery(sessions=sessions, unlabelled=unlabelled, problems=problems, unlisted=unlisted)
