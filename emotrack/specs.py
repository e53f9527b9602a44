"""Corpus specs: the declarative facts of a corpus layout (paths, rating format, rates, partitions).

A spec is a YAML file. The built-in ones ship inside the package (``emotrack/data_specs/*.yaml``,
from the repository's top-level ``data_specs/`` folder); a user may also pass the path of their own.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class SpecError(ValueError):
    """A corpus spec that is missing, unreadable or incomplete."""


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """The facts of one corpus layout, as read from its YAML file."""

    name: str
    description: str
    source: str
    partitions: dict[str, Any]
    video: dict[str, Any]
    ratings: dict[str, Any]

    @property
    def dimensions(self) -> list[str]:
        return list(self.ratings["dimensions"])

    @property
    def rating_rate_hz(self) -> float:
        return float(self.ratings["rate_hz"])

    def video_path(self, root: Path, session: str) -> Path:
        return Path(root) / self.video["path"].format(session=session)

    def ratings_path(self, root: Path, session: str) -> Path:
        return Path(root) / self.ratings["path"].format(session=session)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_REQUIRED = {
    "partitions": ("file", "session_column", "subject_column", "partition_column", "names"),
    "video": ("path",),
    "ratings": ("path", "format", "time_column", "rate_hz", "dimensions", "range"),
}


def builtin_specs() -> list[str]:
    """Names of the specs that ship with emotrack, sorted."""
    folder = resources.files("emotrack.data_specs")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_spec(name_or_path: str | Path) -> CorpusSpec:
    """Load a built-in spec by name (``generic``) or a spec file by path.

    Raises:
        SpecError: naming the file and the missing or wrong field.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file {path} does not exist; pass a built-in name "
                            f"({', '.join(builtin_specs())}) or the path of a YAML spec")
        text, source = path.read_text(), str(path)
    else:
        resource = resources.files("emotrack.data_specs") / f"{name_or_path}.yaml"
        if not resource.is_file():
            raise SpecError(f"no built-in spec named {name_or_path!r}; built-in specs: "
                            f"{', '.join(builtin_specs())}; or pass the path of a YAML spec")
        text, source = resource.read_text(), f"emotrack/data_specs/{name_or_path}.yaml"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"spec {source} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise SpecError(f"spec {source} must be a YAML mapping")
    for section, keys in _REQUIRED.items():
        if not isinstance(raw.get(section), dict):
            raise SpecError(f"spec {source} lacks the section {section!r}")
        missing = [k for k in keys if k not in raw[section]]
        if missing:
            raise SpecError(f"spec {source}: section {section!r} lacks {', '.join(missing)}")
    low, high = raw["ratings"]["range"]
    if not float(high) > float(low):
        raise SpecError(f"spec {source}: ratings.range must be [low, high] with high > low")
    return CorpusSpec(name=str(raw.get("name", path.stem)), description=str(raw.get("description", "")),
                      source=source, partitions=raw["partitions"], video=raw["video"],
                      ratings=raw["ratings"])
