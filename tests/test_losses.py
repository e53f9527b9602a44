"""emotrack.models.losses: the Keras CCC loss against numpy CCC, Eq. 4 and finite differences; the streaming
metric against one-shot CCC; training with a frame mask; the AST-Net terms on hand-worked clips."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from emotrack.evaluation.metrics import ccc
from emotrack.models import losses
from emotrack.models.losses import (
    ASTNetLoss,
    CCCLoss,
    MSELoss,
    StreamingCCC,
    ccc_loss,
    global_loss,
    label_loss,
    local_loss,
    siamese_loss,
    trend_loss,
)

REPO = Path(__file__).resolve().parents[1]


def _batch(seed=0, shape=(4, 25, 2), keep=0.7):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=shape)
    y_pred = 0.5 * y_true + rng.normal(0.2, 0.7, size=shape)
    mask = (rng.random(shape[:2]) < keep).astype("float64")
    return y_true, y_pred, mask


def _numpy_loss(y_true, y_pred, mask, per_sequence, unbiased=False):
    dims = range(y_true.shape[-1])
    if not per_sequence:
        return 1 - np.mean([ccc(y_true[..., d].ravel(), y_pred[..., d].ravel(), mask=mask.ravel(), unbiased=unbiased)
                            for d in dims])
    rows = [b for b in range(len(y_true)) if mask[b].any()]
    return 1 - np.mean([[ccc(y_true[b, :, d], y_pred[b, :, d], mask=mask[b], unbiased=unbiased) for b in rows]
                        for d in dims])


@pytest.mark.parametrize("per_sequence", [False, True])
@pytest.mark.parametrize("unbiased", [False, True])
def test_ccc_loss_equals_one_minus_numpy_ccc(per_sequence, unbiased):
    y_true, y_pred, mask = _batch()
    mask[2] = 0  # a sequence with no face at all is left out of the per-sequence mean
    expected = _numpy_loss(y_true, y_pred, mask, per_sequence, unbiased)
    value = CCCLoss(per_sequence=per_sequence, unbiased=unbiased)(y_true, y_pred, sample_weight=mask)
    assert float(value) == pytest.approx(expected, abs=2e-6)
    functional = ccc_loss(y_true, y_pred, mask, per_sequence=per_sequence, unbiased=unbiased)
    assert float(functional) == pytest.approx(expected, abs=1e-12)  # float64 in, float64 out
    unmasked = _numpy_loss(y_true, y_pred, np.ones_like(mask), per_sequence, unbiased)
    assert float(CCCLoss(per_sequence=per_sequence, unbiased=unbiased)(y_true, y_pred)) == pytest.approx(unmasked, abs=2e-6)


def test_ccc_loss_on_clip_level_values_reads_the_batch_as_frames():
    y_true, y_pred, mask = _batch(shape=(30, 2))
    mask = mask[:, 0]  # one weight per clip
    expected = 1 - np.mean([ccc(y_true[:, d], y_pred[:, d], mask=mask) for d in range(2)])
    assert float(ccc_loss(y_true, y_pred, mask)) == pytest.approx(expected, abs=1e-12)


def test_ccc_loss_gradient_is_eq4():
    # Tzirakis et al. 2017, Eq. 4: dLc/dx = (2/N) (2 cov (x - mu_y) / psi^2 + (mu_y - y) / psi), with
    # 1/D for the mean over D dimensions (Eq. 5) and 0 for masked frames.
    y_true, y_pred, mask = _batch(seed=4, shape=(2, 15, 2))
    x = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = ccc_loss(tf.constant(y_true), x, tf.constant(mask))
    grad = tape.gradient(value, x).numpy()
    keep = mask.astype(bool)
    for d in range(2):
        xv, yv = y_pred[..., d][keep], y_true[..., d][keep]
        n = xv.size
        mu_x, mu_y = xv.mean(), yv.mean()
        cov = np.mean((xv - mu_x) * (yv - mu_y))
        psi = xv.var() + yv.var() + (mu_x - mu_y) ** 2
        eq4 = (2 / n) * (2 * cov * (y_pred[..., d] - mu_y) / psi**2 + (mu_y - y_true[..., d]) / psi) / 2
        np.testing.assert_allclose(grad[..., d][keep], eq4[keep], rtol=1e-9, atol=1e-12)
        assert np.all(grad[..., d][~keep] == 0)


@pytest.mark.parametrize("per_sequence", [False, True])
def test_ccc_loss_gradient_matches_finite_differences(per_sequence):
    y_true, y_pred, mask = _batch(seed=5, shape=(3, 8, 2))
    x = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = ccc_loss(tf.constant(y_true), x, tf.constant(mask), per_sequence=per_sequence)
    grad = tape.gradient(value, x).numpy()
    h = 1e-6
    numeric = np.zeros_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (_numpy_loss(y_true, up, mask, per_sequence) - _numpy_loss(y_true, down, mask, per_sequence)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-8)
    assert np.abs(grad).max() > 1e-3


def test_fit_with_a_frame_mask_reports_the_masked_ccc():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 12, 3)).astype("float32")
    y = (x[..., :2] * 0.8 + rng.normal(0, 0.5, size=(8, 12, 2))).astype("float32")
    w = (rng.random((8, 12)) > 0.3).astype("float32")
    inputs = keras.Input((12, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=CCCLoss(),
                  weighted_metrics=[StreamingCCC(num_dimensions=2, name="ccc"),
                                    StreamingCCC(num_dimensions=2, dimension=1, name="ccc_valence")])
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    pred = model.predict(x, verbose=0).astype("float64")
    # The reported loss is the mean of the two batches' losses (equal batch sizes).
    batch_losses = [_numpy_loss(y[b:b + 4], pred[b:b + 4], w[b:b + 4], per_sequence=False) for b in (0, 4)]
    assert history.history["loss"][0] == pytest.approx(np.mean(batch_losses), abs=1e-5)
    whole = [ccc(y[..., d].ravel(), pred[..., d].ravel(), mask=w.ravel()) for d in range(2)]
    assert history.history["ccc"][0] == pytest.approx(np.mean(whole), abs=1e-5)
    assert history.history["ccc_valence"][0] == pytest.approx(whole[1], abs=1e-5)
    # Without the mask the numbers would differ: the test can fail.
    assert np.mean(whole) != pytest.approx(np.mean([ccc(y[..., d].ravel(), pred[..., d].ravel()) for d in range(2)]), abs=1e-3)


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-11)])
def test_streaming_ccc_over_many_batches_equals_one_shot(dtype, tol):
    rng = np.random.default_rng(11)
    gold = rng.normal(3.0, 0.5, size=(60, 20, 2))  # an offset from 0 tests the numerical stability
    pred = 0.7 * gold + rng.normal(1.0, 0.4, size=gold.shape)
    mask = rng.random((60, 20)) > 0.25
    metric = StreamingCCC(num_dimensions=2, dtype=dtype)
    per_dim = StreamingCCC(num_dimensions=2, dimension=0, unbiased=True, dtype=dtype)
    start = 0
    for size in rng.integers(1, 6, size=30):
        stop = min(start + int(size), len(gold))
        for m in (metric, per_dim):
            m.update_state(gold[start:stop], pred[start:stop], sample_weight=mask[start:stop].astype(dtype))
        start = stop
    gold, pred, mask = gold[:start], pred[:start], mask[:start]
    expected = [ccc(gold[..., d].ravel(), pred[..., d].ravel(), mask=mask.ravel()) for d in range(2)]
    assert float(metric.result()) == pytest.approx(np.mean(expected), abs=tol)
    assert float(per_dim.result()) == pytest.approx(
        ccc(gold[..., 0].ravel(), pred[..., 0].ravel(), mask=mask.ravel(), unbiased=True), abs=tol)
    metric.reset_state()
    metric.update_state(gold[:2], pred[:2])
    assert float(metric.result()) == pytest.approx(
        np.mean([ccc(gold[:2, :, d].ravel(), pred[:2, :, d].ravel()) for d in range(2)]), abs=tol)


def test_mse_ignores_masked_frames():
    y_true, y_pred, mask = _batch(seed=8)
    expected = np.sum(mask[..., None] * (y_true - y_pred) ** 2) / (mask.sum() * y_true.shape[-1])
    assert float(MSELoss()(y_true, y_pred, sample_weight=mask)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.mse_loss(y_true, y_pred, mask)) == pytest.approx(expected, rel=1e-6)
    assert float(MSELoss()(y_true, y_pred)) == pytest.approx(np.mean((y_true - y_pred) ** 2), rel=1e-6)


def test_losses_and_metric_round_trip_through_keras_serialisation():
    for obj in (CCCLoss(per_sequence=True, unbiased=True), MSELoss(),
                ASTNetLoss(trend_weight=3.0, siamese_weight=0.0, num_intervals=4, trend_step=2),
                StreamingCCC(num_dimensions=3, dimension=2, name="ccc_liking")):
        config = keras.saving.serialize_keras_object(obj)
        json.dumps(config)
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(obj)
        assert restored.get_config() == obj.get_config()


# ------------------------------------------------------------------------------------------------
# Other Keras backends, each in its own process (the backend is fixed when keras is imported).
# ------------------------------------------------------------------------------------------------

_BACKEND_SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    from emotrack.models.losses import CCCLoss, StreamingCCC
    from emotrack.evaluation.metrics import ccc
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 10, 2)).astype("float32")
    p = (0.5 * y + rng.normal(size=y.shape)).astype("float32")
    w = (rng.random((3, 10)) > 0.3).astype("float32")
    expected = 1 - np.mean([ccc(y[..., d].ravel(), p[..., d].ravel(), mask=w.ravel()) for d in range(2)])
    value = float(keras.ops.convert_to_numpy(CCCLoss()(y, p, sample_weight=w)))
    metric = StreamingCCC(num_dimensions=2)
    for b in range(3):
        metric.update_state(y[b:b + 1], p[b:b + 1], sample_weight=w[b:b + 1])
    streamed = float(keras.ops.convert_to_numpy(metric.result()))
    assert keras.backend.backend() == "{backend}", keras.backend.backend()
    assert abs(value - expected) < 1e-5, (value, expected)
    assert abs(streamed - (1 - expected)) < 1e-5, (streamed, expected)
    print("ok")
""")


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_ccc_loss_on_other_backends(backend):
    # Keras' numpy backend imports parts of JAX.
    for package in {"numpy": ["jax"], "jax": ["jax"], "torch": ["torch"]}[backend]:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"the {backend} backend needs {package}, which is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT.format(backend=backend)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------------
