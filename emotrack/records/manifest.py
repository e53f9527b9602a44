"""The manifest of a preprocessed corpus (``manifest.json``): its name, format and schema, building it
from the sessions' entries, merging the parts of a sharded run, writing and reading it.

The manifest says what the data is, and nothing of how long it took to make, so that the same corpus
preprocessed again with the same options hashes the same (a run folder records that hash). A run over one
shard of a corpus writes its part, ``manifest.shard-i-of-n.json`` (the manifest of its sessions with a
``shard`` key: its index, the shard count and the corpus' session order); `merge_shard_parts` makes the
parts into the manifest one unsharded run writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from emotrack import __version__
from emotrack.faces.crop import crop_sets
from emotrack.files import atomic_path
from emotrack.media.audio import AUDIO_RATE

MANIFEST = "manifest.json"


FORMAT = "emotrack-sessions/1"

#: The shard parts' names, as a glob and as a pattern that gives (index, count).
SHARD_GLOB = "manifest.shard-*-of-*.json"
_SHARD_PART = re.compile(r"manifest\.shard-(\d+)-of-(\d+)\.json")


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of a preprocessed corpus; a clear error when the folder is not one."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `emotrack preprocess ... --out {data_dir}` first")
    return json.loads(path.read_text())


def read_manifest_file(path: str | Path) -> dict[str, Any] | None:
    """A manifest or a shard part as it is on disk, or None where there is none to read (missing, torn or
    not a JSON object): for resuming, which takes only what it can verify."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` whole or not at all (`emotrack.files.atomic_path`), synced to disk
    before the rename, so that a crash never leaves a torn manifest beside complete records."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(json.dumps(manifest, indent=2).encode())
        fh.flush()
        os.fsync(fh.fileno())


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in blocks: the checksum of a session's record in its manifest entry."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_hash(data_dir: str | Path) -> str:
    """SHA-256 of ``manifest.json``, recorded in run folders to trace a result to its data."""
    return file_sha256(Path(data_dir) / MANIFEST)


def shard_manifest_name(index: int, count: int) -> str:
    """The manifest part that shard ``index`` of ``count`` writes: ``manifest.shard-i-of-n.json``."""
    return f"manifest.shard-{index}-of-{count}.json"


