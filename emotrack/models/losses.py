"""Training losses and streaming metrics, written with ``keras.ops`` so they run on any Keras 3 backend.

CCC loss, Tzirakis et al. 2017 (shared/papers/tzirakis2017_end2end_multimodal_recola.txt), Sec. III-C:
``L_c = 1 - rho_c`` (Eq. 3) per dimension, averaged over arousal and valence (Eq. 5). Its gradient with
respect to the prediction x of frame i (population moments, N frames) is
``dL_c/dx_i = (2/N) * (2 s_xy (x_i - mu_y) / psi**2 + (mu_y - y_i) / psi)`` with
``psi = s_x**2 + s_y**2 + (mu_x - mu_y)**2``, the form of Eq. 4 (whose ``sigma_xy**2`` is the
covariance) with its constant 2/N written out. Choices the paper leaves open:

- Moments over the whole batch (``per_sequence=False``, default: every frame of every sequence in the
  batch, per dimension, the usual reading of Eq. 3 and what ``tf.nn.moments`` over the batch gives)
  or per sequence then averaged over the sequences (``per_sequence=True``); a sequence with no valid
  frame is left out of that average.
- Population moments unless ``unbiased=True`` (as ``emotrack.evaluation.metrics``).
- A frame mask arrives as ``sample_weight`` (batch, time) and also as a Keras mask on ``y_pred``;
  masked frames are left out of every moment. Weights other than 0/1 weight the moments.
- Where the denominator is 0 (constant, identical signals) the CCC is 0, as ``emotrack.evaluation.metrics.ccc``.

MSE, Teixeira et al. 2021 (teixeira2021_cnnlstm_i3d_sewa.txt), Sec. 4.4: the mean squared error over
frames (or clips) and dimensions; masked frames are left out of the mean, not counted as zeros.

AST-Net composite loss, Wang & Hsu 2017 (wang2017_astnet_siamese_avec2012.md), Sec. 3.4, Eq. 1-6:
``loss = label + w1 trend + w2 local + w3 global + lambda siamese`` with w1 = w2 = w3 = 10 and
lambda = 1000 (Sec. 4.3). Inputs are clips (batch, N, D), or Siamese pairs (batch, 2, N, D) where
clip 1 starts one original frame after clip 0 (Sec. 3.4). What is assumed where the paper is silent:

- Trend, local and Siamese terms are ``1/(2K) sum_k ||g_k - y_k||**2`` over their K items (frame
  pairs or intervals), as Eq. 3, 4 and 6 print them; the global loss (Eq. 5) is ``||g - y||**2`` of the
  clip's ranges, no 1/2, as printed. Every squared norm sums over the D dimensions, and every term is
  averaged over the clips of the batch.
- Label loss (item 1: "measures the Euclidean distance between the predictions and the ground truth
  labels of all the frames in the video clip"; no equation is printed): one distance between the
  clip's two sequences, in the form the paper prints its other whole-clip distance (Eq. 5, "minimize
  the distance of global ranges by ||g - y||**2"): ``||gt - y||**2 = sum_i ||gt_i - y_i||**2`` over
  the clip's N frames, with no 1/N and no 1/2; where the paper means a mean over items it prints the
  1/(2N) (Eq. 3, 4, 6). An earlier reading, the per-frame mean ``1/(2N) sum_i`` (the form of Eq. 3),
  is 2N = 100 times smaller on 50-frame clips; with it the range terms (Eq. 4, 5), which do not see
  the sign of a prediction (a prediction mirrored about its mean has the same ranges), outweighed the
  label term so far that on fast-moving ratings each dimension's sign was left to chance
  (emotrack/config/experiments/learn.py). Sec. 4.3's "the prediction loss is about 10^-1" on AVEC 2012
  does not decide between the two readings (it depends on errors not reported).
- Trend loss (Eq. 3): differences between clip frames ``trend_step`` apart; clips are sampled every
  Delta-t original frames (Sec. 3.1), so the default step of 1 compares frames Delta-t apart in the
  video. Eq. 3 sums i = 1..N over a clip whose time stamps run T_t .. T_{t + Delta-t N}, i.e. N
  differences; the mean over the available differences is used.
- Local loss (Eq. 4): M is not given; ``num_intervals`` defaults to 5 (10 frames each for N = 50),
  and frame i of N belongs to interval floor(i M / N).
- Siamese loss (Eq. 6): ``g_i - g_{i-1}`` and ``y_i - y_{i-1}`` are read as the differences between
  frame i of the later clip and frame i of the earlier clip (one original frame apart).
- With Siamese pairs, the prediction loss (Eq. 2) is the mean of the two clips' prediction losses.
- A frame mask (sample_weight (batch, N) or (batch, 2, N)) leaves masked frames out of every term: a
  difference needs both its frames, a range (max - min) is taken over the valid frames of an
  interval, and an interval or clip with no valid frame is left out.
"""

