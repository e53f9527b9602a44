"""Post-processing of predicted rating sequences, fitted on the development partition only (numpy, SciPy).

A ``PostProcessingChain`` is fitted with ``fit(dev_golds, dev_preds, rate_hz)``, written as JSON into a
run folder with the devel CCC before and after every step, and applied unchanged to the test partition
and at prediction time. Every dimension (arousal, valence, ...) is fitted on its own. Test data never
enters ``fit``.

Variant ``"tzirakis2017"`` (Tzirakis et al. 2017, Sec. V; shared/papers/
tzirakis2017_end2end_multimodal_recola.txt): (i) median filter, window 0.4 s to 20 s; (ii) centring by
the bias between gold standard and prediction; (iii) scaling by the ratio of their standard
deviations; (iv) time shift, the prediction moved forward in time by 0.04 s to 10 s. A step is kept
only when it raises the devel CCC, and later steps are fitted on the output of the kept ones.
Assumed where the paper is silent:

- The median window grid is ``DEFAULT_MEDIAN_WINDOWS_S`` (17 values from 0.4 s to 20 s); a window of
  w seconds is ``round(w * rate_hz)`` frames made odd (a centred window), filtered with
  ``scipy.ndimage.median_filter(mode="mirror")`` per session: the signal is reflected about its end
  frames, so a spike on the first or last frame is not copied into the padding.
- Bias and standard deviations are taken over all valid devel frames pooled; the standard
  deviations are population ones. Scaling is about the devel mean of the prediction, so it changes
  the spread and not the mean (centring is the step that moves the mean).
- The time-shift grid is every whole frame from ``round(0.04 * rate_hz)`` (at least 1) to
  ``round(10 * rate_hz)``.

Variant ``"teixeira2021"`` (Teixeira et al. 2021, Sec. 3.4; teixeira2021_cnnlstm_i3d_sewa.txt):

- Scale normalisation, Eq. 1: ``y_sn = (y' - mean(y_ltr)) / std(y_ltr)`` with the mean and the
  (population) standard deviation of the training labels.
- Mean filtering, Eq. 2: ``y_mf = y' - mean(y_ltr) + mean(y'_tr)``, the training labels' mean
  subtracted and the training predictions' mean added, as printed (the text says it "centres"
  predictions; AVEC-style centring, with the opposite signs, is the Tzirakis chain's ``centring``).
  The training predictions first pass through the steps kept before it.
- Time delay, Eq. 3: ``y_td(f) = y'(f + t)``, t an integer in [-10, 10] frames, chosen on devel.
- The paper does not say how steps are selected; as in the Tzirakis chain a step is kept only when
  it raises the devel CCC (``keep_only_if_better``). Eq. 1 needs the training labels
  (``train_golds``) and Eq. 2 also the training predictions (``train_preds``): training-set
  statistics, never test data.

Time shifts everywhere follow one convention, ``shift_prediction(x, k)[f] = x[f - k]`` (k > 0 moves
the prediction later), padding with the first or last value. Masks select the frames that count in
the devel CCC (at the evaluation frame index); filtering and shifting run over all frames.

``delay_search`` is the AVEC baselines' delay compensation: ratings are shifted earlier by d frames
for training (``shift_ratings_for_training``), the model's predictions shifted back by d for
evaluation (``shift_predictions_back``), and d is chosen on the devel CCC.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from emotrack.evaluation import metrics

FORMAT = "emotrack.postprocessing/1"
FILENAME = "postprocessing.json"
VARIANTS = {
    "tzirakis2017": ("median_filter", "centring", "scaling", "time_shift"),
    "teixeira2021": ("scale_normalisation", "mean_filtering", "time_delay"),
}
ALL_STEPS = tuple(step for steps in VARIANTS.values() for step in steps)
DEFAULT_MEDIAN_WINDOWS_S = (0.4, 0.6, 0.8, 1.0, 1.2, 1.6, 2.0, 2.4, 3.2, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0)
DEFAULT_SHIFT_RANGE_S = (0.04, 10.0)
DEFAULT_DELAY_RANGE = (-10, 10)


# --------------------------------------------------------------------------------------------------
# The steps as plain functions
# --------------------------------------------------------------------------------------------------


def median_filter(x: np.ndarray, window_frames: int) -> np.ndarray:
    """Median filter along time (axis 0) of a (T,) or (T, D) array, the signal mirrored at its ends."""
    x = np.asarray(x, dtype=np.float64)
    size = (int(window_frames),) + (1,) * (x.ndim - 1)
    return ndimage.median_filter(x, size=size, mode="mirror")


def shift_prediction(x: np.ndarray, frames: int) -> np.ndarray:
    """``out[f] = x[f - frames]`` along axis 0: positive ``frames`` moves the signal later in time.

    The frames that have no source repeat the first (or, for negative shifts, the last) value."""
    x = np.asarray(x, dtype=np.float64)
    frames = int(frames)
    length = x.shape[0]
    if frames == 0 or length == 0:
        return x.copy()
    k = min(abs(frames), length)
    if frames > 0:
        return np.concatenate([np.repeat(x[:1], k, axis=0), x[: length - k]], axis=0)
    return np.concatenate([x[k:], np.repeat(x[-1:], k, axis=0)], axis=0)


def shift_ratings_for_training(ratings: np.ndarray, delay_frames: int) -> np.ndarray:
    """Ratings moved ``delay_frames`` earlier (``out[f] = ratings[f + d]``), so the input at frame f
    is trained to predict the rating given d frames later, when the annotator reacted."""
    return shift_prediction(ratings, -int(delay_frames))


def shift_predictions_back(preds: np.ndarray, delay_frames: int) -> np.ndarray:
    """Predictions of a model trained on ``shift_ratings_for_training(ratings, d)`` moved back onto
    the rating time line (``out[f] = preds[f - d]``)."""
    return shift_prediction(preds, int(delay_frames))


def scale_normalisation(pred: np.ndarray, label_mean, label_std) -> np.ndarray:
    """Teixeira et al. 2021, Eq. 1: ``(y' - mean(y_ltr)) / std(y_ltr)``, training-label statistics."""
    return (np.asarray(pred, dtype=np.float64) - label_mean) / label_std


def mean_filtering(pred: np.ndarray, label_mean, prediction_mean) -> np.ndarray:
    """Teixeira et al. 2021, Eq. 2: ``y' - mean(y_ltr) + mean(y'_tr)``, training-set statistics."""
    return np.asarray(pred, dtype=np.float64) - label_mean + prediction_mean


def time_delay(pred: np.ndarray, t: int) -> np.ndarray:
    """Teixeira et al. 2021, Eq. 3: ``y_td(f) = y'(f + t)``."""
    return shift_prediction(pred, -int(t))


def _apply_step(name: str, params: dict, x: np.ndarray) -> np.ndarray:
    if name == "median_filter":
        return median_filter(x, params["window_frames"])
    if name == "centring":
        return x + params["bias"]
    if name == "scaling":
        return (x - params["centre"]) * params["factor"] + params["centre"]
    if name == "time_shift":
        return shift_prediction(x, params["shift_frames"])
    if name == "scale_normalisation":
        return scale_normalisation(x, params["label_mean"], params["label_std"])
    if name == "mean_filtering":
        return mean_filtering(x, params["label_mean"], params["prediction_mean"])
    if name == "time_delay":
        return time_delay(x, params["t"])
    raise ValueError(f"unknown post-processing step {name!r}; known steps: {', '.join(ALL_STEPS)}")


# --------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------


def _pooled(values: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([v[m] for v, m in zip(values, masks)]) if values else np.zeros(0)


def _quiet(fn, *args):
    """Candidate settings in a grid search may be degenerate (e.g. a flat filtered signal); their CCC
    is defined (0.0) and the warning would only repeat for every candidate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.DegenerateInputWarning)
        return fn(*args)


class PostProcessingChain:
    """A post-processing chain fitted on devel and applied to test and at prediction time.

    Args:
        variant: ``"tzirakis2017"`` or ``"teixeira2021"`` (the step order of ``VARIANTS``).
        steps: a subset of the variant's steps to fit, in the variant's order (default: all).
        median_windows_s: candidate median-filter windows in seconds.
        shift_range_s: (min, max) time shift in seconds, searched on every whole frame.
        delay_range: (min, max) of Teixeira's t in frames.
        aggregation, unbiased: how the devel CCC is computed (see ``emotrack.evaluation.metrics``).
        keep_only_if_better: keep a step only when it raises the devel CCC.

    Fitted state: ``rate_hz``, ``dimensions``, and per step and dimension whether it is kept, its
    parameters and the devel CCC before and after it. ``to_dict()`` holds all of it.
    """

    def __init__(self, variant: str = "tzirakis2017", steps: Sequence[str] | None = None,
                 median_windows_s: Sequence[float] = DEFAULT_MEDIAN_WINDOWS_S,
                 shift_range_s: tuple[float, float] = DEFAULT_SHIFT_RANGE_S,
                 delay_range: tuple[int, int] = DEFAULT_DELAY_RANGE, aggregation: str = "concat",
                 unbiased: bool = False, keep_only_if_better: bool = True):
        if variant not in VARIANTS:
            raise ValueError(f"unknown post-processing variant {variant!r}; known: {', '.join(VARIANTS)}")
        if steps is None:
            steps = VARIANTS[variant]
        unknown = [s for s in steps if s not in VARIANTS[variant]]
        if unknown:
            raise ValueError(f"steps {unknown} are not part of {variant!r}: {', '.join(VARIANTS[variant])}")
        if aggregation not in metrics.AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {metrics.AGGREGATIONS}, got {aggregation!r}")
        self.variant = variant
        self.steps = [s for s in VARIANTS[variant] if s in steps]
        self.options = {
            "median_windows_s": [float(w) for w in median_windows_s],
            "shift_range_s": [float(v) for v in shift_range_s],
            "delay_range": [int(v) for v in delay_range],
            "aggregation": aggregation,
            "unbiased": bool(unbiased),
            "keep_only_if_better": bool(keep_only_if_better),
        }
        self.rate_hz: float | None = None
        self.dimensions: list[str] | None = None
        self.fitted_steps: list[dict] = []
        self.devel_ccc: dict = {}

    # -- fitting ------------------------------------------------------------------------------------

    def fit(self, dev_golds, dev_preds, rate_hz: float, masks=None, dimensions: Sequence[str] | None = None,
            train_golds=None, train_preds=None, train_masks=None) -> "PostProcessingChain":
        """Fit every step on the development partition.

        Args:
            dev_golds, dev_preds: one (T_i, D) array per devel session.
            rate_hz: frame rate of the sequences (the rating rate).
            masks: one (T_i,) or (T_i, D) array per devel session (0 leaves a frame out), or None.
            dimensions: names of the D columns (default arousal, valence when D is 2).
            train_golds, train_preds, train_masks: the training partition, needed for the statistics
                of ``"teixeira2021"``'s scale normalisation and mean filtering.
        Returns:
            self.
        """
        golds, preds, masks = metrics.check_sessions(dev_golds, dev_preds, masks)
        if not golds:
            raise ValueError("post-processing needs at least one devel session")
        num_dimensions = golds[0].shape[1]
        if dimensions is None:
            dimensions = ("arousal", "valence") if num_dimensions == 2 else [f"dimension_{d}" for d in range(num_dimensions)]
        if len(dimensions) != num_dimensions:
            raise ValueError(f"{len(dimensions)} dimension names for {num_dimensions} dimensions")
        if rate_hz is None or not rate_hz > 0:
            raise ValueError(f"rate_hz must be a positive frame rate, got {rate_hz!r}")
        needs_train = {"scale_normalisation", "mean_filtering"} & set(self.steps)
        if needs_train and (train_golds is None or (train_preds is None and "mean_filtering" in needs_train)):
            raise ValueError(f"steps {sorted(needs_train)} need the training partition: pass train_golds and "
                             "train_preds (their statistics are used, never test data)")
        has_train_preds = train_preds is not None
        if train_golds is not None:
            train_golds, train_preds, train_masks = metrics.check_sessions(
                train_golds, train_preds if has_train_preds else train_golds, train_masks, num_dimensions)

        self.rate_hz = float(rate_hz)
        self.dimensions = list(dimensions)
        self.fitted_steps = [{"name": name, "dimensions": {}} for name in self.steps]
        raw, processed = {}, {}
        for d, dim_name in enumerate(self.dimensions):
            gold = [g[:, d] for g in golds]
            current = [p[:, d] for p in preds]
            mask = [m[:, d] for m in masks]
            train = None
            if train_golds is not None:
                train = {
                    "gold": [g[:, d] for g in train_golds],
                    "mask": [m[:, d] for m in train_masks],
                    "pred": [p[:, d] for p in train_preds] if has_train_preds else None,
                }
            raw[dim_name] = self._devel_ccc(gold, current, mask)
            for record in self.fitted_steps:
                entry, current, train = self._fit_step(record["name"], gold, current, mask, train)
                record["dimensions"][dim_name] = entry
            processed[dim_name] = self._devel_ccc(gold, current, mask)
        self.devel_ccc = {"raw": raw, "post_processed": processed}
        return self

    def _devel_ccc(self, gold, pred, mask) -> float:
        if self.options["aggregation"] == "concat":
            return metrics.ccc(_pooled(gold, mask), _pooled(pred, mask), unbiased=self.options["unbiased"])
        values = [metrics.ccc(g[m], p[m], unbiased=self.options["unbiased"]) for g, p, m in zip(gold, pred, mask) if m.any()]
        return float(np.mean(values)) if values else 0.0

    def _candidates(self, name, gold, current, mask, train):
        """(params, transformed devel sessions) for every candidate setting of step ``name``."""
        rate = self.rate_hz
        if name == "median_filter":
            sizes = sorted({max(1, int(round(w * rate))) | 1 for w in self.options["median_windows_s"]})
            for k in sizes:
                params = {"window_frames": k, "window_s": k / rate}
                yield params, [_apply_step(name, params, x) for x in current]
        elif name == "centring":
            bias = float(np.mean(_pooled(gold, mask)) - np.mean(_pooled(current, mask)))
            params = {"bias": bias}
            yield params, [_apply_step(name, params, x) for x in current]
        elif name == "scaling":
            pred_valid = _pooled(current, mask)
            pred_std = float(np.std(pred_valid))
            if pred_std > 0:
                params = {"factor": float(np.std(_pooled(gold, mask)) / pred_std), "centre": float(np.mean(pred_valid))}
                yield params, [_apply_step(name, params, x) for x in current]
        elif name == "time_shift":
            low, high = self.options["shift_range_s"]
            for k in range(max(1, int(round(low * rate))), int(round(high * rate)) + 1):
                params = {"shift_frames": k, "shift_s": k / rate}
                yield params, [_apply_step(name, params, x) for x in current]
        elif name == "scale_normalisation":
            labels = _pooled(train["gold"], train["mask"])
            label_std = float(np.std(labels))
            if label_std > 0:
                params = {"label_mean": float(np.mean(labels)), "label_std": label_std}
                yield params, [_apply_step(name, params, x) for x in current]
        elif name == "mean_filtering":
            params = {"label_mean": float(np.mean(_pooled(train["gold"], train["mask"]))),
                      "prediction_mean": float(np.mean(_pooled(train["pred"], train["mask"])))}
            yield params, [_apply_step(name, params, x) for x in current]
        elif name == "time_delay":
            low, high = self.options["delay_range"]
            for t in range(low, high + 1):
                if t == 0:
                    continue
                params = {"t": t}
                yield params, [_apply_step(name, params, x) for x in current]

    def _fit_step(self, name, gold, current, mask, train):
        before = self._devel_ccc(gold, current, mask)
        best = None
        for params, transformed in self._candidates(name, gold, current, mask, train):
            score = _quiet(self._devel_ccc, gold, transformed, mask)
            if best is None or score > best[0]:
                best = (score, params, transformed)
        entry = {"kept": False, "params": None, "devel_ccc_before": before, "devel_ccc_after": before,
                 "devel_ccc_best_candidate": None}
        if best is None:
            entry["note"] = "no candidate setting (a zero standard deviation)"
            return entry, current, train
        score, params, transformed = best
        entry["params"] = params
        entry["devel_ccc_best_candidate"] = score
        if score > before or not self.options["keep_only_if_better"]:
            entry["kept"] = True
            entry["devel_ccc_after"] = score
            current = transformed
            if train is not None and train["pred"] is not None:
                train = dict(train, pred=[_apply_step(name, params, x) for x in train["pred"]])
        return entry, current, train

    # -- applying -----------------------------------------------------------------------------------

    def _check_fitted(self):
        if self.rate_hz is None:
            raise ValueError("the post-processing chain is not fitted; call fit() on the devel partition first")

    def apply(self, pred: np.ndarray, rate_hz: float | None = None) -> np.ndarray:
        """The kept steps applied to one session's prediction, (T, D) (or (T,) when D is 1)."""
        self._check_fitted()
        if rate_hz is not None and not math.isclose(float(rate_hz), self.rate_hz):
            raise ValueError(f"the chain was fitted at {self.rate_hz} Hz but the prediction is at {rate_hz} Hz; "
                             "resample the prediction to the fitted rate")
        pred = np.asarray(pred, dtype=np.float64)
        squeeze = pred.ndim == 1
        out = pred[:, None].copy() if squeeze else pred.copy()
        if out.ndim != 2 or out.shape[1] != len(self.dimensions):
            raise ValueError(f"expected a (frames, {len(self.dimensions)}) prediction, got shape {pred.shape}")
        for record in self.fitted_steps:
            for d, dim_name in enumerate(self.dimensions):
                entry = record["dimensions"][dim_name]
                if entry["kept"]:
                    out[:, d] = _apply_step(record["name"], entry["params"], out[:, d])
        return out[:, 0] if squeeze else out

    # -- persistence --------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Everything needed to re-apply the chain, and what it did on devel, as plain JSON types."""
        return _plain({
            "format": FORMAT,
            "variant": self.variant,
            "steps": self.steps,
            "options": self.options,
            "rate_hz": self.rate_hz,
            "dimensions": self.dimensions,
            "devel_ccc": self.devel_ccc,
            "fitted_steps": self.fitted_steps,
        })

    @classmethod
    def from_dict(cls, data: dict) -> "PostProcessingChain":
        if data.get("format") != FORMAT:
            raise ValueError(f"not a post-processing chain of format {FORMAT!r} (found {data.get('format')!r})")
        options = dict(data["options"])
        chain = cls(variant=data["variant"], steps=data["steps"], median_windows_s=options["median_windows_s"],
                    shift_range_s=tuple(options["shift_range_s"]), delay_range=tuple(options["delay_range"]),
                    aggregation=options["aggregation"], unbiased=options["unbiased"],
                    keep_only_if_better=options["keep_only_if_better"])
        chain.rate_hz = data["rate_hz"]
        chain.dimensions = data["dimensions"]
        chain.devel_ccc = data["devel_ccc"]
        chain.fitted_steps = data["fitted_steps"]
        if chain.rate_hz is not None:
            for record in chain.fitted_steps:
                if record["name"] not in ALL_STEPS or set(record["dimensions"]) != set(chain.dimensions):
                    raise ValueError(f"post-processing step {record['name']!r} does not match dimensions {chain.dimensions}")
        return chain

    def save(self, path) -> Path:
        """Write the chain as JSON to ``path`` (a file, or a run folder: ``<folder>/postprocessing.json``).
        The file is replaced atomically, never left half-written."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> "PostProcessingChain":
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.exists():
            raise FileNotFoundError(f"{path}: no post-processing chain; fit one on devel (emotrack evaluate)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(data)


def _plain(value):
    """Numpy scalars and tuples to JSON types; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# --------------------------------------------------------------------------------------------------
# Reports and the AVEC delay search
# --------------------------------------------------------------------------------------------------


def raw_and_post_processed_metrics(golds, preds, chain: PostProcessingChain, masks=None, rate_hz: float | None = None,
                                   aggregation: str = "concat", unbiased: bool = False) -> dict:
    """``compute_metrics`` on the raw predictions and on the chain's output, side by side:
    ``{"raw": {...}, "post_processed": {...}, "post_processing": chain.to_dict()}``."""
    chain._check_fitted()
    processed = [chain.apply(p, rate_hz) for p in preds]
    kwargs = dict(masks=masks, dimensions=chain.dimensions, aggregation=aggregation, unbiased=unbiased)
    return {
        "raw": metrics.compute_metrics(golds, preds, **kwargs),
        "post_processed": metrics.compute_metrics(golds, processed, **kwargs),
        "post_processing": chain.to_dict(),
    }


def delay_search(fit_predict: Callable[[int], Sequence[np.ndarray]], dev_golds, delays: Sequence[int],
                 masks=None, dimensions: Sequence[str] = ("arousal", "valence"), aggregation: str = "concat",
                 unbiased: bool = False, rate_hz: float | None = None) -> dict:
    """Grid search of the annotation delay as in the AVEC baselines.

    For every delay d (frames), ``fit_predict(d)`` trains on ratings shifted with
    ``shift_ratings_for_training(ratings, d)`` and returns the devel predictions, one (T_i, D) array
    per session on the input time line; they are moved back with ``shift_predictions_back`` and
    scored against ``dev_golds``.

    Returns ``{"delays": [...], "delays_s": [...] (with rate_hz), "devel_ccc": {dim: [...]},
    "best_delay": {dim: d}, "best_devel_ccc": {dim: ccc}, "options": {...}}``.
    """
    delays = [int(d) for d in delays]
    if not delays:
        raise ValueError("delay_search needs at least one delay")
    dimensions = list(dimensions)
    scores = {name: [] for name in dimensions}
    for delay in delays:
        preds = [shift_predictions_back(p, delay) for p in fit_predict(delay)]
        values = _quiet(metrics.ccc_by_dimension, dev_golds, preds, masks, aggregation, unbiased)
        if len(values) != len(dimensions):
            raise ValueError(f"fit_predict returned {len(values)} dimensions, expected {len(dimensions)}")
        for name, value in zip(dimensions, values):
            scores[name].append(float(value))
    best = {name: int(np.argmax(scores[name])) for name in dimensions}
    result = {
        "options": {"aggregation": aggregation, "unbiased": bool(unbiased)},
        "delays": delays,
        "devel_ccc": scores,
        "best_delay": {name: delays[i] for name, i in best.items()},
        "best_devel_ccc": {name: scores[name][i] for name, i in best.items()},
    }
    if rate_hz is not None:
        result["delays_s"] = [d / rate_hz for d in delays]
    return result
