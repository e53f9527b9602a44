"""Where clips lie in a session: the hop between clip starts, the frames a clip spans with frame
subsampling, and the grid of clip starts that covers a whole session."""

from __future__ import annotations

from typing import Any

import numpy as np


def clip_hop(window: int, hop: int | None, overlap: float | None, frame_step: int) -> int:
    """Session frames between clip starts: ``data.hop``, or from ``data.overlap`` (Teixeira et al.
    2021: the share of a clip's frames that the next clip repeats) and ``data.frame_step``."""
    if overlap is not None:
        overlap = float(overlap)
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"data.overlap must be in [0, 1), not {overlap}")
        return max(1, round(window * (1.0 - overlap))) * int(frame_step)
    if hop is None:
        raise ValueError("data.hop or data.overlap must be set: where the next clip starts")
    return int(hop)


def run_clip_hop(data_cfg: dict[str, Any]) -> int:
    """:func:`clip_hop` of a resolved config's ``data`` section."""
    return clip_hop(data_cfg["window"], data_cfg["hop"], data_cfg["overlap"], data_cfg["frame_step"])


def clip_starts(length: int, span: int, hop: int) -> np.ndarray:
    """Start frames of the clips that cover a session of ``length`` frames: every ``hop`` frames,
    plus one clip ending at the last frame so that no frame is left out (one clip at 0 when the
    session is shorter than a clip)."""
    if length <= span:
        return np.zeros(1, np.int64)
    starts = np.arange(0, length - span + 1, hop)
    if starts[-1] + span < length:
        starts = np.append(starts, length - span)
    return starts.astype(np.int64)


def clip_span(window: int, frame_step: int = 1) -> int:
    """Session frames covered by a clip of ``window`` frames taken every ``frame_step`` frames."""
    return (window - 1) * frame_step + 1


#: What a clip does with frames in which no face was found: ``mask`` (kept, left out of losses and
#: metrics by their weight 0) or ``drop`` (discarded before clips are cut; Teixeira et al. 2021).
FACELESS = ("mask", "drop")


def face_clip_rows(face_present, window: int, hop: int, frame_step: int = 1,
                   tolerance_frames: float | None = None) -> np.ndarray:
    """The session frames of each clip when frames without a face are discarded (Teixeira et al.
    2021, Sec. 3.2.1: "Only frames showing whole faces are kept, while other frames are discarded";
    Sec. 3.2.2: "we applied a tolerance (a temporal difference between close frames) to select
    clips that give sense to a unique emotion unit").

    The session is first taken every ``frame_step`` frames (the frame rate), the frames without a
    face are dropped, and clips of ``window`` consecutive kept frames start every ``hop //
    frame_step`` kept frames (``hop`` is in session frames, as for :func:`clip_hop`). A clip is kept
    only when no two consecutive frames of it lie more than ``tolerance_frames`` session frames apart
    (None: any gap).

    Returns:
        (clips, window) int64 session frame indices, in order.
    """
    face = np.asarray(face_present).reshape(-1)
    grid = np.arange(0, len(face), max(1, int(frame_step)))
    kept = grid[face[grid] > 0]
    if len(kept) < window:
        return np.zeros((0, window), np.int64)
    starts = np.arange(0, len(kept) - window + 1, max(1, int(hop) // max(1, int(frame_step))))
    rows = kept[starts[:, None] + np.arange(window)]
    if tolerance_frames is not None and window > 1:
        rows = rows[(np.diff(rows, axis=1) <= tolerance_frames).all(axis=1)]
    return rows.astype(np.int64)
