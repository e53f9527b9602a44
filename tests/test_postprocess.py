"""emotrack.evaluation.postprocess: every step recovers what was injected into a synthetic signal; the fitted chain
is saved and reloaded, and fitting never depends on test data."""

import json

import numpy as np
import pytest

from emotrack.data.align import ratings_for_frames, undo_label_delay
from emotrack.evaluation import metrics
from emotrack.evaluation.postprocess import (
    CHAINS,
    PostProcessingChain,
    chain_names,
    delay_search,
    raw_and_post_processed_metrics,
    register_chain,
)
from emotrack.evaluation.postprocess_steps import (
    STEPS,
    Step,
    mean_filtering,
    median_filter,
    register_step,
    scale_normalisation,
    shift_prediction,
    time_delay,
)

RATE = 25.0


def _smooth(rng, length, dims=2):
    """Slowly varying ratings (periods of 8 to 60 s at 25 Hz)."""
    t = np.arange(length) / RATE
    columns = []
    for _ in range(dims):
        freqs = rng.uniform(1 / 60, 1 / 8, size=3)
        phases = rng.uniform(0, 2 * np.pi, size=3)
        columns.append(0.1 + 0.3 * np.sum(np.sin(2 * np.pi * freqs * t[:, None] + phases), axis=1) / 3)
    return np.stack(columns, axis=1)


def _golds(seed=0, lengths=(1500, 1200, 1800)):
    rng = np.random.default_rng(seed)
    return [_smooth(rng, n) for n in lengths]


def _ccc(golds, preds, d):
    return metrics.ccc_by_dimension(golds, preds)[d]


def test_shift_functions_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(shift_prediction(x, 1), [1, 1, 2, 3])
    np.testing.assert_array_equal(shift_prediction(x, -1), [2, 3, 4, 4])
    np.testing.assert_array_equal(shift_prediction(x, 9), [1, 1, 1, 1])
    np.testing.assert_array_equal(ratings_for_frames(x, 2), [3, 4, 4, 4])
    np.testing.assert_array_equal(undo_label_delay(x, 2), [1, 1, 1, 2])
    np.testing.assert_array_equal(time_delay(x, 1), [2, 3, 4, 4])  # Teixeira Eq. 3: y(f + t)
    np.testing.assert_array_equal(median_filter(np.array([0.0, 0.0, 5.0, 0.0, 0.0]), 3), [0, 0, 0, 0, 0])


def test_centring_recovers_an_injected_bias():
    golds = _golds()
    preds = [g + np.array([0.3, -0.2]) for g in golds]
    chain = PostProcessingChain(steps=["centring"]).fit(golds, preds, RATE)
    steps = chain.to_dict()["fitted_steps"][0]["dimensions"]
    assert steps["arousal"]["params"]["bias"] == pytest.approx(-0.3, abs=1e-12)
    assert steps["valence"]["params"]["bias"] == pytest.approx(0.2, abs=1e-12)
    assert steps["arousal"]["kept"] and steps["arousal"]["devel_ccc_after"] > steps["arousal"]["devel_ccc_before"]
    np.testing.assert_allclose(chain.apply(preds[0], RATE), golds[0], atol=1e-12)


def test_scaling_recovers_an_injected_scale():
    golds = _golds()
    mean = np.concatenate(golds).mean(axis=0)
    preds = [mean + np.array([0.5, 4.0]) * (g - mean) for g in golds]
    chain = PostProcessingChain(steps=["scaling"]).fit(golds, preds, RATE)
    steps = chain.to_dict()["fitted_steps"][0]["dimensions"]
    assert steps["arousal"]["params"]["factor"] == pytest.approx(2.0, rel=1e-12)
    assert steps["valence"]["params"]["factor"] == pytest.approx(0.25, rel=1e-12)
    np.testing.assert_allclose(chain.apply(preds[1], RATE), golds[1], atol=1e-12)


def test_time_shift_recovers_an_injected_delay():
    golds = _golds()
    preds = [shift_prediction(g, -12) for g in golds]  # the prediction runs 12 frames (0.48 s) early
    chain = PostProcessingChain(steps=["time_shift"]).fit(golds, preds, RATE)
    entry = chain.to_dict()["fitted_steps"][0]["dimensions"]["valence"]
    assert entry["kept"] and entry["params"]["shift_frames"] == 12
    assert entry["params"]["shift_s"] == pytest.approx(0.48)
    np.testing.assert_array_equal(chain.apply(preds[0], RATE)[12:-12], golds[0][12:-12])


