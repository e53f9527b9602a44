"""Predictions for a partition without public labels (a challenge's test set: SEWA AVEC 2017,
RECOLA AVEC 2016), written in the release's own rating-file format, so that they can be submitted
to the challenge as its label files would be read.

Each session's video (listed under ``unlabelled`` in the data's manifest) is predicted end to end
with the run (`emotrack.apps.predict.predict_video`: face tracking, the run's crops, its
post-processing chain when the run has one), the per-frame predictions are interpolated onto the
rating grid of the corpus (``ratings.rate_hz``) and written where the spec's ``ratings.path`` puts
that session's labels, below ``submission/<partition>/``:

- ``csv``: the spec's separator, columns and header rule; the name column holds the session name
  (AVEC 2017: in single quotes, as its label files have it), the time column the grid time with six
  decimals, and a rating dimension the run does not predict is left empty.
- ``arff``: the AVEC 2016 gold-standard layout (``Instance_name``, the time column, the value
  column), one file per dimension.

Values are on the corpus' own rating scale (``ratings.range``), as in its label files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emotrack.corpora.schema import PathTemplate
from emotrack.files import atomic_path

SUBMISSION_DIR = "submission"
WRITABLE_FORMATS = ("csv", "arff")


class SubmissionError(ValueError):
    """A submission that cannot be written in the release's format (naming why)."""


def session_fields(spec: dict[str, Any], root: str | Path, video: str | Path) -> dict[str, str]:
    """The spec's fields of a session (``split``, ``id``, ...), read back from its video's path."""
    rel = Path(video).resolve().relative_to(Path(root).resolve()).as_posix()
    match = PathTemplate(spec["video"]["path"]).regex(spec.get("sessions", {}).get("fields") or {}).fullmatch(rel)
    if match is None:
        raise SubmissionError(f"{video} does not match the spec's video path {spec['video']['path']!r}")
    return {k: v or "" for k, v in match.groupdict().items()}


def rating_grid(duration_s: float, rate_hz: float) -> np.ndarray:
    """The times of a rating file covering ``duration_s``: 0, 1/rate, ... (the last before the end)."""
    return np.arange(int(np.floor(duration_s * rate_hz + 1e-9)) + 1) / float(rate_hz)


