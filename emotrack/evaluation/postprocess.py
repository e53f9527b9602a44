"""Post-processing chains of predicted rating sequences, fitted on the development partition only.

A chain is a list of step names (`CHAINS`, the one place chains are declared; the steps are the
classes of `emotrack.evaluation.postprocess_steps`, found by name in its registry ``STEPS``). A
``PostProcessingChain`` is fitted with ``fit(dev_golds, dev_preds, rate_hz)``, written as JSON into a
run folder with the devel CCC before and after every step, and applied unchanged to the test
partition and at prediction time. Every dimension (arousal, valence, ...) is fitted on its own. Test
data never enters ``fit``.

- ``tzirakis2017`` (Tzirakis et al. 2017, Sec. V): median filter, centring, scaling, time shift. A step
  is kept only when it raises the devel CCC, and later steps are fitted on the output of the kept ones.
- ``teixeira2021`` (Teixeira et al. 2021, Sec. 3.4): scale normalisation (Eq. 1), mean filtering
  (Eq. 2), time delay (Eq. 3). The paper does not say how steps are selected; as in the Tzirakis chain
  a step is kept only when it raises the devel CCC (``keep_only_if_better``). Eq. 1 needs the training
  labels (``train_golds``) and Eq. 2 also the training predictions (``train_preds``): training-set
  statistics, never test data.
- ``none``: no step; predictions are reported as they are.

Masks select the frames that count in the devel CCC (at the evaluation frame index); filtering and
shifting run over all frames.

``delay_search`` is the AVEC baselines' delay compensation: ratings are shifted earlier by d frames
for training (`emotrack.data.align.ratings_for_frames`), the model's predictions shifted back by d for
evaluation (`emotrack.data.align.undo_label_delay`), and d is chosen on the devel CCC.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emotrack.data.align import undo_label_delay
from emotrack.evaluation import metrics
from emotrack.evaluation.postprocess_steps import STEPS, FitContext, pooled
from emotrack.files import atomic_path

FORMAT = "emotrack.postprocessing/1"
FILENAME = "postprocessing.json"
#: chain name -> its steps in order; `register_chain` adds one.
CHAINS: dict[str, tuple[str, ...]] = {
    "tzirakis2017": ("median_filter", "centring", "scaling", "time_shift"),
    "teixeira2021": ("scale_normalisation", "mean_filtering", "time_delay"),
    "none": (),
}
DEFAULT_MEDIAN_WINDOWS_S = (0.4, 0.6, 0.8, 1.0, 1.2, 1.6, 2.0, 2.4, 3.2, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0)
DEFAULT_SHIFT_RANGE_S = (0.04, 10.0)
DEFAULT_DELAY_RANGE = (-10, 10)


def _unknown_steps(steps: Sequence[str]) -> list[str]:
    return [s for s in steps if s not in STEPS]


def register_chain(name: str, steps: Sequence[str]) -> None:
    """Declare a chain: ``name`` (a value of ``evaluate.postprocessing`` and ``--postprocessing``) runs the
    registered ``steps`` in this order.

    Raises:
        ValueError: for a name in use or a step that is not registered.
    """
    if name in CHAINS:
        raise ValueError(f"a post-processing chain named {name!r} exists already: {list(CHAINS[name])}")
    unknown = _unknown_steps(steps)
    if unknown:
        raise ValueError(f"chain {name!r}: steps {unknown} are not registered; known steps: {', '.join(STEPS)} "
                         "(register a step class with emotrack.evaluation.postprocess_steps.register_step)")
    CHAINS[name] = tuple(steps)


def chain_names() -> list[str]:
    """The chains one can choose, in declaration order (the CLI's and the config's allowed values)."""
    return list(CHAINS)


# --------------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------------


def _quiet(fn, *args):
    """Candidate settings in a grid search may be degenerate (e.g. a flat filtered signal); their CCC
    is defined (0.0) and the warning would only repeat for every candidate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.DegenerateInputWarning)
        return fn(*args)