from __future__ import annotations

import keras
from keras import ops

try:  # The helpers keras.losses.Loss.__call__ itself uses, so masks and tf.distribute match it.
    from keras.src.backend import get_keras_mask as _get_keras_mask
    from keras.src.losses.loss import (
        scale_loss_for_distribution as _scale_for_distribution,
    )
except ImportError:  # pragma: no cover - a Keras without these internals
    def _get_keras_mask(x):
        return getattr(x, "_keras_mask", None)

    def _scale_for_distribution(value):
        return value


# --------------------------------------------------------------------------------------------------
# CCC
# --------------------------------------------------------------------------------------------------


def _as_float_pair(y_true, y_pred):
    """Both as tensors of y_pred's float dtype (floatx when y_pred is not a float)."""
    y_pred = ops.convert_to_tensor(y_pred)
    if not keras.backend.standardize_dtype(y_pred.dtype).startswith("float"):
        y_pred = ops.cast(y_pred, keras.backend.floatx())
    return ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype), y_pred


def _frames_and_weights(y_true, y_pred, mask, dtype):
    """(batch, time, D) tensors and a (batch, time, 1) or (batch, time, D) weight tensor.

    Rank-2 inputs (batch, D) are clip-level values and are read as one sequence of ``batch`` frames;
    rank-4 inputs (batch, 2, N, D) are Siamese clip pairs and are read as 2 * batch sequences.
    """
    y_true = ops.convert_to_tensor(y_true, dtype=dtype)
    y_pred = ops.convert_to_tensor(y_pred, dtype=dtype)
    rank = len(y_pred.shape)
    if rank == 4:
        shape = ops.shape(y_pred)
        y_true = ops.reshape(y_true, (-1, shape[2], shape[3]))
        y_pred = ops.reshape(y_pred, (-1, shape[2], shape[3]))
        if mask is not None:
            mask = ops.convert_to_tensor(mask, dtype=dtype)
            mask = ops.reshape(mask, (-1, shape[2]) + tuple(mask.shape[3:]))
        rank = 3
    if rank == 2:
        y_true, y_pred = y_true[None], y_pred[None]
        if mask is not None:
            mask = ops.convert_to_tensor(mask, dtype=dtype)
            mask = ops.reshape(mask, (1, -1) + tuple(mask.shape[1:]))
    elif rank != 3:
        raise ValueError(f"expected (batch, time, dimensions), (batch, dimensions) or (batch, 2, time, "
                         f"dimensions), got shape {y_pred.shape}")
    if mask is None:
        weights = ops.ones_like(y_pred[..., :1])
    else:
        weights = ops.convert_to_tensor(mask, dtype=dtype)
        if len(weights.shape) == 1:  # one weight per sequence
            weights = weights[:, None, None] * ops.ones_like(y_pred[..., :1])
        elif len(weights.shape) == 2:
            weights = weights[..., None]
    return y_true, y_pred, weights


def _ccc_from_moments(count, mean_true, mean_pred, m2_true, m2_pred, co_moment, unbiased):
    """CCC from counts, means and centred sums of squares/products (any matching shapes)."""
    divisor = count - 1.0 if unbiased else count
    var_true = ops.divide_no_nan(m2_true, divisor)
    var_pred = ops.divide_no_nan(m2_pred, divisor)
    covariance = ops.divide_no_nan(co_moment, divisor)
    psi = var_true + var_pred + ops.square(mean_true - mean_pred)
    return ops.divide_no_nan(2.0 * covariance, psi)