def audio_summary(done: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's ``audio``: ``sample_rate`` and ``samples_per_frame`` are set when every session holds
    audio (and, for ``samples_per_frame``, all at one frame rate); None otherwise. ``unusable`` maps the
    sessions stored without audio because theirs could not be used to why (see
    `emotrack.preprocess.session`); they are among ``sessions_without_audio``, which an audio model
    refuses. Manifests written before it lack the key."""
    with_audio = [e for e in done if e.get("audio")]
    without = [e["session"] for e in done if not e.get("audio")]
    complete = bool(done) and not without
    per_frame = sorted({e["audio"]["samples_per_frame"] for e in with_audio})
    return {
        "sample_rate": AUDIO_RATE if complete else None,
        "samples_per_frame": per_frame[0] if complete and len(per_frame) == 1 else None,
        "channels": 1,
        "sessions_with_audio": len(with_audio),
        "sessions_without_audio": without,
        "unusable": {e["session"]: e["audio_unusable"] for e in done if e.get("audio_unusable")},
        "normalisation": "zero mean, unit variance over each session's stored span (Tzirakis et al. 2017); "
                         "the mean and std of each session are in its entry, in full-scale units",
        "window": "frame k at time t_k holds samples [round(t_k * sample_rate), + samples_per_frame), "
                  "samples_per_frame = round(sample_rate / fps); zeros outside the recording",
    }


def manifest_crops(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's ``crops``: each set's ``height``, ``width``, ``channels`` and the record's ``feature`` that
    holds it (``frames`` for the first, the default)."""
    sets = crop_sets(options.get("crops"), options["size"], options["gray"])
    return {name: {"height": spec.height, "width": spec.width, "channels": spec.shape[2],
                   "feature": "frames" if k == 0 else f"frames_{name}"}
            for k, (name, spec) in enumerate(sets.items())}


def build_manifest(run: dict[str, Any], done: list[dict[str, Any]], failed: list[dict[str, str]],
                   unlabelled: list[dict[str, str]], shard: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a preprocessing run.

    Args:
        run: what the records depend on: ``format``, ``spec`` (the corpus spec as a dict), ``root`` and
            ``options`` (the preprocessing options as a dict).
        done: the sessions' entries, in the corpus' session order.
        failed: ``{"session", "error"}`` of the sessions that failed.
        unlabelled: ``{"session", "partition", "video"}`` of the sessions without ratings.
        shard: a shard part's ``{"index", "count", "order"}``; None for a whole manifest.
    """
    spec = run["spec"]
    low, high = (float(v) for v in spec["ratings"]["range"])
    options = run["options"]
    rate = spec["ratings"]["rate_hz"]
    sets = manifest_crops(options)
    default = next(iter(sets))
    manifest = {
        "format": run["format"],
        "emotrack_version": __version__,
        "spec": spec,
        "root": run["root"],
        "dimensions": list(spec["ratings"]["dimensions"]),
        "rating_rate": None if rate == "video" else float(rate),
        "rating_scale": {"from": [low, high], "to": [-1.0, 1.0], "missing_value": spec["ratings"].get("missing_value")},
        "frame": {**{k: sets[default][k] for k in ("height", "width", "channels")}, "crops": default},
        "crops": sets,
        "audio": audio_summary(done),
        "options": options,
        "partitions": {name: [s["session"] for s in done if s["partition"] == name]
                       for name in spec["partitions"]["names"]},
        "sessions": done,
        "failed": failed,
        "unlabelled": unlabelled,
    }
    if shard is not None:
        manifest["shard"] = shard
    return manifest


def read_shard_parts(out_dir: str | Path, count: int | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """The shard parts ``manifest.shard-i-of-n.json`` in ``out_dir``, as (path, part) in shard order.

    Args:
        count: n, where parts of several shard counts lie in the folder.
    Raises:
        FileNotFoundError: no part at all, or naming the parts that are missing.
        ValueError: parts of several shard counts, or a file that is not a shard part.
    """
    out_dir = Path(out_dir)
    counts: dict[int, dict[int, Path]] = {}
    for path in out_dir.glob(SHARD_GLOB):
        m = _SHARD_PART.fullmatch(path.name)
        if m:
            counts.setdefault(int(m.group(2)), {})[int(m.group(1))] = path
    if not counts:
        raise FileNotFoundError(f"{out_dir} holds no shard part (manifest.shard-i-of-n.json); run "
                                f"`emotrack preprocess ... --shard i/n --out {out_dir}` first")
    if count is None:
        if len(counts) > 1:
            raise ValueError(f"{out_dir} holds shard parts of {len(counts)} shard counts ({sorted(counts)}); "
                             f"remove the stale ones")
        count = next(iter(counts))
    present = counts.get(count, {})
    missing = [shard_manifest_name(i, count) for i in range(count) if i not in present]
    if missing:
        raise FileNotFoundError(f"shard part(s) missing in {out_dir}: {', '.join(missing)}; run those shards "
                                f"(`emotrack preprocess ... --shard i/{count}`) or copy their parts here")
    parts = []
    for i in range(count):
        part = read_manifest_file(present[i])
        if part is None or part.get("shard", {}).get("index") != i:
            raise ValueError(f"{present[i]} is not a shard part written by emotrack preprocess")
        parts.append((present[i], part))
    return parts


def merge_shard_parts(parts: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """The manifest of one unsharded run over the sessions of ``parts`` (`read_shard_parts`): sessions in
    the corpus' order, discovery problems once.

    Raises:
        ValueError: parts of different corpora, roots or options, or of different session orders.
    """
    (first_path, first), *rest = parts
    keys = ("format", "spec", "root", "options")
    for path, part in rest:
        differ = [k for k in keys if part.get(k) != first.get(k)] + (
            ["session order"] if part["shard"]["order"] != first["shard"]["order"] else [])
        if differ:
            raise ValueError(f"{path} and {first_path} come from different runs (their {', '.join(differ)} "
                             f"differ); rerun the shards with the same spec, root and options")
    manifests = [part for _, part in parts]
    order = {name: k for k, name in enumerate(first["shard"]["order"])}
    # A person of a several-person video (`--faces all`) sits where their video does.
    done = sorted((e for p in manifests for e in p["sessions"]),
                  key=lambda e: order.get(e.get("parent", e["session"]), len(order)))
    failed, seen = [], set()
    # Problems of discovery (files the spec cannot pair) are in every part; they come first, as in one run.
    problems = [f for p in manifests for f in p["failed"] if f["session"] not in order]
    for f in problems + sorted((f for p in manifests for f in p["failed"] if f["session"] in order),
                               key=lambda f: order[f["session"]]):
        if (f["session"], f["error"]) not in seen:
            seen.add((f["session"], f["error"]))
            failed.append(f)
    unlabelled = list({u["session"]: u for p in manifests for u in p["unlabelled"]}.values())
    return build_manifest(first, done, failed, unlabelled)
