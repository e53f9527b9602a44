"""The post-processing steps, one class each, in a registry filled by their definitions.

A step is a subclass of `Step` decorated with `register_step`: it has a ``name`` (its key in
`STEPS` and in chains, `emotrack.evaluation.postprocess.CHAINS`), the ``reference`` it follows (paper,
section, equation), ``fit(pred, gold, context)`` on the devel partition (by default the candidate
setting of ``candidates`` with the highest devel CCC; a step with nothing to fit tries one empty
setting) and ``apply(pred)`` with the fitted ``params``. A fitted step is its class and its params:
``STEPS[name](params).apply(pred)``, as the chain does when it is loaded from JSON.

The steps work on one dimension at a time: ``pred`` and ``gold`` are lists of (T_i,) float64 arrays,
one per devel session; ``apply`` takes one (T,) array.

Tzirakis et al. 2017, Sec. V (shared/papers/tzirakis2017_end2end_multimodal_recola.txt): median filter
(window 0.4 s to 20 s), centring by the bias between gold standard and prediction, scaling by the
ratio of their standard deviations, time shift (0.04 s to 10 s). Assumed where the paper is silent:

- The median window grid is the chain's ``median_windows_s``; a window of w seconds is
  ``round(w * rate_hz)`` frames made odd (a centred window), filtered with
  ``scipy.ndimage.median_filter(mode="mirror")`` per session: the signal is reflected about its end
  frames, so a spike on the first or last frame is not copied into the padding.
- Bias and standard deviations are taken over all valid devel frames pooled; the standard deviations
  are population ones. Scaling is about the devel mean of the prediction, so it changes the spread
  and not the mean (centring is the step that moves the mean).
- The time-shift grid is every whole frame from ``round(low * rate_hz)`` (at least 1) to
  ``round(high * rate_hz)`` of the chain's ``shift_range_s``.

Teixeira et al. 2021, Sec. 3.4 (teixeira2021_cnnlstm_i3d_sewa.txt):

- Scale normalisation, Eq. 1: ``y_sn = (y' - mean(y_ltr)) / std(y_ltr)`` with the mean and the
  (population) standard deviation of the training labels.
- Mean filtering, Eq. 2: ``y_mf = y' - mean(y_ltr) + mean(y'_tr)``, the training labels' mean
  subtracted and the training predictions' mean added, as printed (the text says it "centres"
  predictions; AVEC-style centring, with the opposite signs, is the ``centring`` step). The training
  predictions first pass through the steps kept before it.
- Time delay, Eq. 3: ``y_td(f) = y'(f + t)``, t an integer in the chain's ``delay_range`` (frames,
  0 left out), chosen on devel.

Time shifts follow the project's one convention (`emotrack.data.align.shift_frames`):
``shift_prediction(x, k)[f] = x[f - k]`` (k > 0 moves the prediction later), padding with the first or
last value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from emotrack.data.align import shift_frames

#: name -> step class, filled by `register_step`.
STEPS: dict[str, type["Step"]] = {}


@dataclasses.dataclass
class FitContext:
    """What a step may use to fit one dimension besides devel predictions and gold standard.

    Attributes:
        rate_hz: the frame rate of the sequences.
        options: the chain's options (``median_windows_s``, ``shift_range_s``, ``delay_range``, ...).
        mask: one boolean (T_i,) array per devel session: the frames that count in the devel CCC.
        score: the devel CCC of a list of transformed devel sessions (with the chain's aggregation).
        train: the training partition of this dimension, ``{"gold", "mask", "pred"}`` lists (``pred``
            None when not given), already through the steps kept before; None when not given.
    """

    rate_hz: float
    options: dict[str, Any]
    mask: list[np.ndarray]
    score: Callable[[list[np.ndarray]], float]
    train: dict[str, Any] | None = None


class Step:
    """A post-processing step: subclass it, set ``name`` and ``reference``, define ``apply`` and either
    ``candidates`` (settings to choose from on devel) or ``fit``, and decorate it with `register_step`.

    Args:
        params: the fitted parameters (JSON types), None before fitting.
    """

    name: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    #: the step needs the training partition's labels (``train_golds``) / predictions (``train_preds``).
    needs_train_golds: ClassVar[bool] = False
    needs_train_preds: ClassVar[bool] = False

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = params

    def candidates(self, pred: list[np.ndarray], gold: list[np.ndarray], context: FitContext) -> Iterator[dict]:
        """The settings to choose from on devel; by default one empty setting (nothing to fit)."""
        yield {}

    def fit(self, pred: list[np.ndarray], gold: list[np.ndarray], context: FitContext) -> "Step":
        """Set ``params`` to the candidate with the highest devel CCC (the first of equals); None when
        there is no candidate (e.g. a zero standard deviation). Returns self."""
        best = None
        for params in self.candidates(pred, gold, context):
            trial = type(self)(params)
            score = context.score([trial.apply(x) for x in pred])
            if best is None or score > best[0]:
                best = (score, params)
        self.params = None if best is None else best[1]
        return self

    def apply(self, pred: np.ndarray) -> np.ndarray:
        """The step with its fitted ``params`` applied to one session's (T,) prediction."""
        raise NotImplementedError


def register_step(cls: type[Step]) -> type[Step]:
    """Class decorator: add a `Step` subclass to `STEPS` under its ``name``.

    Raises:
        ValueError: without a ``name`` or ``reference``, or when another class holds the name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise ValueError(f"{cls!r} is not a subclass of emotrack.evaluation.postprocess_steps.Step")
    if not cls.name or not cls.reference:
        raise ValueError(f"step class {cls.__name__} needs a `name` and a `reference` (the paper, section, equation)")
    if STEPS.get(cls.name, cls) is not cls:
        raise ValueError(f"a post-processing step named {cls.name!r} exists already ({STEPS[cls.name].__name__}); "
                         "choose another name")
    STEPS[cls.name] = cls
    return cls


def pooled(values: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    """The valid frames of all sessions, concatenated."""
    return np.concatenate([v[m] for v, m in zip(values, masks)]) if values else np.zeros(0)


# --------------------------------------------------------------------------------------------------
# The steps' operations as plain functions
# --------------------------------------------------------------------------------------------------


def median_filter(x: np.ndarray, window_frames: int) -> np.ndarray:
    """Median filter along time (axis 0) of a (T,) or (T, D) array, the signal mirrored at its ends."""
    from scipy import ndimage  # imported on use: the chain's names are read by the CLI at start-up

    x = np.asarray(x, dtype=np.float64)
    size = (int(window_frames),) + (1,) * (x.ndim - 1)
    return ndimage.median_filter(x, size=size, mode="mirror")


def shift_prediction(x: np.ndarray, frames: int) -> np.ndarray:
    """``out[f] = x[f - frames]`` along axis 0 in float64: positive ``frames`` moves the signal later.

    The frames that have no source repeat the first (or, for negative shifts, the last) value."""
    return shift_frames(np.asarray(x, dtype=np.float64), int(frames))


def scale_normalisation(pred: np.ndarray, label_mean, label_std) -> np.ndarray:
    """Teixeira et al. 2021, Eq. 1: ``(y' - mean(y_ltr)) / std(y_ltr)``, training-label statistics."""
    return (np.asarray(pred, dtype=np.float64) - label_mean) / label_std


def mean_filtering(pred: np.ndarray, label_mean, prediction_mean) -> np.ndarray:
    """Teixeira et al. 2021, Eq. 2: ``y' - mean(y_ltr) + mean(y'_tr)``, training-set statistics."""
    return np.asarray(pred, dtype=np.float64) - label_mean + prediction_mean


def time_delay(pred: np.ndarray, t: int) -> np.ndarray:
    """Teixeira et al. 2021, Eq. 3: ``y_td(f) = y'(f + t)``."""
    return shift_prediction(pred, -int(t))


# --------------------------------------------------------------------------------------------------
# Tzirakis et al. 2017, Sec. V
# --------------------------------------------------------------------------------------------------


@register_step
class MedianFilter(Step):
    name = "median_filter"
    reference = "Tzirakis et al. 2017, Sec. V (i): median filtering, window 0.4 s to 20 s"

    def candidates(self, pred, gold, context):
        rate = context.rate_hz
        for k in sorted({max(1, int(round(w * rate))) | 1 for w in context.options["median_windows_s"]}):
            yield {"window_frames": k, "window_s": k / rate}

    def apply(self, pred):
        return median_filter(pred, self.params["window_frames"])


@register_step
class Centring(Step):
    name = "centring"
    reference = "Tzirakis et al. 2017, Sec. V (ii): centring by the bias between gold standard and prediction"

    def candidates(self, pred, gold, context):
        yield {"bias": float(np.mean(pooled(gold, context.mask)) - np.mean(pooled(pred, context.mask)))}

    def apply(self, pred):
        return pred + self.params["bias"]


@register_step
class Scaling(Step):
    name = "scaling"
    reference = "Tzirakis et al. 2017, Sec. V (iii): scaling by the ratio of the standard deviations"

    def candidates(self, pred, gold, context):
        pred_valid = pooled(pred, context.mask)
        pred_std = float(np.std(pred_valid))
        if pred_std > 0:
            yield {"factor": float(np.std(pooled(gold, context.mask)) / pred_std), "centre": float(np.mean(pred_valid))}

    def apply(self, pred):
        return (pred - self.params["centre"]) * self.params["factor"] + self.params["centre"]


@register_step
class TimeShift(Step):
    name = "time_shift"
    reference = "Tzirakis et al. 2017, Sec. V (iv): time shift, the prediction moved forward by 0.04 s to 10 s"

    def candidates(self, pred, gold, context):
        rate = context.rate_hz
        low, high = context.options["shift_range_s"]
        for k in range(max(1, int(round(low * rate))), int(round(high * rate)) + 1):
            yield {"shift_frames": k, "shift_s": k / rate}

    def apply(self, pred):
        return shift_prediction(pred, self.params["shift_frames"])


# --------------------------------------------------------------------------------------------------
# Teixeira et al. 2021, Sec. 3.4
# --------------------------------------------------------------------------------------------------


@register_step
class ScaleNormalisation(Step):
    name = "scale_normalisation"
    reference = "Teixeira et al. 2021, Sec. 3.4, Eq. 1: scale normalisation by the training labels' statistics"
    needs_train_golds = True

    def candidates(self, pred, gold, context):
        labels = pooled(context.train["gold"], context.train["mask"])
        label_std = float(np.std(labels))
        if label_std > 0:
            yield {"label_mean": float(np.mean(labels)), "label_std": label_std}

    def apply(self, pred):
        return scale_normalisation(pred, self.params["label_mean"], self.params["label_std"])


@register_step
class MeanFiltering(Step):
    name = "mean_filtering"
    reference = "Teixeira et al. 2021, Sec. 3.4, Eq. 2: mean filtering by the training labels' and predictions' means"
    needs_train_golds = True
    needs_train_preds = True

    def candidates(self, pred, gold, context):
        train = context.train
        yield {"label_mean": float(np.mean(pooled(train["gold"], train["mask"]))),
               "prediction_mean": float(np.mean(pooled(train["pred"], train["mask"])))}

    def apply(self, pred):
        return mean_filtering(pred, self.params["label_mean"], self.params["prediction_mean"])


@register_step
class TimeDelay(Step):
    name = "time_delay"
    reference = "Teixeira et al. 2021, Sec. 3.4, Eq. 3: time delay y'(f + t), t in frames chosen on devel"

    def candidates(self, pred, gold, context):
        low, high = context.options["delay_range"]
        for t in range(low, high + 1):
            if t != 0:
                yield {"t": t}

    def apply(self, pred):
        return time_delay(pred, self.params["t"])