# AST-Net (Wang & Hsu 2017, Eq. 1-6) on a hand-worked pair of clips: batch 1, N = 4, D = 1.
# ------------------------------------------------------------------------------------------------

G0, Y0 = [0.0, 1.0, 3.0, 2.0], [0.0, 0.0, 2.0, 2.0]  # clip starting at frame t
G1, Y1 = [1.0, 3.0, 2.0, 4.0], [1.0, 1.0, 2.0, 3.0]  # clip starting at frame t + 1


def _clip(values):
    return np.asarray(values, dtype="float64")[None, :, None]


def test_astnet_terms_on_a_hand_worked_clip():
    g, y = _clip(G0), _clip(Y0)
    # label: errors [0, 1, 1, 0] -> ||gt - y||^2 over the clip = 2 (no 1/N, no 1/2: the form of Eq. 5)
    assert float(label_loss(g, y)) == pytest.approx(2.0)
    # trend, step 1: gold changes [1, 2, -1], predicted [0, 2, 0] -> errors [1, 0, -1] -> 2 / (2*3)
    assert float(trend_loss(g, y)) == pytest.approx(1 / 3)
    # trend, step 2: gold changes [3, 1], predicted [2, 2] -> errors [1, -1] -> 2 / (2*2)
    assert float(trend_loss(g, y, step=2)) == pytest.approx(0.5)
    # local, M = 2 intervals {0, 1}, {2, 3}: gold ranges [1, 1], predicted [0, 0] -> 2 / (2*2)
    assert float(local_loss(g, y, num_intervals=2)) == pytest.approx(0.5)
    # local, M = 4 (one frame each): every range is 0
    assert float(local_loss(g, y, num_intervals=4)) == pytest.approx(0.0)
    # global: gold range 3, predicted range 2 -> (3 - 2)^2
    assert float(global_loss(g, y)) == pytest.approx(1.0)
    # siamese: gold steps G1 - G0 = [1, 2, -1, 2], predicted Y1 - Y0 = [1, 1, 0, 1]
    # -> errors [0, 1, -1, 1] -> 3 / (2*4)
    pair_g, pair_y = np.stack([_clip(G0), _clip(G1)], 1), np.stack([_clip(Y0), _clip(Y1)], 1)
    assert float(siamese_loss(pair_g, pair_y)) == pytest.approx(0.375)
    # Two dimensions, the second twice the first: squared norms sum, 1 + 4 = 5 times.
    g2, y2 = np.concatenate([g, 2 * g], -1), np.concatenate([y, 2 * y], -1)
    assert float(label_loss(g2, y2)) == pytest.approx(10.0)
    assert float(global_loss(g2, y2)) == pytest.approx(5.0)