def test_median_filter_removes_impulsive_noise():
    golds = _golds()
    rng = np.random.default_rng(3)
    preds = []
    for g in golds:
        spikes = (rng.random(g.shape) < 0.1) * rng.choice([-1.0, 1.0], size=g.shape)
        preds.append(g + spikes)
    chain = PostProcessingChain(steps=["median_filter"]).fit(golds, preds, RATE)
    entry = chain.to_dict()["fitted_steps"][0]["dimensions"]["arousal"]
    assert entry["kept"] and entry["devel_ccc_after"] > entry["devel_ccc_before"] + 0.3
    assert 0.4 <= entry["params"]["window_s"] <= 20.0 and entry["params"]["window_frames"] % 2 == 1
    filtered = chain.apply(preds[0], RATE)
    raw_error = np.sqrt(np.mean((preds[0] - golds[0]) ** 2))
    assert np.sqrt(np.mean((filtered - golds[0]) ** 2)) < raw_error / 10


def test_tzirakis_chain_recovers_everything_and_generalises_to_test():
    rng = np.random.default_rng(4)
    golds = _golds(seed=1)
    tests = _golds(seed=2)

    def corrupt(g):
        pred = 0.5 * (g - 0.1) + 0.1 + 0.25  # shrunk spread and a bias
        pred = shift_prediction(pred, -15)  # 0.6 s early
        return pred + (rng.random(g.shape) < 0.05) * rng.choice([-0.5, 0.5], size=g.shape)

    preds, test_preds = [corrupt(g) for g in golds], [corrupt(g) for g in tests]
    chain = PostProcessingChain("tzirakis2017").fit(golds, preds, RATE)
    fitted = {s["name"]: s["dimensions"]["arousal"] for s in chain.to_dict()["fitted_steps"]}
    assert [s for s in fitted if fitted[s]["kept"]] == ["median_filter", "centring", "scaling", "time_shift"]
    assert fitted["centring"]["params"]["bias"] == pytest.approx(-0.25, abs=0.02)
    assert fitted["scaling"]["params"]["factor"] == pytest.approx(2.0, abs=0.1)
    assert fitted["time_shift"]["params"]["shift_frames"] == 15
    for before, after in zip(list(fitted.values()), list(fitted.values())[1:]):  # the record is a chain
        assert after["devel_ccc_before"] == pytest.approx(before["devel_ccc_after"])
    report = raw_and_post_processed_metrics(tests, test_preds, chain, rate_hz=RATE)
    for dim in ("arousal", "valence"):
        assert report["raw"][dim]["CCC"] < 0.6 and report["post_processed"][dim]["CCC"] > 0.95
    json.dumps(report, allow_nan=False)


def test_a_step_that_does_not_help_is_not_kept():
    golds = _golds()
    chain = PostProcessingChain("tzirakis2017").fit(golds, golds, RATE)
    assert not any(e["kept"] for s in chain.to_dict()["fitted_steps"] for e in s["dimensions"].values())
    np.testing.assert_array_equal(chain.apply(golds[0]), golds[0])


