"""The typed corpus spec: :class:`CorpusSpec`, the facts of one corpus layout, and :class:`PathTemplate`,
a path relative to the corpus root whose ``{field}`` parts name a session (the spec format is described,
loaded and checked in :mod:`emotrack.corpora.spec`).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

_FIELD = re.compile(r"\{(\w+)\}")
_TOKEN = re.compile(r"(\{\w+\}|\*\*/|\*|\?)")
_DEFAULT_FIELD = r"[^/]+?"


class PathTemplate:
    """A path relative to a corpus root with ``{field}`` parts and glob wildcards.

    ``glob()`` finds the candidate files; ``regex()`` reads the fields back from one of them;
    ``format()`` writes the path of given fields (wildcards stay, for messages).
    """

    def __init__(self, text: str):
        self.text = str(text)
        self.fields = tuple(dict.fromkeys(_FIELD.findall(self.text)))

    def __repr__(self) -> str:
        return f"PathTemplate({self.text!r})"

    def glob(self) -> str:
        """The template as a glob pattern relative to the root: each ``{field}`` becomes ``*``."""
        marked = _FIELD.sub("\0", self.text)
        parts = [part if part == "**" else re.sub(r"[\0*]+", "*", part) for part in marked.split("/")]
        return "/".join(parts)

    def regex(self, patterns: dict[str, str]) -> re.Pattern:
        """The regular expression that reads the fields back from a relative path (``patterns``: the
        expression of each field; a field used twice must match the same text)."""
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
        """The path with the given fields filled in; other fields and the wildcards stay as written."""
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
        """The rated dimensions, in the order of the spec (``arousal``, ``valence``...)."""
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
        """The alternatives of ``video.path``, tried in order."""
        paths = self.video["path"]
        return [PathTemplate(p) for p in (paths if isinstance(paths, list) else [paths])]

    @property
    def ratings_template(self) -> PathTemplate:
        """The template of ``ratings.path``."""
        return PathTemplate(self.ratings["path"])

    @property
    def per_dimension_files(self) -> bool:
        """Whether each dimension has its own rating file (``{dimension}`` in ``ratings.path``)."""
        return "dimension" in self.ratings_template.fields

    def field_patterns(self) -> dict[str, str]:
        """The regular expression of each path field: the spec's ``sessions.fields``, and ``dimension``
        matching only the spec's dimensions."""
        patterns = {k: str(v) for k, v in (self.sessions.get("fields") or {}).items()}
        patterns["dimension"] = "|".join(re.escape(d) for d in self.dimensions)
        return patterns

    def video_path(self, root: Path, session: str) -> Path:
        """The video of a session named by ``{session}`` alone (layouts listed in a partition file)."""
        return Path(root) / self.video_templates[0].format(session=session)

    def ratings_path(self, root: Path, session: str) -> Path:
        """The rating file of a session named by ``{session}`` alone (layouts listed in a partition file)."""
        return Path(root) / self.ratings_template.format(session=session)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (part of the fingerprint that decides whether a preprocessed record is reused)."""
        return dataclasses.asdict(self)
