"""Where clips lie in a session: the hop between clip starts, the frames a clip spans with frame
subsampling, and the grid of clip starts that covers a whole session."""

from __future__ import annotations

from typing import Any

import numpy as np


def clip_hop(data_cfg: dict[str, Any]) -> int:
    """Session frames between clip starts: ``data.hop``, or from ``data.overlap`` (Teixeira et al.
    2021: the share of a clip's frames that the next clip repeats) and ``data.frame_step``."""
    step = int(data_cfg.get("frame_step", 1))
    if data_cfg.get("overlap") is not None:
        overlap = float(data_cfg["overlap"])
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"data.overlap must be in [0, 1), not {overlap}")
        return max(1, round(data_cfg["window"] * (1.0 - overlap))) * step
    return int(data_cfg["hop"])


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
