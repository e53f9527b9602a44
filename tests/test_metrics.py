"""emotrack.evaluation.metrics against audmetric (an independent implementation) and hand-worked numbers."""

import json
import math
import warnings

import audmetric
import numpy as np
import pytest

from emotrack.evaluation import metrics
from emotrack.evaluation.metrics import (
    DegenerateInputWarning,
    ccc,
    compute_metrics,
    mae,
    mape,
    pcc,
    rmse,
)


def _random_pairs(seed=0, count=40):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, 400))
        gold = rng.normal(rng.normal(0, 3), rng.uniform(0.01, 2), size=n)
        pred = rng.uniform(-1, 1) * gold + rng.normal(rng.normal(0, 1), rng.uniform(0.01, 2), size=n)
        yield gold, pred


def test_ccc_pcc_mae_rmse_match_audmetric_on_random_data():
    for gold, pred in _random_pairs():
        assert ccc(gold, pred) == pytest.approx(audmetric.concordance_cc(gold, pred), abs=1e-9)
        assert pcc(gold, pred) == pytest.approx(audmetric.pearson_cc(gold, pred), abs=1e-9)
        assert mae(gold, pred) == pytest.approx(audmetric.mean_absolute_error(gold, pred), abs=1e-9)
        assert rmse(gold, pred) == pytest.approx(math.sqrt(audmetric.mean_squared_error(gold, pred)), abs=1e-9)


@pytest.mark.parametrize(
    "gold, pred",
    [
        ([0.0, 1.0], [1.0, 0.0]),  # two frames, perfectly discordant: -1
        ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]),  # identical: 1
        (np.linspace(0, 1, 50) + 1e6, np.linspace(0, 1, 50) + 1e6 + 0.1),  # large common offset
        (np.sin(np.arange(300) / 7.0) * 1e-6, np.cos(np.arange(300) / 7.0) * 1e-6),  # tiny variances
        (np.arange(10.0), np.arange(10.0)[::-1] * 3 - 5),  # negative concordance
        (np.full(20, -5.0), np.arange(20.0)),  # constant gold, audmetric's value is 0
    ],
)
def test_ccc_matches_audmetric_on_edge_cases(gold, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        value = ccc(gold, pred)
    assert value == pytest.approx(audmetric.concordance_cc(np.asarray(gold), np.asarray(pred)), abs=1e-9)


def test_worked_example_by_hand():
    # gold [0, 1, 2], pred [0, 1, 1]: means 1 and 2/3; population var 2/3 and 2/9; cov 1/3;
    # squared mean difference 1/9. CCC = (2/3) / (2/3 + 2/9 + 1/9) = 2/3.
    gold, pred = [0.0, 1.0, 2.0], [0.0, 1.0, 1.0]
    assert ccc(gold, pred) == pytest.approx(2 / 3, abs=1e-12)
    # N - 1: var 1 and 1/3, cov 1/2: CCC = 1 / (1 + 1/3 + 1/9) = 9/13.
    assert ccc(gold, pred, unbiased=True) == pytest.approx(9 / 13, abs=1e-12)
    # PCC = (1/3) / sqrt(2/3 * 2/9) = sqrt(3)/2.
    assert pcc(gold, pred) == pytest.approx(math.sqrt(3) / 2, abs=1e-12)
    assert mae(gold, pred) == pytest.approx(1 / 3, abs=1e-12)
    assert rmse(gold, pred) == pytest.approx(math.sqrt(1 / 3), abs=1e-12)
    # MAPE: the frame with gold 0 is left out; |1-1|/1 and |1-2|/2 -> mean 0.25 -> 25 %.
    with pytest.warns(DegenerateInputWarning, match="gold standard of 0"):
        assert mape(gold, pred) == pytest.approx(25.0, abs=1e-12)
    # Negative gold: the denominator is |y|; |(-1.5) - (-2)| / 2 = 25 %.
    assert mape([-2.0], [-1.5]) == pytest.approx(25.0)


def test_unbiased_ccc_against_numpy_sample_moments():
    for gold, pred in _random_pairs(seed=3, count=10):
        cov = np.cov(gold, pred, ddof=1)[0, 1]
        expected = 2 * cov / (np.var(gold, ddof=1) + np.var(pred, ddof=1) + (gold.mean() - pred.mean()) ** 2)
        assert ccc(gold, pred, unbiased=True) == pytest.approx(expected, abs=1e-12)
        assert ccc(gold, pred, unbiased=True) != pytest.approx(ccc(gold, pred), abs=1e-12)


def test_mask_excludes_frames_even_when_they_hold_nan():
    rng = np.random.default_rng(1)
    gold, pred = rng.normal(size=100), rng.normal(size=100)
    mask = rng.random(100) > 0.3
    gold_masked = np.where(mask, gold, -5.0)  # Aff-Wild2's "no rating" value
    pred_masked = np.where(mask, pred, np.nan)  # no face, no prediction
    expected = audmetric.concordance_cc(gold[mask], pred[mask])
    assert ccc(gold_masked, pred_masked, mask=mask) == pytest.approx(expected, abs=1e-12)
    assert mae(gold_masked, pred_masked, mask=mask) == pytest.approx(np.mean(np.abs(gold - pred)[mask]))
    with pytest.raises(ValueError, match="NaN"):
        ccc(gold_masked, pred_masked)


def test_degenerate_inputs_give_defined_values_with_a_warning():
    assert math.isnan(audmetric.concordance_cc([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]))  # the reference's NaN
    cases = [
        (dict(y_true=[1.0, 1.0, 1.0], y_pred=[1.0, 1.0, 1.0]), "both constant"),
        (dict(y_true=[0.0, 1.0, 2.0], y_pred=[0.5, 0.5, 0.5]), "prediction is constant"),
        (dict(y_true=[0.2, 0.2, 0.2], y_pred=[0.0, 1.0, 2.0]), "gold standard is constant"),
        (dict(y_true=[0.3], y_pred=[0.3]), "only one valid frame"),
        (dict(y_true=[0.0, 1.0], y_pred=[1.0, 2.0], mask=[0, 0]), "all frames are masked"),
        (dict(y_true=[], y_pred=[]), "all frames are masked"),
    ]
    for kwargs, reason in cases:
        for fn in (ccc, pcc):
            with pytest.warns(DegenerateInputWarning, match=reason):
                assert fn(**kwargs) == 0.0
    with pytest.warns(DegenerateInputWarning, match="all frames are masked"):
        assert math.isnan(mae([0.0, 1.0], [1.0, 2.0], mask=[0, 0]))
    with pytest.warns(DegenerateInputWarning, match="2 of 2 frames have a gold standard of 0"):
        with pytest.warns(DegenerateInputWarning, match="no frame with a nonzero"):
            assert math.isnan(mape([0.0, 0.0], [1.0, 2.0]))


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="frames"):
        ccc([1.0, 2.0, 3.0], [1.0, 2.0])


