"""Ratings carried to the frames' times, and the frames kept at a lower frame rate.

Preprocessing aligns a session's ratings to its frames with these, and prediction on a new video keeps
its frames as preprocessing kept them (`at_rate`), so that a run sees a video as it saw its data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

#: How ratings are carried to the frames' times: ``linear`` interpolation between rating steps, or
#: ``hold`` (the last step at or before the frame, as a rating holds until the next one).
RESAMPLE = ("linear", "hold")


def held_index(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the last of ``times`` (sorted) at or before each time of ``at`` (the first one before
    them): the step a held signal shows at those times."""
    return np.clip(np.searchsorted(times, np.asarray(at) + 1e-9, side="right") - 1, 0, len(times) - 1)


def align_ratings(rating_times: np.ndarray, ratings: np.ndarray, frame_times: np.ndarray,
                  method: str = "linear") -> np.ndarray:
    """Ratings at the frames' time stamps (see `RESAMPLE`), held constant before the first step and
    after the last. Returns float32 (T, D)."""
    if method == "hold":
        return np.asarray(ratings, np.float32)[held_index(rating_times, frame_times)]
    if method != "linear":
        raise ValueError(f"resample must be one of {', '.join(RESAMPLE)}, not {method!r}")
    return np.stack([np.interp(frame_times, rating_times, ratings[:, d]) for d in range(ratings.shape[1])],
                    axis=1).astype(np.float32)


def align_valid(rating_times: np.ndarray, valid: np.ndarray, frame_times: np.ndarray,
                method: str = "linear") -> np.ndarray:
    """Whether each frame's aligned rating comes from valid rating steps only: with ``linear``, a frame
    between two steps is valid when both are (interpolation of the 0/1 mask reaches 1); with ``hold``,
    when the step it holds is. Returns bool (T,)."""
    if method == "hold":
        return np.asarray(valid, bool)[held_index(rating_times, frame_times)]
    return np.interp(frame_times, rating_times, np.asarray(valid, np.float64)) > 1.0 - 1e-9


def at_rate(items: Iterable[tuple[float, Any]], rate: float | None) -> Iterator[tuple[float, Any]]:
    """The (time, frame) pairs a video keeps when subsampled to ``rate`` frames/s: the first frame of
    every 1/rate-second slot from time 0, so every n-th frame when the video runs at n times ``rate``
    (otherwise the kept frames are as close to the rate as the video's own frames allow; their true
    times are kept). ``rate`` None, or at or above the video's rate: every frame."""
    last = -1
    for t, frame in items:
        if rate is not None:
            slot = math.floor(t * rate + 1e-6)
            if slot <= last:
                continue
            last = slot
        yield t, frame


def on_grid(items: Iterable[tuple[float, Any]], rate: float) -> Iterator[tuple[float, Any]]:
    """A variable frame-rate video seen at a constant ``rate``: at every 1/rate s from time 0 to its last
    frame, (that time, the frame on screen then: the last one whose time has come), as a player shows
    it. Frames of a faster stretch that no grid time shows are left out; in a slower one a frame is
    shown at several grid times. On a video that keeps to ``rate`` every frame is kept."""
    k, held, last = 0, None, 0.0
    for t, frame in items:
        while held is not None and k / rate < t - 1e-6:
            yield k / rate, held
            k += 1
        held, last = frame, t
    while held is not None and k / rate <= last + 1e-6:
        yield k / rate, held
        k += 1