def test_fitting_never_depends_on_test_data(tmp_path):
    rng = np.random.default_rng(5)
    golds = _golds()
    preds = [0.7 * g + 0.1 + rng.normal(0, 0.05, g.shape) for g in golds]
    chain = PostProcessingChain().fit(golds, preds, RATE)
    fitted = json.dumps(chain.to_dict(), sort_keys=True)
    test_a, test_b = _golds(seed=8), _golds(seed=9)
    for tests in (test_a, test_b):
        raw_and_post_processed_metrics(tests, [0.5 * t for t in tests], chain, rate_hz=RATE)
        chain.apply(tests[0] * 3, RATE)
        assert json.dumps(chain.to_dict(), sort_keys=True) == fitted
    refit = PostProcessingChain().fit(golds, preds, RATE)
    assert json.dumps(refit.to_dict(), sort_keys=True) == fitted
    # The chain is a pure function of devel: other devel data changes it.
    other = PostProcessingChain().fit(golds, [p + 0.2 for p in preds], RATE)
    assert json.dumps(other.to_dict(), sort_keys=True) != fitted


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    golds = _golds()
    preds = [shift_prediction(0.5 * g, -5) + rng.normal(0, 0.05, g.shape) for g in golds]
    chain = PostProcessingChain().fit(golds, preds, RATE)
    path = chain.save(tmp_path)
    assert path.name == "postprocessing.json"
    data = json.loads(path.read_text())
    for step in data["fitted_steps"]:
        for entry in step["dimensions"].values():
            assert {"kept", "params", "devel_ccc_before", "devel_ccc_after"} <= set(entry)
    assert data["devel_ccc"]["post_processed"]["arousal"] > data["devel_ccc"]["raw"]["arousal"]
    loaded = PostProcessingChain.load(tmp_path)
    assert loaded.to_dict() == chain.to_dict()
    new = rng.normal(size=(300, 2))
    np.testing.assert_array_equal(loaded.apply(new, RATE), chain.apply(new, RATE))
    with pytest.raises(ValueError, match="fitted at 25.0 Hz"):
        loaded.apply(new, rate_hz=50.0)
    with pytest.raises(FileNotFoundError):
        PostProcessingChain.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not fitted"):
        PostProcessingChain().apply(new)


def test_teixeira_equations_by_hand():
    # Eq. 1 with training labels [1, 2, 3, 4]: mean 2.5, std sqrt(1.25).
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(scale_normalisation([2.5, 3.0], labels.mean(), labels.std()),
                               [0.0, 0.5 / np.sqrt(1.25)])
    # Eq. 2: y' - mean(y_ltr) + mean(y'_tr) = 0.4 - 2.5 + 2.0.
    assert mean_filtering(0.4, 2.5, 2.0) == pytest.approx(-0.1)


def test_teixeira_chain_uses_training_statistics_and_recovers_a_delay():
    rng = np.random.default_rng(7)
    train, golds = _golds(seed=3), _golds(seed=4)
    mu = np.concatenate(train).mean(axis=0)
    sigma = np.concatenate(train).std(axis=0)
    # Predictions in z-score units (Eq. 1 would be harmful) but 4 frames late.
    def predict(g):
        return shift_prediction((g - mu) / sigma, 4) + rng.normal(0, 0.01, g.shape)
    train_preds, preds = [predict(g) for g in train], [predict(g) for g in golds]
    chain = PostProcessingChain("teixeira2021").fit(golds, preds, RATE, train_golds=train, train_preds=train_preds)
    steps = {s["name"]: s["dimensions"]["arousal"] for s in chain.to_dict()["fitted_steps"]}
    assert steps["scale_normalisation"]["params"]["label_mean"] == pytest.approx(mu[0])
    assert steps["scale_normalisation"]["params"]["label_std"] == pytest.approx(sigma[0])
    assert steps["mean_filtering"]["params"]["prediction_mean"] == pytest.approx(
        np.concatenate(train_preds)[:, 0].mean())
    assert steps["time_delay"]["kept"] and steps["time_delay"]["params"]["t"] == 4

    # Shrunk predictions in label units: Eq. 1 raises the devel CCC and is kept.
    def shrunk(g):
        return mu + 0.2 * (g - mu) + rng.normal(0, 0.005, g.shape)
    chain = PostProcessingChain("teixeira2021", steps=["scale_normalisation"]).fit(
        golds, [shrunk(g) for g in golds], RATE, train_golds=train)
    entry = chain.to_dict()["fitted_steps"][0]["dimensions"]["valence"]
    assert entry["kept"] and entry["devel_ccc_after"] > entry["devel_ccc_before"]
    with pytest.raises(ValueError, match="training partition"):
        PostProcessingChain("teixeira2021").fit(golds, preds, RATE)