class PostProcessingChain:
    """A post-processing chain fitted on devel and applied to test and at prediction time.

    Args:
        variant: the chain's name in `CHAINS` (``"tzirakis2017"``, ``"teixeira2021"``, ``"none"``, ...).
        steps: a subset of the chain's steps to fit, in the chain's order (default: all).
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
        if variant not in CHAINS:
            raise ValueError(f"unknown post-processing chain {variant!r}; choose one of {', '.join(CHAINS)} "
                             "(or declare it with emotrack.evaluation.postprocess.register_chain)")
        if steps is None:
            steps = CHAINS[variant]
        unknown = [s for s in steps if s not in CHAINS[variant]]
        if unknown:
            raise ValueError(f"steps {unknown} are not part of {variant!r}: {', '.join(CHAINS[variant])}")
        if aggregation not in metrics.AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {metrics.AGGREGATIONS}, got {aggregation!r}")
        self.variant = variant
        self.steps = [s for s in CHAINS[variant] if s in steps]
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

    @property
    def needs_fitting(self) -> bool:
        """Whether the chain has steps to fit on devel (``none`` has none: predictions pass unchanged)."""
        return bool(self.steps)

    @property
    def needs_training_partition(self) -> bool:
        """Whether a step needs the training partition's labels or predictions to fit (``train_golds``)."""
        return any(STEPS[s].needs_train_golds or STEPS[s].needs_train_preds for s in self.steps)

    # -- fitting ------------------------------------------------------------------------------------

    def fit(self, dev_golds, dev_preds, rate_hz: float, masks=None, dimensions: Sequence[str] | None = None,
            train_golds=None, train_preds=None, train_masks=None) -> "PostProcessingChain":
        """Fit every step on the development partition.

        Args:
            dev_golds, dev_preds: one (T_i, D) array per devel session.
            rate_hz: frame rate of the sequences (the rating rate).
            masks: one (T_i,) or (T_i, D) array per devel session (0 leaves a frame out), or None.
            dimensions: names of the D columns (default arousal, valence when D is 2).
            train_golds, train_preds, train_masks: the training partition, needed by the steps that
                fit on its statistics (``needs_training_partition``: Teixeira's Eq. 1 and 2).
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
        needs_train = [s for s in self.steps if STEPS[s].needs_train_golds or STEPS[s].needs_train_preds]
        needs_preds = any(STEPS[s].needs_train_preds for s in self.steps)
        if needs_train and (train_golds is None or (train_preds is None and needs_preds)):
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
            return metrics.ccc(pooled(gold, mask), pooled(pred, mask), unbiased=self.options["unbiased"])
        values = [metrics.ccc(g[m], p[m], unbiased=self.options["unbiased"]) for g, p, m in zip(gold, pred, mask) if m.any()]
        return float(np.mean(values)) if values else 0.0

    def _fit_step(self, name, gold, current, mask, train):
        """Fit step ``name`` of one dimension on the devel sessions ``current`` (the output of the steps
        kept so far); keep it when it raises the devel CCC (``keep_only_if_better``)."""
        before = self._devel_ccc(gold, current, mask)
        context = FitContext(rate_hz=self.rate_hz, options=self.options, mask=mask, train=train,
                             score=lambda transformed: _quiet(self._devel_ccc, gold, transformed, mask))
        step = STEPS[name]().fit(current, gold, context)
        entry = {"kept": False, "params": None, "devel_ccc_before": before, "devel_ccc_after": before,
                 "devel_ccc_best_candidate": None}
        if step.params is None:
            entry["note"] = "no candidate setting (a zero standard deviation)"
            return entry, current, train
        transformed = [step.apply(x) for x in current]
        score = context.score(transformed)
        entry["params"] = step.params
        entry["devel_ccc_best_candidate"] = score
        if score > before or not self.options["keep_only_if_better"]:
            entry["kept"] = True
            entry["devel_ccc_after"] = score
            current = transformed
            if train is not None and train["pred"] is not None:
                train = dict(train, pred=[step.apply(x) for x in train["pred"]])
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
                    out[:, d] = STEPS[record["name"]](entry["params"]).apply(out[:, d])
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
        """The chain `to_dict` described, fitted state included (its steps must be registered)."""
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
                if record["name"] not in STEPS or set(record["dimensions"]) != set(chain.dimensions):
                    raise ValueError(f"post-processing step {record['name']!r} does not match dimensions {chain.dimensions}")
        return chain

    def save(self, path) -> Path:
        """Write the chain as JSON to ``path`` (a file, or a run folder: ``<folder>/postprocessing.json``).
        The file is replaced atomically, never left half-written."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        with atomic_path(path) as tmp:
            tmp.write_text(text + "\n")
        return path

    @classmethod
    def load(cls, path) -> "PostProcessingChain":
        """Read a chain `save` wrote (a file, or a run folder holding ``postprocessing.json``)."""
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

    For every delay d (frames, 0 or more), ``fit_predict(d)`` trains on ratings shifted with
    `emotrack.data.align.ratings_for_frames` (ratings, d) and returns the devel predictions, one (T_i, D)
    array per session on the input time line; they are moved back with
    `emotrack.data.align.undo_label_delay` and scored against ``dev_golds``.

    Returns ``{"delays": [...], "delays_s": [...] (with rate_hz), "devel_ccc": {dim: [...]},
    "best_delay": {dim: d}, "best_devel_ccc": {dim: ccc}, "options": {...}}``.
    """
    delays = [int(d) for d in delays]
    if not delays:
        raise ValueError("delay_search needs at least one delay")
    dimensions = list(dimensions)
    scores = {name: [] for name in dimensions}
    for delay in delays:
        preds = [undo_label_delay(np.asarray(p, dtype=np.float64), delay) for p in fit_predict(delay)]
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
