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
