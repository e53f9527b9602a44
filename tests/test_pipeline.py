"""The input pipeline's clip forms (subsampled, clip-level labels, Siamese pairs), the stitching
of clip predictions back to frames, and each model family trained and evaluated end to end."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.data.clips import clip_hop, clip_span, clip_starts
from emotrack.data.pipeline import count_windows, session_arrays, training_windows
from emotrack.inference.session import stitch_clips


@pytest.fixture(scope="module")
def session(tiny_tfr):
    return session_arrays(tiny_tfr, "train")[0]


def _clips(tfr, **kwargs):
    return list(training_windows(tfr, "train", batch_size=1, shuffle=False, **kwargs).as_numpy_iterator())


def test_subsampled_clips_take_every_nth_frame(tiny_tfr, session):
    clips = _clips(tiny_tfr, window=4, hop=5, frame_step=3)
    span = clip_span(4, 3)
    assert span == 10
    starts = range(0, len(session["frames"]) - span + 1, 5)
    assert len(clips) == len(starts) == count_windows(tiny_tfr, "train", 4, 5, 3)
    for (x, y, w), start in zip(clips, starts):
        np.testing.assert_array_equal(x[0], session["frames"][start:start + span:3].astype(np.float32))
        np.testing.assert_allclose(y[0], session["ratings"][start:start + span:3])


def test_clip_labels_fused_by_mean_and_extremum(tiny_tfr, session):
    for fusion in ("mean", "extremum"):
        clips = _clips(tiny_tfr, window=6, hop=6, target="clip", label_fusion=fusion)
        for (x, y, w), start in zip(clips, range(0, len(session["frames"]) - 5, 6)):
            ratings = session["ratings"][start:start + 6]
            valid = session["face_present"][start:start + 6] > 0
            if fusion == "mean":
                expected = ratings[valid].mean(axis=0)
            else:
                rows = np.abs(np.where(valid[:, None], ratings, 0)).argmax(axis=0)
                expected = ratings[rows, np.arange(ratings.shape[1])]
            assert x.shape == (1, 6, 112, 112, 1) and y.shape == (1, ratings.shape[1]) and w.shape == (1,)
            np.testing.assert_allclose(y[0], expected, rtol=1e-5, atol=1e-6)
            assert w[0] == pytest.approx(valid.mean())


def test_siamese_pairs_are_shifted_by_one_frame(tiny_tfr, session):
    clips = _clips(tiny_tfr, window=5, hop=7, frame_step=2, target="siamese")
    span = clip_span(5, 2)
    assert len(clips) == count_windows(tiny_tfr, "train", 5, 7, 2, "siamese") > 0
    for (x, y, w), start in zip(clips, range(0, len(session["frames"]) - span, 7)):
        assert x.shape == (1, 2, 5, 112, 112, 1) and y.shape[:3] == (1, 2, 5) and w.shape == (1, 2, 5)
        for c in (0, 1):
            np.testing.assert_array_equal(x[0, c], session["frames"][start + c:start + c + span:2].astype(np.float32))
            np.testing.assert_allclose(y[0, c], session["ratings"][start + c:start + c + span:2])


def test_overlap_ratio_gives_the_hop():
    # Teixeira 2021: 16 frames with 50% overlap repeat the last 8 frames; at 10 fps of a 50 fps video.
    assert clip_hop(16, None, 0.5, 1) == 8
    assert clip_hop(16, None, 0.5, 5) == 40
    assert clip_hop(64, None, 0.8, 1) == 13
    assert clip_hop(64, 7, None, 1) == 7
    with pytest.raises(ValueError, match="overlap"):
        clip_hop(16, None, 1.0, 1)


def test_stitching_averages_overlaps_and_recovers_clip_constant_signals():
    starts = clip_starts(6, 4, 2)
    np.testing.assert_array_equal(starts, [0, 2])
    np.testing.assert_allclose(stitch_clips(np.array([[1.0], [3.0]]), starts, 4, 6)[:, 0], [1, 1, 2, 2, 3, 3])
    # A signal that is constant over each clip of non-overlapping clips comes back exactly,
    # including the extra clip that covers the end of the session.
    starts = clip_starts(23, 5, 5)
    np.testing.assert_array_equal(starts, [0, 5, 10, 15, 18])
    signal = np.repeat([0.1, -0.4, 0.7, 0.2], 5)[:, None]
    values = np.array([[0.1], [-0.4], [0.7], [0.2], [0.2]])
    np.testing.assert_array_equal(stitch_clips(values, starts, 5, 20 + 3)[:20], signal.astype(np.float32))


# The Teixeira rows at tiny size: random weights (declined, recorded), no validation split of the one
# training session, and the test partition reported too.
_TEIXEIRA_TINY = ["model.options.weights=none", "data.validation.subjects=0", "evaluate.partitions=[devel, test]"]
TINY_RUNS = {
    "teixeira2021-i3d-vgg11-c2": ["model.options.dense_units=[4, 4]", "data.window=4", "data.overlap=0.5",
                                  "data.frame_step=2", "data.batch_size=4", *_TEIXEIRA_TINY],
    "teixeira2021-vgg16-lstm-64-0.8-mean-10fps": ["model.options.lstm_units=4", "model.options.dense_units=[4, 4]",
                                                  "data.window=4", "data.frame_step=2", "data.batch_size=4",
                                                  *_TEIXEIRA_TINY],
    "astnet2017-full-loss": ["model.options.fc6_units=8", "model.options.lstm_units=[4, 3]",
                             "model.options.attribute_weights=none",
                             "model.options.trainable_backbone=true", "data.window=5", "data.frame_step=2",
                             "data.hop=5", "data.batch_size=4"],
}


# Slow: a tiny run of each of these families (every family learning is `make bench-learn`,
# tests/test_learn.py; the Huang loop runs end to end in tests/test_reproduce_smoke.py).
@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(TINY_RUNS))
def test_model_family_trains_and_evaluates_per_frame(experiment, tiny_rgb_tfr, tmp_path):
    run = tmp_path / "run"
    args = ["train", experiment, "--data", str(tiny_rgb_tfr), "--out", str(run), "--set", "train.epochs=1"]
    for override in TINY_RUNS[experiment]:
        args += ["--set", override]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["evaluate", str(run), "--postprocessing", "none"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "report.json").read_text())
    table = pd.read_csv(report["predictions"])
    for s in session_arrays(tiny_rgb_tfr, "test"):
        rows = table[table.session == s["session"]]
        assert len(rows) == len(s["frames"]) and np.isfinite(rows[["pred_arousal", "pred_valence"]]).all().all()


def test_discrete_emotion_network_is_not_trained_on_ratings(tiny_rgb_tfr, tmp_path):
    result = CliRunner().invoke(main, ["train", "teixeira2021-i3d-vgg11-c1", "--data", str(tiny_rgb_tfr),
                                       "--out", str(tmp_path / "r"), "--set", "model.name=teixeira2021-2d",
                                       "--set", "model.options.weights=none"])
    assert result.exit_code != 0 and "discrete emotions" in result.output
    result = CliRunner().invoke(main, ["train", "teixeira2021-i3d-vgg11-c1", "--data", str(tiny_rgb_tfr.parent),
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code != 0


def _train(experiment, tfr, run, overrides):
    args = ["train", experiment, "--data", str(tfr), "--out", str(run), "--set", "train.epochs=1"]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return run


SPEECH = ["data.window=10", "data.hop=10", "data.batch_size=4", "model.options.lstm_units=4",
          "model.options.conv2_kernel=40"]


def test_speech_network_on_stored_audio(tiny_tfr, tmp_path):
    run = _train("tzirakis2017-audio-seq75", tiny_tfr, tmp_path / "a", SPEECH)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--postprocessing", "none"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(run / "predictions.csv")
    for s in session_arrays(tiny_tfr, "test"):
        rows = table[table.session == s["session"]]
        assert len(rows) == len(s["frames"]) and np.isfinite(rows["pred_arousal"]).all()


def test_speech_network_predicts_a_video_as_evaluation_does_and_names_a_wrong_frame_rate(
        tiny_corpus, tiny_tfr, tmp_path):
    from emotrack.apps.predict import predict_video
    from emotrack.media.audio import AudioError
    from emotrack.synth.corpus import synthesize_corpus

    run = _train("tzirakis2017-audio-seq75", tiny_tfr, tmp_path / "a", SPEECH)
    CliRunner().invoke(main, ["evaluate", str(run), "--postprocessing", "none"])
    session = session_arrays(tiny_tfr, "test")[0]["session"]
    table = predict_video(run, tiny_corpus / "videos" / f"{session}.mp4", postprocess=False).table
    evaluated = pd.read_csv(run / "predictions.csv").query("session == @session")
    # The sound track of the corpus video, decoded and cut per frame as preprocessing stored it.
    assert len(table) == len(evaluated)
    np.testing.assert_allclose(table[["arousal", "valence"]].to_numpy(),
                               evaluated[["pred_arousal", "pred_valence"]].to_numpy(), atol=1e-4)
    other = tmp_path / "25fps"
    synthesize_corpus(other, sessions=3, seconds=1.0, fps=25.0, progress=False)
    video = next((other / "videos").glob("*.mp4"))
    with pytest.raises(AudioError, match=r"takes 1600 audio samples per frame, as its data had at 10 fps, but .* "
                                         r"runs at 25 fps \(640 samples\); re-encode it at the run's rate"):
        predict_video(run, video)


@pytest.mark.slow
def test_speech_visual_and_staged_multimodal_networks(tiny_rgb_tfr, tmp_path):
    """Tzirakis 2017: the speech network on the stored audio frames (10 fps: 1600 samples per
    frame), the visual one on RGB crops, then the multimodal network built from both runs."""
    small = ["data.window=10", "data.hop=10", "data.batch_size=4", "model.options.lstm_units=4"]
    audio = _train("tzirakis2017-audio-seq75", tiny_rgb_tfr, tmp_path / "a", small + ["model.options.conv2_kernel=40"])
    visual = _train("tzirakis2017-visual-seq75", tiny_rgb_tfr, tmp_path / "v",
                    small + ["model.options.visual_features=8", "data.augment={}", "model.options.weights=none"])
    import yaml

    assert yaml.safe_load((audio / "config.yaml").read_text())["model"]["options"]["frame_samples"] == 1600
    # ImageNet weights declined: random weights, and the run says so.
    visual_config = yaml.safe_load((visual / "config.yaml").read_text())
    assert visual_config["model"]["options"]["weights"] is None
    assert any("model.options.weights=none" in d for d in visual_config["deviations"])
    av = _train("tzirakis2017-audiovisual-seq150", tiny_rgb_tfr, tmp_path / "av",
                small + [f"model.init_from={{audio: {audio}, visual: {visual}}}", "data.augment={}"])
    from emotrack.models import load_model

    staged = load_model(av / "best.keras")
    assert {i.name for i in staged.inputs} == {"audio", "video"}
    # The multimodal network started from the unimodal extractors: its speech CNN's first layer kept
    # the trained audio run's kernel until its own training moved it (one epoch, small steps).
    trained = load_model(audio / "best.keras").get_layer("audio_features").get_layer("conv1").kernel
    copied = staged.get_layer("audio_features").get_layer("conv1").kernel
    assert np.abs(np.asarray(copied) - np.asarray(trained)).max() < 0.05
    result = CliRunner().invoke(main, ["evaluate", str(av), "--postprocessing", "none"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(av / "predictions.csv")
    assert len(table) == sum(len(s["frames"]) for p in ("devel", "test") for s in session_arrays(tiny_rgb_tfr, p))