def _sessions(seed=2, lengths=(50, 80, 30)):
    rng = np.random.default_rng(seed)
    golds = [rng.normal(size=(n, 2)) for n in lengths]
    preds = [0.6 * g + rng.normal(0.1, 0.8, size=g.shape) for g in golds]
    masks = [rng.random(n) > 0.2 for n in lengths]
    return golds, preds, masks


def test_compute_metrics_concat_and_mean_against_audmetric():
    golds, preds, masks = _sessions()
    concat = compute_metrics(golds, preds, masks, aggregation="concat")
    mean = compute_metrics(golds, preds, masks, aggregation="mean")
    for d, name in enumerate(("arousal", "valence")):
        gold_all = np.concatenate([g[m, d] for g, m in zip(golds, masks)])
        pred_all = np.concatenate([p[m, d] for p, m in zip(preds, masks)])
        assert concat[name]["CCC"] == pytest.approx(audmetric.concordance_cc(gold_all, pred_all), abs=1e-9)
        assert concat[name]["PCC"] == pytest.approx(audmetric.pearson_cc(gold_all, pred_all), abs=1e-9)
        per_session = [audmetric.concordance_cc(g[m, d], p[m, d]) for g, p, m in zip(golds, preds, masks)]
        assert mean[name]["CCC"] == pytest.approx(np.mean(per_session), abs=1e-9)
        assert mean[name]["CCC"] != pytest.approx(concat[name]["CCC"], abs=1e-6)
        assert set(concat[name]) == {"CCC", "PCC", "MAE", "MAPE", "RMSE"}
    assert concat["options"]["aggregation"] == "concat" and mean["options"]["aggregation"] == "mean"
    assert concat["options"]["unbiased"] is False
    assert concat["options"]["num_frames"]["arousal"] == sum(int(m.sum()) for m in masks)
    json.dumps(concat, allow_nan=False)


def test_compute_metrics_unbiased_option_is_applied_and_named():
    golds, preds, masks = _sessions(lengths=(6, 5))
    report = compute_metrics(golds, preds, masks, unbiased=True)
    gold_all = np.concatenate([g[m, 0] for g, m in zip(golds, masks)])
    pred_all = np.concatenate([p[m, 0] for p, m in zip(preds, masks)])
    assert report["arousal"]["CCC"] == pytest.approx(ccc(gold_all, pred_all, unbiased=True), abs=1e-12)
    assert report["options"]["unbiased"] is True and "N - 1" in report["options"]["ccc_moments"]


def test_compute_metrics_degenerate_sessions():
    golds, preds, masks = _sessions()
    masks[1] = np.zeros_like(masks[1])  # a session without a single face
    with pytest.warns(DegenerateInputWarning, match="session 1 has no valid frame"):
        mean = compute_metrics(golds, preds, masks, aggregation="mean")
    kept = [0, 2]
    expected = np.mean([audmetric.concordance_cc(golds[i][masks[i], 0], preds[i][masks[i], 0]) for i in kept])
    assert mean["arousal"]["CCC"] == pytest.approx(expected, abs=1e-9)

    all_masked = [np.zeros(len(g), bool) for g in golds]
    with pytest.warns(DegenerateInputWarning):
        report = compute_metrics(golds, preds, all_masked)
    assert report["valence"]["CCC"] == 0.0 and report["valence"]["MAE"] is None
    json.dumps(report, allow_nan=False)


def test_compute_metrics_per_session_and_shape_checks():
    golds, preds, masks = _sessions()
    report = compute_metrics(golds, preds, masks, per_session=True)
    assert len(report["sessions"]) == 3
    assert report["sessions"][2]["valence"]["CCC"] == pytest.approx(
        audmetric.concordance_cc(golds[2][masks[2], 1], preds[2][masks[2], 1]), abs=1e-9)
    with pytest.raises(ValueError, match="dimensions"):
        compute_metrics(golds, preds, masks, dimensions=("arousal",))
    with pytest.raises(ValueError, match="aggregation"):
        compute_metrics(golds, preds, masks, aggregation="median")
    with pytest.raises(ValueError, match="shape"):
        compute_metrics([golds[0]], [preds[1]])


def test_ccc_by_dimension_matches_compute_metrics():
    golds, preds, masks = _sessions()
    report = compute_metrics(golds, preds, masks, aggregation="mean")
    values = metrics.ccc_by_dimension(golds, preds, masks, aggregation="mean")
    np.testing.assert_allclose(values, [report["arousal"]["CCC"], report["valence"]["CCC"]], atol=1e-12)