def test_astnet_composite_loss_with_the_papers_weights():
    pair_g, pair_y = np.stack([_clip(G0), _clip(G1)], 1), np.stack([_clip(Y0), _clip(Y1)], 1)
    loss = ASTNetLoss(num_intervals=2)
    terms = {k: float(v) for k, v in loss.terms(pair_g, pair_y).items()}
    # Clip 1 by hand: label errors [0, 2, 0, 1] -> 5; trend errors [2, -2, 1] -> 9/6;
    # local ranges gold [2, 2], predicted [0, 1] -> (4 + 1)/4; global (3 - 2)^2 = 1.
    # The prediction terms are the mean over the two clips.
    expected = {"label": (2.0 + 5.0) / 2, "trend": (1 / 3 + 1.5) / 2, "local": (0.5 + 1.25) / 2,
                "global": 1.0, "siamese": 0.375}
    assert terms == pytest.approx(expected)
    total = expected["label"] + 10 * (expected["trend"] + expected["local"] + expected["global"]) + 1000 * 0.375
    assert float(loss(pair_g, pair_y)) == pytest.approx(total)
    assert total == pytest.approx(406.4166666666667)


def test_astnet_ablation_and_single_clips():
    weights = ASTNetLoss.ablation("La+T+S").get_config()
    assert (weights["label_weight"], weights["trend_weight"], weights["local_weight"], weights["global_weight"],
            weights["siamese_weight"]) == (1.0, 10.0, 0.0, 0.0, 1000.0)
    only_trend = ASTNetLoss.ablation("T", num_intervals=2)
    assert float(only_trend(_clip(G0), _clip(Y0))) == pytest.approx(10 / 3)
    with pytest.raises(ValueError, match="unknown AST-Net term"):
        ASTNetLoss.ablation("La+X")
    with pytest.raises(ValueError, match="clip pairs"):
        ASTNetLoss()(_clip(G0), _clip(Y0))