def test_delay_search_finds_the_annotation_delay():
    rng = np.random.default_rng(8)
    features = [_smooth(rng, n, dims=3) for n in (900, 1100, 1000, 800)]
    lags = (6, 9)  # arousal and valence ratings follow the features 6 and 9 frames later
    ratings = [np.stack([shift_prediction(f[:, 0] - f[:, 1], lags[0]), shift_prediction(f[:, 2], lags[1])], 1)
               for f in features]
    train_x, dev_x = features[:2], features[2:]
    train_y, dev_y = ratings[:2], ratings[2:]

    def fit_predict(delay):
        x = np.concatenate([np.c_[f, np.ones(len(f))] for f in train_x])
        y = np.concatenate([ratings_for_frames(r, delay) for r in train_y])
        weights = np.linalg.lstsq(x, y, rcond=None)[0]
        return [np.c_[f, np.ones(len(f))] @ weights for f in dev_x]

    result = delay_search(fit_predict, dev_y, delays=range(0, 16), rate_hz=RATE)
    assert result["best_delay"] == {"arousal": 6, "valence": 9}
    assert result["best_devel_ccc"]["arousal"] > 0.999
    assert result["devel_ccc"]["arousal"][0] < result["best_devel_ccc"]["arousal"]
    assert result["delays_s"][6] == pytest.approx(0.24)


def test_every_chain_names_registered_steps_with_their_references():
    assert chain_names() == list(CHAINS) and {"tzirakis2017", "teixeira2021", "none"} <= set(CHAINS)
    for steps in CHAINS.values():
        for name in steps:
            assert STEPS[name].name == name and STEPS[name].reference
    assert not PostProcessingChain("none").needs_fitting
    assert PostProcessingChain("teixeira2021").needs_training_partition
    assert not PostProcessingChain("tzirakis2017").needs_training_partition
    with pytest.raises(ValueError, match="unknown post-processing chain 'avec'.*tzirakis2017, teixeira2021, none"):
        PostProcessingChain("avec")
    with pytest.raises(ValueError, match="not registered"):
        register_chain("with_a_typo", ["median_filter", "centering"])


@pytest.fixture
def offset_step():
    """A step defined here, outside the package: a constant offset fitted as the median of gold - pred."""

    @register_step
    class MedianOffset(Step):
        name = "median_offset"
        reference = "none: a step of the tests"

        def fit(self, pred, gold, context):
            residuals = np.concatenate([(g - p)[m] for g, p, m in zip(gold, pred, context.mask)])
            self.params = {"offset": float(np.median(residuals))}
            return self

        def apply(self, pred):
            return pred + self.params["offset"]

    register_chain("smoothed_offset", ["median_filter", "median_offset"])
    yield MedianOffset
    del STEPS["median_offset"], CHAINS["smoothed_offset"]


def test_a_step_registered_outside_the_package_runs_in_a_chain(offset_step, tmp_path):
    golds = [np.array([[0.1, -0.2], [0.3, 0.0], [0.2, 0.4], [0.5, 0.1], [0.0, -0.3]])]
    preds = [golds[0] + np.array([[-0.1, 1.0], [-0.3, 1.0], [-0.2, 1.0], [-0.2, 1.0], [-0.6, 1.0]])]
    # Median filtering cannot help (a 1-frame window is the smallest candidate and changes nothing).
    chain = PostProcessingChain("smoothed_offset", median_windows_s=[0.04]).fit(golds, preds, 25.0)
    assert "smoothed_offset" in chain_names()
    fitted = {s["name"]: s["dimensions"] for s in chain.to_dict()["fitted_steps"]}
    # gold - pred is (0.1, 0.3, 0.2, 0.2, 0.6) for arousal: median 0.2; -1.0 everywhere for valence.
    assert fitted["median_offset"]["arousal"]["params"] == {"offset": pytest.approx(0.2)}
    assert fitted["median_offset"]["valence"]["params"] == {"offset": pytest.approx(-1.0)}
    assert all(fitted["median_offset"][d]["kept"] and not fitted["median_filter"][d]["kept"] for d in fitted["median_offset"])
    new = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(chain.apply(new, 25.0), [[1.2, 1.0], [3.2, 3.0]])
    np.testing.assert_allclose(PostProcessingChain.load(chain.save(tmp_path)).apply(new), [[1.2, 1.0], [3.2, 3.0]])
    with pytest.raises(ValueError, match="exists already"):
        @register_step
        class Another(Step):
            name = "median_offset"
            reference = "none"
