"""Evaluation metrics for time-continuous emotion ratings (numpy only).

CCC (Lin 1989), PCC, MAE, MAPE and RMSE, per dimension, with every choice that changes a published
number made explicit and written into the report (``compute_metrics(...)["options"]``):

- Moments: ``unbiased=False`` (the default) uses population moments (divide by N), as the AVEC
  challenge scripts and ``audmetric.concordance_cc`` do; ``unbiased=True`` divides variances and the
  covariance by N - 1 (the squared mean difference is the same in both).
- Aggregation over sessions: ``"concat"`` computes each metric over all frames of all sessions of a
  partition concatenated (AVEC 2017 SEWA scoring); ``"mean"`` computes it per session and averages
  the sessions with equal weight (AVEC 2018 GES).
- Masks: frames whose mask is 0/False (no face, Aff-Wild2's -5 ratings) are left out of every metric,
  before any moment is taken.

Definitions where the papers are unclear or a formula is undefined:

- MAPE follows Teixeira et al. 2021, Eq. 5, ``1/n sum |y'_i - y_i| / y_i``, with two readings:
  the denominator is ``|y_i|`` (printed as ``y_i``; with signed valence the printed form can be
  negative and would not measure an error), and the value is given in percent (their Table 2 reports
  "MAPE(%)"). Frames whose gold standard is exactly 0 have no defined percentage error and are left
  out, with a warning.
- Degenerate inputs return a defined value and emit a ``DegenerateInputWarning`` naming the cause:
  CCC and PCC are 0.0 when there are fewer than two valid frames, when all frames are masked, or
  when the prediction or the gold standard is constant (Lin's CCC is exactly 0 when one side is
  constant and the other is not; when both are constant it is 0/0, and 0.0 is chosen: constant
  signals carry no evidence of concordance). MAE, RMSE and MAPE are NaN when no valid frame is
  left; ``compute_metrics`` writes such a value as ``None`` (JSON ``null``). ``audmetric`` returns a
  silent NaN in these cases.
- Non-finite values (NaN, inf) at frames that are not masked are an error, not a silent NaN.
- With ``aggregation="mean"``, a session with no valid frame is left out of the average (with a
  warning); other degenerate sessions count with the value defined above.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

METRIC_NAMES = ("CCC", "PCC", "MAE", "MAPE", "RMSE")
AGGREGATIONS = ("concat", "mean")


class DegenerateInputWarning(UserWarning):
    """A metric was computed on degenerate input (constant, too short or fully masked) and given its
    defined value instead of NaN."""


def _warn(message: str) -> None:
    warnings.warn(message, DegenerateInputWarning, stacklevel=3)


def _valid_pair(y_true, y_pred, mask, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The frames of two 1-D series that the mask keeps, as float64 arrays."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"{name}: expected 1-D arrays, got shapes {y_true.shape} and {y_pred.shape}")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: gold standard has {y_true.size} frames, prediction {y_pred.size}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != y_true.shape:
            raise ValueError(f"{name}: mask shape {mask.shape} differs from the series shape {y_true.shape}")
        keep = mask.astype(bool)
        y_true, y_pred = y_true[keep], y_pred[keep]
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError(
            f"{name}: NaN or inf at frames that are not masked; mask those frames out or fix the input"
        )
    return y_true, y_pred


def _correlation_is_degenerate(y_true: np.ndarray, y_pred: np.ndarray, name: str) -> bool:
    if y_true.size < 2:
        what = "all frames are masked" if y_true.size == 0 else "only one valid frame"
        _warn(f"{name}: {what}; {name} is set to 0.0")
        return True
    const_true = np.ptp(y_true) == 0
    const_pred = np.ptp(y_pred) == 0
    if const_true or const_pred:
        what = {
            (True, True): "prediction and gold standard are both constant",
            (True, False): "gold standard is constant",
            (False, True): "prediction is constant",
        }[(bool(const_true), bool(const_pred))]
        _warn(f"{name}: {what} over {y_true.size} frames; {name} is set to 0.0")
        return True
    return False


def ccc(y_true, y_pred, mask=None, unbiased: bool = False) -> float:
    """Concordance correlation coefficient (Lin 1989) of two 1-D series.

    ``2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))**2)``; population moments unless
    ``unbiased``. ``mask`` (T,) keeps frames where it is true/nonzero.
    """
    y_true, y_pred = _valid_pair(y_true, y_pred, mask, "CCC")
    if _correlation_is_degenerate(y_true, y_pred, "CCC"):
        return 0.0
    ddof = 1 if unbiased else 0
    dev_true = y_true - y_true.mean()
    dev_pred = y_pred - y_pred.mean()
    n = y_true.size - ddof
    covariance = np.dot(dev_true, dev_pred) / n
    var_true = np.dot(dev_true, dev_true) / n
    var_pred = np.dot(dev_pred, dev_pred) / n
    return float(2.0 * covariance / (var_true + var_pred + (y_true.mean() - y_pred.mean()) ** 2))


def pcc(y_true, y_pred, mask=None) -> float:
    """Pearson correlation coefficient of two 1-D series (the same for either choice of moments)."""
    y_true, y_pred = _valid_pair(y_true, y_pred, mask, "PCC")
    if _correlation_is_degenerate(y_true, y_pred, "PCC"):
        return 0.0
    dev_true = y_true - y_true.mean()
    dev_pred = y_pred - y_pred.mean()
    value = np.dot(dev_true, dev_pred) / math.sqrt(np.dot(dev_true, dev_true) * np.dot(dev_pred, dev_pred))
    return float(np.clip(value, -1.0, 1.0))


def mae(y_true, y_pred, mask=None) -> float:
    """Mean absolute error (Teixeira et al. 2021, Eq. 4)."""
    y_true, y_pred = _valid_pair(y_true, y_pred, mask, "MAE")
    if y_true.size == 0:
        _warn("MAE: all frames are masked; MAE is NaN")
        return math.nan
    return float(np.mean(np.abs(y_pred - y_true)))


def rmse(y_true, y_pred, mask=None) -> float:
    """Root mean squared error."""
    y_true, y_pred = _valid_pair(y_true, y_pred, mask, "RMSE")
    if y_true.size == 0:
        _warn("RMSE: all frames are masked; RMSE is NaN")
        return math.nan
    return float(np.sqrt(np.mean(np.square(y_pred - y_true))))


def mape(y_true, y_pred, mask=None) -> float:
    """Mean absolute percentage error in percent, ``100/n sum |y'_i - y_i| / |y_i|`` (Teixeira et al.
    2021, Eq. 5; see the module docstring). Frames with a gold standard of exactly 0 are left out."""
    y_true, y_pred = _valid_pair(y_true, y_pred, mask, "MAPE")
    nonzero = y_true != 0
    if not np.all(nonzero):
        _warn(f"MAPE: {int(np.sum(~nonzero))} of {y_true.size} frames have a gold standard of 0 and are left out")
        y_true, y_pred = y_true[nonzero], y_pred[nonzero]
    if y_true.size == 0:
        _warn("MAPE: no frame with a nonzero gold standard is left; MAPE is NaN")
        return math.nan
    return float(100.0 * np.mean(np.abs(y_pred - y_true) / np.abs(y_true)))


def _metric_functions(unbiased: bool):
    return {
        "CCC": lambda t, p: ccc(t, p, unbiased=unbiased),
        "PCC": pcc,
        "MAE": mae,
        "MAPE": mape,
        "RMSE": rmse,
    }


def check_sessions(golds, preds, masks=None, num_dimensions: int | None = None):
    """Validate per-session arrays: lists of (T_i, D) (or (T_i,)) gold standards and predictions and
    (T_i,) or (T_i, D) masks or None. Returns lists of (T_i, D) float64 arrays and (T_i, D) bool masks."""
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold-standard sessions but {len(preds)} predicted sessions")
    if masks is not None and len(masks) != len(golds):
        raise ValueError(f"{len(golds)} sessions but {len(masks)} masks")
    out_golds, out_preds, out_masks = [], [], []
    for i, (gold, pred) in enumerate(zip(golds, preds)):
        gold = np.asarray(gold, dtype=np.float64)
        pred = np.asarray(pred, dtype=np.float64)
        if gold.ndim == 1:
            gold = gold[:, None]
        if pred.ndim == 1:
            pred = pred[:, None]
        if gold.ndim != 2 or gold.shape != pred.shape:
            raise ValueError(
                f"session {i}: gold standard shape {gold.shape} and prediction shape {pred.shape} "
                "must be the same (frames, dimensions)"
            )
        if num_dimensions is not None and gold.shape[1] != num_dimensions:
            raise ValueError(f"session {i}: {gold.shape[1]} dimensions, expected {num_dimensions}")
        if masks is None or masks[i] is None:
            mask = np.ones(gold.shape, dtype=bool)
        else:
            mask = np.asarray(masks[i]).astype(bool)
            if mask.ndim == 1:
                mask = mask[:, None]
            if mask.shape[0] != gold.shape[0] or mask.shape[1] not in (1, gold.shape[1]):
                raise ValueError(
                    f"session {i}: mask shape {np.shape(masks[i])} does not fit {gold.shape[0]} frames"
                )
            mask = np.broadcast_to(mask, gold.shape)
        out_golds.append(gold)
        out_preds.append(pred)
        out_masks.append(mask)
    return out_golds, out_preds, out_masks


def _concat_valid(golds, preds, masks, dim: int) -> tuple[np.ndarray, np.ndarray]:
    gold = np.concatenate([g[m[:, dim], dim] for g, m in zip(golds, masks)]) if golds else np.zeros(0)
    pred = np.concatenate([p[m[:, dim], dim] for p, m in zip(preds, masks)]) if preds else np.zeros(0)
    return gold, pred


def _aggregate(fn, golds, preds, masks, dim: int, aggregation: str) -> float:
    if aggregation == "concat":
        gold, pred = _concat_valid(golds, preds, masks, dim)
        return fn(gold, pred)
    values = []
    for i, (gold, pred, mask) in enumerate(zip(golds, preds, masks)):
        keep = mask[:, dim]
        if not keep.any():
            _warn(f"session {i} has no valid frame for dimension {dim}; it is left out of the mean")
            continue
        values.append(fn(gold[keep, dim], pred[keep, dim]))
    values = [v for v in values if not math.isnan(v)]
    if not values:
        _warn("no session has a defined value; the mean is NaN")
        return math.nan
    return float(np.mean(values))


def _check_options(aggregation: str) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def ccc_by_dimension(golds, preds, masks=None, aggregation: str = "concat", unbiased: bool = False) -> np.ndarray:
    """CCC of each dimension over a partition: golds/preds are lists of (T_i, D) arrays, masks a list
    of (T_i,) or (T_i, D) arrays or None. Returns a (D,) array."""
    _check_options(aggregation)
    golds, preds, masks = check_sessions(golds, preds, masks)
    num_dimensions = golds[0].shape[1] if golds else 0
    fn = _metric_functions(unbiased)["CCC"]
    return np.array([_aggregate(fn, golds, preds, masks, d, aggregation) for d in range(num_dimensions)])


def _json_float(value: float):
    return float(value) if math.isfinite(value) else None


def compute_metrics(
    golds: Sequence,
    preds: Sequence,
    masks: Sequence | None = None,
    dimensions: Sequence[str] = ("arousal", "valence"),
    aggregation: str = "concat",
    unbiased: bool = False,
    per_session: bool = False,
) -> dict:
    """CCC, PCC, MAE, MAPE and RMSE per dimension over a partition.

    Args:
        golds, preds: one float array per session, each (T_i, D) (or (T_i,) when D is 1).
        masks: one (T_i,) (or (T_i, D)) bool/0-1 array per session, or None; 0 leaves a frame out.
        dimensions: the names of the D columns.
        aggregation: ``"concat"`` (all sessions concatenated) or ``"mean"`` (per session, averaged).
        unbiased: N - 1 instead of N in the CCC's variances and covariance.
        per_session: also return every session's metrics under ``"sessions"``.

    Returns:
        ``{"options": {...}, "<dimension>": {"CCC": float, "PCC": ..., "MAE": ..., "MAPE": ...,
        "RMSE": ...}, ...}``; an undefined value (no valid frame) is ``None``. JSON-serialisable.
    """
    _check_options(aggregation)
    dimensions = list(dimensions)
    golds, preds, masks = check_sessions(golds, preds, masks, num_dimensions=len(dimensions))
    functions = _metric_functions(unbiased)
    report = {
        "options": {
            "aggregation": aggregation,
            "unbiased": bool(unbiased),
            "ccc_moments": "unbiased (N - 1)" if unbiased else "population (N)",
            "masked_frames": "excluded",
            "mape": "percent of |gold|; frames with gold 0 excluded",
            "num_sessions": len(golds),
            "num_frames": {name: int(sum(m[:, d].sum() for m in masks)) for d, name in enumerate(dimensions)},
        }
    }
    for d, name in enumerate(dimensions):
        report[name] = {
            metric: _json_float(_aggregate(fn, golds, preds, masks, d, aggregation))
            for metric, fn in functions.items()
        }
    if per_session:
        sessions = []
        for gold, pred, mask in zip(golds, preds, masks):
            entry = {}
            for d, name in enumerate(dimensions):
                keep = mask[:, d]
                entry[name] = {metric: _json_float(fn(gold[keep, d], pred[keep, d])) for metric, fn in functions.items()}
            sessions.append(entry)
        report["sessions"] = sessions
    return report