def test_astnet_masked_frames_do_not_count():
    g, y = _clip(G0), _clip(Y0)
    mask = np.array([[1.0, 1.0, 1.0, 0.0]])
    # frames 0-2 only: label errors [0, 1, 1] -> 2; trend errors [1, 0] -> 1/4;
    # local {0, 1}: ranges 1 vs 0, {2}: 0 vs 0 -> 1/4; global: ranges 3 vs 2 -> 1.
    expected = {label_loss: 2.0, trend_loss: 0.25, global_loss: 1.0}
    for fn, value in expected.items():
        assert float(fn(g, y, mask)) == pytest.approx(value)
    assert float(local_loss(g, y, mask, num_intervals=2)) == pytest.approx(0.25)
    y_changed = y.copy()
    y_changed[0, 3, 0] = 100.0
    for fn in (label_loss, trend_loss, global_loss):
        assert float(fn(g, y_changed, mask)) == pytest.approx(float(fn(g, y, mask)))
    assert float(local_loss(g, y_changed, mask, num_intervals=2)) == pytest.approx(0.25)
    pair_g, pair_y = np.stack([g, _clip(G1)], 1), np.stack([y_changed, _clip(Y1)], 1)
    pair_mask = np.stack([mask, np.ones_like(mask)], 1)
    # siamese over frames 0-2: errors [0, 1, -1] -> 2/6
    assert float(siamese_loss(pair_g, pair_y, pair_mask)) == pytest.approx(1 / 3)
    assert np.isfinite(float(ASTNetLoss()(pair_g, pair_y, sample_weight=pair_mask)))