def to_spec_scale(values: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Predictions on emotrack's -1..1 scale back on the corpus' own rating scale (the inverse of the
    manifest's ``rating_scale``)."""
    (low, high), (a, b) = manifest["rating_scale"]["from"], manifest["rating_scale"]["to"]
    return float(low) + (np.asarray(values, float) - float(a)) * (float(high) - float(low)) / (float(b) - float(a))


def _csv_lines(spec: dict[str, Any], session: str, times: np.ndarray, values: dict[str, np.ndarray]) -> list[str]:
    r = spec["ratings"]
    sep = r.get("separator", ",")
    columns = list(r.get("columns") or [r["time_column"], *r["dimensions"]])
    name_column = next((c for c in columns if c == "name"), None)
    quoted = f"'{session}'" if r.get("header", True) in (False, "auto") else session  # AVEC 2017: 'Train_01'
    lines = [sep.join(columns)] if r.get("header", True) is True else []
    for i, t in enumerate(times):
        row = []
        for column in columns:
            if column == name_column:
                row.append(quoted)
            elif column == r["time_column"]:
                row.append(f"{t:.6f}")
            elif column in values:
                row.append(f"{values[column][i]:.6f}")
            else:
                row.append("")
        lines.append(sep.join(row))
    return lines


def _arff_lines(spec: dict[str, Any], session: str, times: np.ndarray, value: np.ndarray) -> list[str]:
    r = spec["ratings"]
    lines = ["@relation GOLDSTANDARD", "", "@attribute Instance_name string",
             f"@attribute {r['time_column']} numeric", f"@attribute {r.get('value_column', 'GoldStandard')} numeric",
             "", "@data", ""]
    return lines + [f"'{session}',{t:.6f},{v:.6f}" for t, v in zip(times, value)]


def write_session(spec: dict[str, Any], out_dir: Path, session: str, fields: dict[str, str], times: np.ndarray,
                  values: dict[str, np.ndarray]) -> list[Path]:
    """Write one session's predictions (``values``: dimension -> series at ``times``) in the spec's
    rating format below ``out_dir``; returns the files written."""
    r = spec["ratings"]
    fmt = r.get("format", "csv")
    if fmt not in WRITABLE_FORMATS:
        raise SubmissionError(f"rating format {fmt!r} of spec {spec.get('name')} has no submission writer "
                              f"(known: {', '.join(WRITABLE_FORMATS)})")
    template = PathTemplate(r["path"])
    per_dimension = "dimension" in template.fields
    written = []
    groups = [(d, {d: values[d]}) for d in values] if per_dimension else [(None, values)]
    for dimension, part in groups:
        rel = template.format(**fields, **({"dimension": dimension} if dimension else {}))
        if any(ch in rel for ch in "*?{"):
            raise SubmissionError(f"the spec's rating path {r['path']!r} cannot be filled from the session's "
                                  f"fields {fields}")
        lines = (_arff_lines(spec, session, times, part[dimension]) if fmt == "arff"
                 else _csv_lines(spec, session, times, part))
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_text("\n".join(lines) + "\n")
        written.append(target)
    return written


def write_submissions(run_dir: str | Path, report: dict[str, Any], log=print) -> dict[str, Any]:
    """The submission of every partition that :func:`emotrack.evaluation.report.evaluate` left
    unscored for want of labels (``report["unlabelled_partitions"]``), recorded under
    ``submissions`` in the report and its ``report.json``. Returns the report."""
    import json

    from emotrack.apps.predict import AudioError, NoFaceError, VideoError
    from emotrack.config.run import load_run_config
    from emotrack.evaluation.report import REPORT
    from emotrack.records.manifest import read_manifest

    partitions = report.get("unlabelled_partitions") or []
    if not partitions:
        return report
    config = load_run_config(run_dir)
    manifest = read_manifest((report.get("data") or {}).get("dir") or config["data"]["dir"])

    report["submissions"] = {}
    for partition in partitions:
        try:
            report["submissions"][partition] = write_submission(run_dir, config, manifest, partition,
                                                                report["checkpoint"], log)
        except (SubmissionError, AudioError, NoFaceError, VideoError) as err:
            report["submissions"][partition] = {"partition": partition, "error": str(err)}
            log(f"submission {partition}: not written: {err}")
    with atomic_path(Path(run_dir) / REPORT) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report


def write_submission(run_dir: str | Path, config: dict[str, Any], manifest: dict[str, Any], partition: str,
                     checkpoint: str, log=print) -> dict[str, Any]:
    """Predict every unlabelled session of ``partition`` and write its rating files below
    ``run_dir/submission/<partition>/``. Returns ``{"partition", "sessions", "files", "kind"}``."""
    from emotrack.apps.predict import predict_video

    spec, targets = manifest["spec"], config["targets"]
    rate = spec["ratings"]["rate_hz"]
    listed = [u for u in manifest.get("unlabelled") or [] if u["partition"] == partition]
    # One person of a several-person video (`emotrack preprocess --faces all`) is no challenge item, and a
    # one-face prediction of the whole video would not be that person's: those are not written.
    people = [u["session"] for u in listed if u.get("track") is not None]
    if people:
        log(f"submission {partition}: {len(people)} unlabelled people of several-person videos not written "
            f"({', '.join(people[:5])}{', ...' if len(people) > 5 else ''}); predict them with "
            f"`emotrack predict RUN VIDEO --faces all`")
    sessions = [u for u in listed if u.get("track") is None]
    out_dir = Path(run_dir) / SUBMISSION_DIR / partition
    post = (Path(run_dir) / "postprocessing.json").is_file()
    files: list[str] = []
    for u in sessions:
        fields = session_fields(spec, manifest["root"], u["video"])
        prediction = predict_video(run_dir, u["video"], checkpoint=checkpoint, postprocess=True)
        table = prediction.table
        frame_times = table["time"].to_numpy(float)
        times = frame_times if rate == "video" else rating_grid(frame_times[-1], float(rate))
        values = {d: to_spec_scale(np.interp(times, frame_times, table[d].to_numpy(float)), manifest)
                  for d in targets}
        files += [str(p) for p in write_session(spec, out_dir, u["session"], fields, times, values)]
        log(f"submission {partition}/{u['session']}: {len(times)} rows")
    return {"partition": partition, "sessions": [u["session"] for u in sessions], "files": files,
            "kind": "post_processed" if post else "raw",
            "not_predicted": [d for d in manifest["dimensions"] if d not in targets]}
