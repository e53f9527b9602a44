"""What a preprocessed corpus holds: the manifest in numbers, and a contact sheet of its face crops.

:func:`summarize` reads ``manifest.json`` only: sessions and frames per partition, frame rates, the
fraction of frames with a face and with a rating, audio, failures. :func:`contact_sheet` reads the
records and draws, for every session, ``K`` crops evenly spaced over the session (first and last frame
included), one row per session, so that a user sees what the models will see: a crop of a frame without a
face (``face_present`` 0, masked in training) has a red border and a red cross.

The sheet is drawn pixel for pixel: every crop at an integer scale (``crop_scale``; 112-pixel crops at
1:1), ``BORDER`` pixels of frame around it, a column of ``LABEL_WIDTH`` pixels for the session names and
a title row of ``TITLE_HEIGHT`` pixels, so its size is
``(LABEL_WIDTH + K * (s * w + 2 * BORDER)) x (TITLE_HEIGHT + sessions * (s * h + 2 * BORDER))``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BORDER", "LABEL_WIDTH", "TITLE_HEIGHT", "contact_sheet", "crop_scale", "evenly_spaced",
           "format_summary", "sheet_size", "summarize"]

LABEL_WIDTH = 200
TITLE_HEIGHT = 28
BORDER = 3
#: Crops smaller than this many pixels are enlarged by a whole factor to reach about it.
MIN_CELL = 96
#: Agg draws images up to 2^16 pixels on a side.
MAX_SIDE = 65000

_FACE_EDGE = (90, 90, 90)
_NO_FACE = (220, 30, 30)
_BACKGROUND = (255, 255, 255)


def summarize(data_dir: str | Path) -> dict[str, Any]:
    """The manifest of a preprocessed corpus in numbers.

    Returns:
        dict: ``sessions`` (count), ``frames``, ``duration_s``, ``fps`` (sorted distinct rates),
        ``face_fraction`` and ``rating_valid_fraction`` (over all frames), ``partitions`` (per name:
        ``sessions``, ``frames``, ``duration_s``, ``face_fraction``, ``rating_valid_fraction``),
        ``audio`` (``sessions_with_audio``, ``sample_rate``, ``samples_per_frame``), ``failed`` and
        ``unlabelled`` (lists from the manifest), and ``per_session`` (one dict per session).
    """
    from emotrack.records.tfrecord import read_checked_manifest

    manifest = read_checked_manifest(data_dir, needs=("sessions",))
    entries = manifest["sessions"]

    def totals(group: list[dict[str, Any]]) -> dict[str, Any]:
        frames = sum(e["num_frames"] for e in group)
        weighted = (lambda key: sum(e[key] * e["num_frames"] for e in group) / frames if frames else 0.0)
        return {"sessions": len(group), "frames": frames,
                "duration_s": round(sum(e["duration_s"] for e in group), 3),
                "face_fraction": weighted("face_fraction"),
                "rating_valid_fraction": weighted("rating_valid_fraction")}

    names = list(manifest.get("partitions") or {}) or sorted({e["partition"] for e in entries})
    audio = manifest.get("audio") or {}
    return {
        **totals(entries),
        "fps": sorted({float(e["fps"]) for e in entries}),
        "partitions": {name: totals([e for e in entries if e["partition"] == name]) for name in names},
        "audio": {"sessions_with_audio": sum(1 for e in entries if e.get("audio")),
                  "sample_rate": audio.get("sample_rate"), "samples_per_frame": audio.get("samples_per_frame")},
        "failed": list(manifest.get("failed") or []),
        "unlabelled": list(manifest.get("unlabelled") or []),
        "per_session": [{"session": e["session"], "partition": e["partition"], "frames": e["num_frames"],
                         "fps": e["fps"], "face_fraction": e["face_fraction"],
                         "rating_valid_fraction": e["rating_valid_fraction"], "audio": bool(e.get("audio"))}
                        for e in entries],
    }


def _rate(fps: float) -> str:
    """A frame rate to two decimals, without trailing zeros (25, 29.97, 26.4)."""
    return f"{fps:.2f}".rstrip("0").rstrip(".")


def _audio_line(summary: dict[str, Any]) -> str:
    a = summary["audio"]
    if not a["sessions_with_audio"]:
        return "no audio"
    line = f"{a['sessions_with_audio']} of {summary['sessions']} sessions"
    if a["sample_rate"]:
        line += f", {a['sample_rate']:g} Hz, " + (
            f"{a['samples_per_frame']} samples per frame" if a["samples_per_frame"]
            else "samples per frame vary with the sessions' frame rates")
    return line


def format_summary(summary: dict[str, Any]) -> str:
    """:func:`summarize` as the text ``emotrack inspect`` prints."""
    fps = ", ".join(_rate(v) for v in summary["fps"]) or "-"
    audio = _audio_line(summary)
    lines = [f"{summary['sessions']} sessions, {summary['frames']} frames ({summary['duration_s']:.1f} s), "
             f"fps {fps}, face {summary['face_fraction']:.1%}, rating valid {summary['rating_valid_fraction']:.1%}",
             f"audio: {audio}", "",
             f"{'partition':<12}{'sessions':>9}{'frames':>9}{'seconds':>10}{'face':>8}{'rated':>8}"]
    for name, p in summary["partitions"].items():
        lines.append(f"{name:<12}{p['sessions']:>9}{p['frames']:>9}{p['duration_s']:>10.1f}"
                     f"{p['face_fraction']:>8.1%}{p['rating_valid_fraction']:>8.1%}")
    lines += ["", f"{'session':<20} {'partition':<10}{'frames':>9}{'fps':>8}{'face':>8}{'rated':>8}  audio"]
    for s in summary["per_session"]:
        lines.append(f"{s['session']:<20} {s['partition']:<10}{s['frames']:>9}{_rate(s['fps']):>8}"
                     f"{s['face_fraction']:>8.1%}{s['rating_valid_fraction']:>8.1%}  {'yes' if s['audio'] else 'no'}")
    if summary["unlabelled"]:
        lines += ["", f"{len(summary['unlabelled'])} sessions without ratings (not written)"]
    lines += ["", f"failed: {len(summary['failed'])}"]
    lines += [f"  {f['session']}: {f['error']}" for f in summary["failed"]]
    return "\n".join(lines)


def crop_scale(height: int, width: int) -> int:
    """The whole factor by which the sheet enlarges crops of this size (1 from ``MIN_CELL`` pixels up)."""
    return max(1, MIN_CELL // max(height, width))


def sheet_size(sessions: int, per_session: int, height: int, width: int) -> tuple[int, int]:
    """(width, height) in pixels of the contact sheet of ``sessions`` rows of ``per_session`` crops."""
    s = crop_scale(height, width)
    return (LABEL_WIDTH + per_session * (s * width + 2 * BORDER),
            TITLE_HEIGHT + sessions * (s * height + 2 * BORDER))


def evenly_spaced(num_frames: int, k: int) -> np.ndarray:
    """``min(k, num_frames)`` frame indices spread evenly from the first frame to the last."""
    return np.unique(np.linspace(0, num_frames - 1, min(k, num_frames)).round().astype(np.int64))


def _read_crops(path: Path, k: int) -> tuple[list[np.ndarray], list[int], list[float]]:
    """``k`` evenly spaced crops of one record (uint8 (h, w, 3)), their face_present flags and times.
    Only the chosen frames are decoded."""
    import tensorflow as tf
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"record {path} listed in the manifest does not exist; rerun emotrack preprocess")
    try:
        raw = next(iter(tf.data.TFRecordDataset(str(path)))).numpy()
    except (tf.errors.OpError, StopIteration) as err:
        raise ValueError(f"record {path} cannot be read ({err}); rerun emotrack preprocess") from err
    example = tf.train.SequenceExample.FromString(raw)
    lists = example.feature_lists.feature_list
    frames = lists["frames"].feature
    chosen = evenly_spaced(len(frames), k)
    crops = []
    for i in chosen:
        with Image.open(io.BytesIO(frames[int(i)].bytes_list.value[0])) as image:
            crops.append(np.asarray(image.convert("RGB"), np.uint8))
    present = [int(lists["face_present"].feature[int(i)].int64_list.value[0]) for i in chosen]
    times = [float(lists["time"].feature[int(i)].float_list.value[0]) for i in chosen]
    return crops, present, times


def _cell(crop: np.ndarray, present: int, scale: int) -> np.ndarray:
    big = np.repeat(np.repeat(crop, scale, axis=0), scale, axis=1)
    edge = _FACE_EDGE if present else _NO_FACE
    cell = np.empty((big.shape[0] + 2 * BORDER, big.shape[1] + 2 * BORDER, 3), np.uint8)
    cell[:] = edge
    cell[BORDER:-BORDER, BORDER:-BORDER] = big
    if not present:
        h, w = big.shape[:2]
        for t in range(-1, 2):  # a cross three pixels thick over the crop
            rows = np.arange(h)
            for cols in ((rows * (w - 1)) // max(h - 1, 1), (w - 1) - (rows * (w - 1)) // max(h - 1, 1)):
                cols = np.clip(cols + t, 0, w - 1)
                cell[BORDER + rows, BORDER + cols] = _NO_FACE
    return cell


def contact_sheet(data_dir: str | Path, out_path: str | Path, per_session: int = 8,
                  max_sessions: int | None = None) -> Path:
    """Write a PNG with ``per_session`` face crops of every session, one row per session.

    Args:
        max_sessions: only the first sessions of the manifest (all by default).
    Returns:
        the PNG's path; its size is :func:`sheet_size`.
    Raises:
        FileNotFoundError / ValueError: a missing or unreadable record, named; a sheet too large to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from emotrack.records.manifest import read_manifest

    if per_session < 1:
        raise ValueError(f"per_session must be at least 1, not {per_session}")
    data_dir, out_path = Path(data_dir), Path(out_path)
    manifest = read_manifest(data_dir)
    entries = manifest["sessions"][:max_sessions]
    if not entries:
        raise ValueError(f"{data_dir} holds no session to show")
    h, w = manifest["frame"]["height"], manifest["frame"]["width"]
    scale = crop_scale(h, w)
    width, height = sheet_size(len(entries), per_session, h, w)
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"a sheet of {len(entries)} sessions x {per_session} crops would be {width}x{height} "
                         f"pixels; show fewer (max_sessions / --max-sessions, --per-session)")
    cell_w, cell_h = scale * w + 2 * BORDER, scale * h + 2 * BORDER
    mosaic = np.empty((height, width, 3), np.uint8)
    mosaic[:] = _BACKGROUND
    labels = []
    for row, entry in enumerate(entries):
        crops, present, times = _read_crops(data_dir / entry["file"], per_session)
        top = TITLE_HEIGHT + row * cell_h
        for col, (crop, flag) in enumerate(zip(crops, present)):
            left = LABEL_WIDTH + col * cell_w
            mosaic[top:top + cell_h, left:left + cell_w] = _cell(crop, flag, scale)
        labels.append((top, entry, times, present))

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.figimage(mosaic, 0, 0, origin="upper")
    sessions = f"{len(entries)} session" + ("s" if len(entries) != 1 else "")
    fig.text(6 / width, 1 - 6 / height, f"{data_dir.name}: {sessions}, {per_session} crops each, "
             f"evenly spaced; red cross: no face", va="top", ha="left", fontsize=10)
    for top, entry, times, present in labels:
        y = 1 - (top + BORDER + 2) / height
        fig.text(6 / width, y, f"{entry['session']}\n{entry['partition']}, {entry['num_frames']} frames\n"
                 f"face {entry['face_fraction']:.0%}, rated {entry['rating_valid_fraction']:.0%}"
                 f"{', audio' if entry.get('audio') else ''}", va="top", ha="left", fontsize=8, linespacing=1.3)
        for col, t in enumerate(times):
            x = (LABEL_WIDTH + col * cell_w + BORDER + 2) / width
            fig.text(x, 1 - (top + cell_h - BORDER - 2) / height, f"{t:.1f} s", va="bottom", ha="left",
                     fontsize=7, color="white", bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi)
    return out_path