def test_astnet_range_terms_do_not_see_the_sign_but_the_label_term_does():
    # A 10 s clip (50 frames) of a rating that swings over one period, and a prediction with its ranges
    # but the wrong sign (mirrored about the clip's mean): the local and global terms (Eq. 4, 5) score it
    # as the rating itself, and only the label and trend terms tell them apart. With the label term the
    # clip's squared distance, the paper's La+T+Lo+G weights score the mirrored prediction worse than
    # the constant clip mean, so a prediction of the wrong sign is no cheaper than none.
    t = np.arange(50) / 50.0
    gold = (0.1 + 0.5 * np.sin(2 * np.pi * t))[None, :, None]
    mirrored = 2 * gold.mean() - gold
    constant = np.full_like(gold, gold.mean())
    assert float(global_loss(gold, mirrored)) == pytest.approx(0.0, abs=1e-12)
    assert float(local_loss(gold, mirrored)) == pytest.approx(0.0, abs=1e-12)
    # the label term: ||gt - y||^2 = sum over frames of (2 (gold - mean))^2
    distance = float(np.sum(np.square(2 * (gold - gold.mean()))))
    assert float(label_loss(gold, mirrored)) == pytest.approx(distance)
    loss = ASTNetLoss.ablation("La+T+Lo+G")
    assert float(loss(gold, mirrored)) > float(loss(gold, constant)) > float(loss(gold, gold)) == 0.0


def test_astnet_loss_gradients_are_finite_with_a_mask():
    pair_g = np.stack([_clip(G0), _clip(G1)], 1)
    x = tf.Variable(np.stack([_clip(Y0), _clip(Y1)], 1))
    pair_mask = np.array([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    with tf.GradientTape() as tape:
        value = ASTNetLoss(num_intervals=2)(pair_g, x, sample_weight=pair_mask)
    grad = tape.gradient(value, x).numpy()
    assert np.all(np.isfinite(grad))
    assert np.all(grad[0, 1] == 0) and np.all(grad[0, 0, 2:] == 0)


def _astnet_terms_by_loops(g, y, mask, num_intervals):
    """Eq. 1-5 for one batch of clips (batch, N, D), written with Python loops over clips, frames and
    intervals: the emotrack reading (the label term the clip's squared distance sum_i ||gt_i - y_i||^2,
    the others 1/(2K) sums of squared norms, the global one with no 1/2; masked frames left out, the
    mean over the clips that have an item)."""
    def mean_over_clips(per_clip):
        kept = [v for v in per_clip if v is not None]
        return sum(kept) / len(kept)

    def half_mean(items):
        return None if not items else sum(float(np.sum(np.square(d))) for d in items) / (2 * len(items))

    def rng_of(values):
        return np.max(values, axis=0) - np.min(values, axis=0)

    out = {"label": [], "trend": [], "local": [], "global": []}
    for b in range(g.shape[0]):
        valid = [i for i in range(g.shape[1]) if mask[b, i] > 0]
        label = sum(float(np.sum(np.square(g[b, i] - y[b, i]))) for i in valid)
        out["label"].append(label if valid else None)
        out["trend"].append(half_mean([(g[b, i] - g[b, i - 1]) - (y[b, i] - y[b, i - 1])
                                       for i in valid if i - 1 in valid]))
        intervals = [[i for i in valid if i * num_intervals // g.shape[1] == k] for k in range(num_intervals)]
        out["local"].append(half_mean([rng_of(g[b, f]) - rng_of(y[b, f]) for f in intervals if f]))
        out["global"].append(float(np.sum(np.square(rng_of(g[b, valid]) - rng_of(y[b, valid])))) if valid else None)
    return {name: mean_over_clips(values) for name, values in out.items()}


def test_astnet_terms_match_a_loop_implementation_on_random_clips():
    # Two dimensions, a batch of 6 clips of 20 frames (the CPU-size clips), a random frame mask with
    # one clip wholly masked: every term of the Keras loss equals the loops' value.
    g, y, mask = _batch(seed=3, shape=(6, 20, 2), keep=0.8)
    mask[2] = 0.0
    expected = _astnet_terms_by_loops(g, y, mask, num_intervals=5)
    terms = ASTNetLoss.ablation("La+T+Lo+G").terms(g, y, mask)
    assert {k: float(v) for k, v in terms.items()} == pytest.approx(expected, rel=1e-6)
    weights = {"label": 1.0, "trend": 10.0, "local": 10.0, "global": 10.0}
    assert float(ASTNetLoss.ablation("La+T+Lo+G")(g, y, sample_weight=mask)) == pytest.approx(
        sum(weights[k] * v for k, v in expected.items()), rel=1e-6)