def _masked_ccc(y_true, y_pred, weights, axis, unbiased):
    """CCC over ``axis`` with frame weights; returns (ccc, count), both reduced over ``axis``."""
    count = ops.sum(weights * ops.ones_like(y_pred), axis=axis, keepdims=True)
    mean_true = ops.divide_no_nan(ops.sum(weights * y_true, axis=axis, keepdims=True), count)
    mean_pred = ops.divide_no_nan(ops.sum(weights * y_pred, axis=axis, keepdims=True), count)
    dev_true = y_true - mean_true
    dev_pred = y_pred - mean_pred
    m2_true = ops.sum(weights * ops.square(dev_true), axis=axis)
    m2_pred = ops.sum(weights * ops.square(dev_pred), axis=axis)
    co_moment = ops.sum(weights * dev_true * dev_pred, axis=axis)
    count, mean_true, mean_pred = (ops.squeeze(t, axis=axis) for t in (count, mean_true, mean_pred))
    return _ccc_from_moments(count, mean_true, mean_pred, m2_true, m2_pred, co_moment, unbiased), count


def ccc_loss(y_true, y_pred, mask=None, per_sequence: bool = False, unbiased: bool = False):
    """``mean over dimensions of (1 - CCC)`` (Tzirakis et al. 2017, Eq. 3 and 5), a scalar tensor.

    Args:
        y_true, y_pred: (batch, time, D), or (batch, D) read as one sequence of ``batch`` frames.
        mask: (batch, time) frame weights (0 leaves a frame out), (batch,) sequence weights, or None.
        per_sequence: CCC of each sequence, averaged over sequences with a valid frame; otherwise
            the CCC over all frames of the batch.
        unbiased: N - 1 instead of N in variances and covariance.
    """
    y_true, y_pred = _as_float_pair(y_true, y_pred)
    y_true, y_pred, weights = _frames_and_weights(y_true, y_pred, mask, y_pred.dtype)
    if per_sequence:
        value, count = _masked_ccc(y_true, y_pred, weights, axis=1, unbiased=unbiased)  # (batch, D)
        has_frames = ops.cast(count > 0, value.dtype)
        per_dim = ops.divide_no_nan(ops.sum(value * has_frames, axis=0), ops.sum(has_frames, axis=0))
    else:
        per_dim, _ = _masked_ccc(y_true, y_pred, weights, axis=(0, 1), unbiased=unbiased)  # (D,)
    return 1.0 - ops.mean(per_dim)


def _combined_mask(sample_weight, keras_mask):
    """The frame mask: ``sample_weight`` times the Keras mask carried by ``y_pred``, either may be None."""
    if keras_mask is None or sample_weight is None:
        return sample_weight if keras_mask is None else keras_mask
    return ops.cast(sample_weight, keras.backend.floatx()) * ops.cast(keras_mask, keras.backend.floatx())


