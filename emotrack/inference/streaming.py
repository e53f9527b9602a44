"""Prediction over crops that arrive one frame at a time (a video being decoded, a live source), in
bounded memory, with the numbers of `emotrack.inference.session.predict_frames` on the whole sequence."""

from __future__ import annotations

from typing import Any

import numpy as np

from emotrack.config.schema import with_defaults
from emotrack.data.clips import run_clip_hop
from emotrack.inference.session import predict_frames

#: Frames per block of prediction (rounded up to the model's unit, see `BlockPredictor`): 3,000 crops
#: of 112x112 gray are 38 MB.
DEFAULT_BLOCK_FRAMES = 3000


class BlockPredictor:
    """`emotrack.inference.session.predict_frames` over crops that arrive one frame at a time, holding at most
    about ``block_frames`` (plus two clip spans for clip-level models) of them.

    The predictions equal those of ``predict_frames`` on the whole sequence (see the module docstring
    for why). Models that take audio are not handled here.

    Args:
        model: the run's model.
        config: the run's config.
        fps: the video's frame rate (for the temporal pooling factor).
        block_frames: crops per block; rounded up to a whole number of the model's units: for frame-level
            and Siamese models ``evaluate.chunk // k`` input steps (a multiple of the network's own time
            reduction) x k pooled frames x ``data.frame_step``; for clip-level models the clip hop.

    Use: `push` every crop (uint8 (H, W, C)), then `finish` for the (T, outputs) float32 predictions;
    or, live, `take` after each push for the predictions made since the last `take`, and `finish` for
    the rest. ``held_max`` is the most crops held at any time.
    """

    def __init__(self, model, config: dict[str, Any], fps: float, block_frames: int = DEFAULT_BLOCK_FRAMES):
        from emotrack.config.run import input_contract
        from emotrack.models import model_info

        config = with_defaults(config)
        info = model_info(config["model"]["name"])
        if "audio" in info.inputs:
            raise ValueError(f"{config['model']['name']} takes audio; predict it on the whole sequence")
        data_cfg = config["data"]
        step = int(data_cfg["frame_step"])
        if info.target == "clip":
            span = (int(data_cfg["window"]) - 1) * step + 1
            unit = int(config["evaluate"]["hop"] or run_clip_hop(data_cfg))
            self.context = -(-span // unit) * unit  # frames on each side of a block, a multiple of the hop
            self.lookahead = self.context
        else:
            k, factor = input_contract(config, fps)
            steps = max(1, int(config["evaluate"]["chunk"]) // k)
            steps = max(factor, steps - steps % factor)  # as emotrack.inference.session.predict_session rounds it
            unit = steps * k * step
            self.context = 0
            # A last block of fewer than `step` frames would leave a subsampled sequence empty.
            self.lookahead = step
        self.unit = unit
        self.block = max(1, -(-int(block_frames) // unit)) * unit
        self.model, self.config, self.fps = model, config, float(fps)
        self.held_max = 0
        self._crops: list[np.ndarray] = []
        self._base = 0  # frame index of self._crops[0]
        self._done = 0  # frames predicted
        self._out: list[np.ndarray] = []
        self._taken = 0  # blocks of self._out handed out by `take`

    @property
    def frames(self) -> int:
        """Crops pushed so far."""
        return self._base + len(self._crops)

    def push(self, crop: np.ndarray) -> None:
        self._crops.append(crop)
        self.held_max = max(self.held_max, len(self._crops))
        if self.frames >= self._done + self.block + self.lookahead:
            self._predict(self._done + self.block, final=False)

    def warm_up(self, crop: np.ndarray) -> None:
        """Run the model once on a block of ``crop`` (tracing it), leaving what was pushed as it was."""
        predict_frames(self.model, {"frames": np.stack([crop] * (self.block + self.lookahead)), "fps": self.fps},
                       self.config)

    def take(self) -> np.ndarray:
        """The predictions made since the last call (float32 (n, outputs), n may be 0), in frame order."""
        new, self._taken = self._out[self._taken:], len(self._out)
        return np.concatenate(new).astype(np.float32) if new else np.zeros((0, 0), np.float32)

    def finish(self) -> np.ndarray:
        """Predict what is left; returns float32 (T, outputs) for all T crops pushed."""
        if self.frames == 0:
            raise ValueError("no frame to predict")
        if self.frames > self._done:
            self._predict(self.frames, final=True)
        return np.concatenate(self._out).astype(np.float32)

    def _predict(self, end: int, final: bool) -> None:
        start = self._done
        lo = max(0, start - self.context)
        hi = self.frames if final else min(self.frames, end + self.context)
        crops = np.stack(self._crops[lo - self._base:hi - self._base])
        pred = predict_frames(self.model, {"frames": crops, "fps": self.fps}, self.config)
        self._out.append(np.asarray(pred[start - lo:end - lo], np.float32))
        self._done = end
        keep = max(self._base, end - self.context)
        del self._crops[:keep - self._base]
        self._base = keep