@keras.saving.register_keras_serializable(package="emotrack")
class CCCLoss(keras.losses.Loss):
    """CCC loss (Tzirakis et al. 2017, Eq. 3 and 5) as a Keras loss; see ``ccc_loss``.

    ``y_true``/``y_pred`` are (batch, time, D); ``sample_weight`` (batch, time) is a frame mask whose
    zeros leave frames out of the moments. A CCC is not a sum of per-sample losses, so ``__call__``
    does the masking and the reduction itself instead of Keras' per-sample weighting; ``reduction``
    is accepted for Keras' config round trip and has no effect.
    """

    def __init__(self, per_sequence: bool = False, unbiased: bool = False, name: str = "ccc_loss",
                 reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.per_sequence = bool(per_sequence)
        self.unbiased = bool(unbiased)

    def __call__(self, y_true, y_pred, sample_weight=None):
        mask = _combined_mask(sample_weight, _get_keras_mask(y_pred))
        with keras.name_scope(self.name):
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            if mask is not None:
                mask = ops.cast(mask, self.dtype)
            value = ccc_loss(y_true, y_pred, mask, per_sequence=self.per_sequence, unbiased=self.unbiased)
            return _scale_for_distribution(value)

    def call(self, y_true, y_pred):
        return ccc_loss(y_true, y_pred, per_sequence=self.per_sequence, unbiased=self.unbiased)

    def get_config(self):
        config = super().get_config()
        config.update(per_sequence=self.per_sequence, unbiased=self.unbiased)
        return config


@keras.saving.register_keras_serializable(package="emotrack")
class StreamingCCC(keras.metrics.Metric):
    """CCC accumulated over batches, equal to the CCC over the whole set (``aggregation="concat"``).

    Keeps per dimension the weighted count and the sums of y_true, y_pred, their squares and their
    product, in float64 (raw power sums, which float32 would make lose the variance of a long set; on
    the JAX backend float64 needs ``JAX_ENABLE_X64=1``, else JAX keeps them in float32).
    Sums add up across devices: under a ``tf.distribute`` strategy with several replicas (or
    workers) the result read at the end of an epoch is that of all their batches together.

    Args:
        num_dimensions: D, the last axis of y_true/y_pred ((batch, time, D) or (batch, D)).
        dimension: index of the dimension to report, or None for the mean over dimensions.
        unbiased: N - 1 instead of N in variances and covariance.
    ``sample_weight`` (batch, time) is a frame mask: zeros leave frames out. Keras hands
    ``sample_weight`` only to ``compile(weighted_metrics=[...])``, so pass it there when frames are
    masked.
    """

    STATE_DTYPE = "float64"

    def __init__(self, num_dimensions: int = 2, dimension: int | None = None, unbiased: bool = False,
                 name: str = "ccc", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if dimension is not None and not 0 <= dimension < num_dimensions:
            raise ValueError(f"dimension {dimension} is not in 0..{num_dimensions - 1}")
        self.num_dimensions = int(num_dimensions)
        self.dimension = dimension
        self.unbiased = bool(unbiased)
        self._names = ("count", "sum_true", "sum_pred", "sum_true2", "sum_pred2", "sum_cross")
        for state in self._names:
            setattr(self, state, self.add_variable(shape=(self.num_dimensions,), initializer="zeros",
                                                   dtype=self.STATE_DTYPE, aggregation="sum", name=state))

    def update_state(self, y_true, y_pred, sample_weight=None):
        mask = _combined_mask(sample_weight, _get_keras_mask(y_pred))
        y_true, y_pred, weights = _frames_and_weights(y_true, y_pred, mask, self.STATE_DTYPE)
        axis = (0, 1)
        for variable, batch in ((self.count, weights * ops.ones_like(y_pred)), (self.sum_true, weights * y_true),
                                (self.sum_pred, weights * y_pred), (self.sum_true2, weights * ops.square(y_true)),
                                (self.sum_pred2, weights * ops.square(y_pred)),
                                (self.sum_cross, weights * y_true * y_pred)):
            variable.assign(variable.value + ops.sum(batch, axis=axis))

    def result_per_dimension(self):
        """The CCC of every dimension so far, shape (D,)."""
        n = self.count.value
        mean_true = ops.divide_no_nan(self.sum_true.value, n)
        mean_pred = ops.divide_no_nan(self.sum_pred.value, n)
        m2_true = ops.maximum(self.sum_true2.value - n * ops.square(mean_true), 0.0)
        m2_pred = ops.maximum(self.sum_pred2.value - n * ops.square(mean_pred), 0.0)
        co_moment = self.sum_cross.value - n * mean_true * mean_pred
        ccc = _ccc_from_moments(n, mean_true, mean_pred, m2_true, m2_pred, co_moment, self.unbiased)
        return ops.cast(ccc, self.dtype)

    def result(self):
        values = self.result_per_dimension()
        return ops.mean(values) if self.dimension is None else values[self.dimension]

    def reset_state(self):
        for state in self._names:
            getattr(self, state).assign(ops.zeros((self.num_dimensions,), dtype=self.STATE_DTYPE))

    def get_config(self):
        config = super().get_config()
        config.update(num_dimensions=self.num_dimensions, dimension=self.dimension, unbiased=self.unbiased)
        return config


# --------------------------------------------------------------------------------------------------
# MSE (Teixeira et al. 2021)
# --------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="emotrack")
class MSELoss(keras.losses.MeanSquaredError):
    """Mean squared error over frames (or clips) and dimensions (Teixeira et al. 2021, Sec. 4.4).

    Keras' MSE with ``reduction="mean_with_sample_weight"``: a (batch, time) ``sample_weight`` mask
    leaves frames out of the mean (the default reduction would divide by all frames).
    """

    def __init__(self, reduction: str = "mean_with_sample_weight", name: str = "mse", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


def mse_loss(y_true, y_pred, mask=None):
    """Functional ``MSELoss``: mean of squared errors over valid frames and dimensions."""
    return MSELoss()(y_true, y_pred, sample_weight=mask)


# --------------------------------------------------------------------------------------------------
# AST-Net (Wang & Hsu 2017)
# --------------------------------------------------------------------------------------------------


def _clip_weights(y_pred, mask):
    """(batch, N, 1) weights for (batch, N, D) clips."""
    if mask is None:
        return ops.ones_like(y_pred[..., :1])
    mask = ops.cast(mask, y_pred.dtype)
    if len(mask.shape) == len(y_pred.shape) - 1:
        mask = mask[..., None]
    return mask * ops.ones_like(y_pred[..., :1])


def _half_mean_sq_norm(diff, weights):
    """``1/(2K) sum_k ||diff_k||**2`` over axis 1 of (batch, K, D) with (batch, K, 1) weights,
    averaged over clips that have any valid item."""
    per_clip_sum = ops.sum(weights * ops.sum(ops.square(diff), axis=-1, keepdims=True), axis=(1, 2))
    per_clip_count = ops.sum(weights, axis=(1, 2))
    per_clip = 0.5 * ops.divide_no_nan(per_clip_sum, per_clip_count)
    has_items = ops.cast(per_clip_count > 0, diff.dtype)
    return ops.divide_no_nan(ops.sum(per_clip * has_items), ops.sum(has_items))


def _prepare(y_true, y_pred, mask):
    y_true, y_pred = _as_float_pair(y_true, y_pred)
    if len(y_pred.shape) != 3:
        raise ValueError(f"expected clips shaped (batch, frames, dimensions), got {y_pred.shape}")
    return y_true, y_pred, _clip_weights(y_pred, mask)


def label_loss(y_true, y_pred, mask=None):
    """Label loss (Wang & Hsu 2017, Sec. 3.4 item 1, "the Euclidean distance between the predictions and
    the ground truth labels of all the frames in the video clip"): ``||gt - y||**2 = sum_i ||gt_i -
    y_i||**2`` over the clip's valid frames (the form of Eq. 5; no 1/N, no 1/2), averaged over the
    clips of the batch that have a valid frame. y: (batch, N, D); mask: (batch, N) or None."""
    y_true, y_pred, weights = _prepare(y_true, y_pred, mask)
    per_clip = ops.sum(weights * ops.sum(ops.square(y_true - y_pred), axis=-1, keepdims=True), axis=(1, 2))
    has_items = ops.cast(ops.sum(weights, axis=(1, 2)) > 0, y_pred.dtype)
    return ops.divide_no_nan(ops.sum(per_clip * has_items), ops.sum(has_items))


def trend_loss(y_true, y_pred, mask=None, step: int = 1):
    """Trend loss (Eq. 3): ``1/(2N) sum_i ||(gt_i - gt_{i-step}) - (y_i - y_{i-step})||**2``.

    ``step`` counts clip frames; clips sampled every Delta-t video frames make step 1 a Delta-t
    difference in the video. y: (batch, N, D) with N > step."""
    y_true, y_pred, weights = _prepare(y_true, y_pred, mask)
    diff = (y_true[:, step:] - y_true[:, :-step]) - (y_pred[:, step:] - y_pred[:, :-step])
    return _half_mean_sq_norm(diff, weights[:, step:] * weights[:, :-step])


def _interval_ranges(values, weights, membership):
    """max - min of (batch, N, D) values within each of M intervals over valid frames.

    membership: (N, M) 0/1. Returns ranges (batch, M, D) and valid-frame counts (batch, M, 1).
    """
    member = membership[None, :, :, None] * weights[:, :, None, :]  # (batch, N, M, 1)
    counts = ops.sum(member, axis=1)  # (batch, M, 1)
    expanded = values[:, :, None, :]  # (batch, N, 1, D)
    means = ops.divide_no_nan(ops.sum(member * expanded, axis=1), counts)  # (batch, M, D)
    # Frames outside an interval (or masked) take the interval's mean, which lies between its
    # minimum and maximum and so changes neither; no infinities enter the graph.
    filled = ops.where(member > 0, expanded, means[:, None, :, :])
    return ops.max(filled, axis=1) - ops.min(filled, axis=1), counts


def _interval_membership(num_frames, num_intervals, dtype):
    index = ops.arange(num_frames)
    interval = ops.floor_divide(index * num_intervals, num_frames)
    return ops.cast(ops.equal(interval[:, None], ops.arange(num_intervals)[None, :]), dtype)


def local_loss(y_true, y_pred, mask=None, num_intervals: int = 5):
    """Local loss (Eq. 4): ``1/(2M) sum_k ||range_k(gt) - range_k(y)||**2`` over M intervals, where
    range is max - min within the interval and frame i of N belongs to interval floor(i M / N)."""
    y_true, y_pred, weights = _prepare(y_true, y_pred, mask)
    membership = _interval_membership(ops.shape(y_pred)[1], num_intervals, y_pred.dtype)
    range_true, counts = _interval_ranges(y_true, weights, membership)
    range_pred, _ = _interval_ranges(y_pred, weights, membership)
    return _half_mean_sq_norm(range_true - range_pred, ops.cast(counts > 0, y_pred.dtype))


def global_loss(y_true, y_pred, mask=None):
    """Global loss (Eq. 5): ``||range(gt) - range(y)||**2`` over the whole clip, averaged over the
    batch (no 1/2, as printed)."""
    y_true, y_pred, weights = _prepare(y_true, y_pred, mask)
    membership = ops.ones((ops.shape(y_pred)[1], 1), dtype=y_pred.dtype)
    range_true, counts = _interval_ranges(y_true, weights, membership)
    range_pred, _ = _interval_ranges(y_pred, weights, membership)
    return 2.0 * _half_mean_sq_norm(range_true - range_pred, ops.cast(counts > 0, y_pred.dtype))


def siamese_loss(y_true, y_pred, mask=None):
    """Siamese loss (Eq. 6) between two clips one video frame apart: y (batch, 2, N, D), clip 1 the
    later one; ``1/(2N) sum_i ||(gt1_i - gt0_i) - (y1_i - y0_i)||**2``. mask: (batch, 2, N) or None."""
    y_true, y_pred = _as_float_pair(y_true, y_pred)
    if len(y_pred.shape) != 4 or y_pred.shape[1] != 2:
        raise ValueError(f"the Siamese loss needs clip pairs shaped (batch, 2, N, D), got {y_pred.shape}")
    if mask is None:
        weights = ops.ones_like(y_pred[:, 0, :, :1])
    else:
        mask = ops.cast(mask, y_pred.dtype)
        weights = (mask[:, 0] * mask[:, 1])[..., None] * ops.ones_like(y_pred[:, 0, :, :1])
    diff = (y_true[:, 1] - y_true[:, 0]) - (y_pred[:, 1] - y_pred[:, 0])
    return _half_mean_sq_norm(diff, weights)


ASTNET_TERMS = {"La": "label", "T": "trend", "Lo": "local", "G": "global", "S": "siamese"}


@keras.saving.register_keras_serializable(package="emotrack")
class ASTNetLoss(keras.losses.Loss):
    """AST-Net composite loss (Wang & Hsu 2017, Eq. 1-6).

    ``label_weight * label + trend_weight * trend + local_weight * local + global_weight * global
    + siamese_weight * siamese``; the paper's weights are 1, w1 = w2 = w3 = 10 and lambda = 1000. A
    term whose weight is 0 is not computed. y_true/y_pred: (batch, 2, N, D) Siamese clip pairs, or
    (batch, N, D) single clips when ``siamese_weight`` is 0; sample_weight: (batch, [2,] N) frame mask.
    ``ASTNetLoss.ablation("La+T+S")`` keeps the named terms of Table 1 at the paper's weights.
    """

    def __init__(self, label_weight: float = 1.0, trend_weight: float = 10.0, local_weight: float = 10.0,
                 global_weight: float = 10.0, siamese_weight: float = 1000.0, trend_step: int = 1,
                 num_intervals: int = 5, name: str = "astnet_loss", reduction: str = "sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_weight = float(label_weight)
        self.trend_weight = float(trend_weight)
        self.local_weight = float(local_weight)
        self.global_weight = float(global_weight)
        self.siamese_weight = float(siamese_weight)
        self.trend_step = int(trend_step)
        self.num_intervals = int(num_intervals)

    @classmethod
    def ablation(cls, terms: str, **options) -> "ASTNetLoss":
        """The loss with only the terms named in Table 1's notation, e.g. ``"La+T+Lo+G+S"``."""
        names = [t.strip() for t in terms.split("+") if t.strip()]
        unknown = [t for t in names if t not in ASTNET_TERMS]
        if unknown:
            raise ValueError(f"unknown AST-Net term(s) {unknown}; known: {', '.join(ASTNET_TERMS)}")
        defaults = {"La": 1.0, "T": 10.0, "Lo": 10.0, "G": 10.0, "S": 1000.0}
        weights = {f"{ASTNET_TERMS[t]}_weight": defaults[t] if t in names else 0.0 for t in ASTNET_TERMS}
        weights.update(options)
        return cls(**weights)

    def terms(self, y_true, y_pred, sample_weight=None) -> dict:
        """The unweighted value of every term with a nonzero weight, as scalar tensors."""
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        mask = None if sample_weight is None else ops.cast(sample_weight, self.dtype)
        if mask is not None and len(mask.shape) != len(y_pred.shape) - 1:
            raise ValueError(f"the frame mask must be shaped {tuple(y_pred.shape[:-1])}, got {tuple(mask.shape)}")
        if len(y_pred.shape) == 4:
            clips = [(y_true[:, c], y_pred[:, c], None if mask is None else mask[:, c]) for c in (0, 1)]
        elif len(y_pred.shape) == 3:
            if self.siamese_weight:
                raise ValueError("the Siamese term needs clip pairs (batch, 2, N, D); set siamese_weight=0 "
                                 f"for single clips, got shape {y_pred.shape}")
            clips = [(y_true, y_pred, mask)]
        else:
            raise ValueError(f"expected (batch, 2, N, D) or (batch, N, D), got shape {y_pred.shape}")
        per_clip_terms = {
            "label": (self.label_weight, label_loss, {}),
            "trend": (self.trend_weight, trend_loss, {"step": self.trend_step}),
            "local": (self.local_weight, local_loss, {"num_intervals": self.num_intervals}),
            "global": (self.global_weight, global_loss, {}),
        }
        values = {}
        for name, (weight, fn, kwargs) in per_clip_terms.items():
            if weight:
                values[name] = sum(fn(t, p, m, **kwargs) for t, p, m in clips) / len(clips)
        if self.siamese_weight:
            values["siamese"] = siamese_loss(y_true, y_pred, mask)
        return values

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            values = self.terms(y_true, y_pred, sample_weight)
            weights = {"label": self.label_weight, "trend": self.trend_weight, "local": self.local_weight,
                       "global": self.global_weight, "siamese": self.siamese_weight}
            total = sum(weights[name] * value for name, value in values.items())
            if not values:
                total = ops.zeros((), dtype=self.dtype)
            return _scale_for_distribution(total)

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def get_config(self):
        config = super().get_config()
        config.update(label_weight=self.label_weight, trend_weight=self.trend_weight,
                      local_weight=self.local_weight, global_weight=self.global_weight,
                      siamese_weight=self.siamese_weight, trend_step=self.trend_step,
                      num_intervals=self.num_intervals)
        return config
