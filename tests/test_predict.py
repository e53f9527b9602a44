"""``emotrack predict``: a streamed pass over a real face video gives the numbers of the in-memory path,
one row per decoded frame; the overlay video; bounded memory; clear errors."""

import threading
import weakref

import av
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.apps.predict import apply_postprocessing, predict_video, run_preprocessing
from emotrack.cli import main
from emotrack.config.run import load_run_config
from emotrack.data.align import undo_label_delay
from emotrack.evaluation.postprocess import PostProcessingChain
from emotrack.faces.track import FaceTracker
from emotrack.inference.session import CompiledModel, predict_frames
from emotrack.inference.streaming import BlockPredictor
from emotrack.media.video import read_video, write_video
from emotrack.models import build_model, load_model

BLOCK = 16


def _decoded(path):
    """Every frame of a video with PyAV: (times from the first frame, RGB frames, average rate, size)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        rate, size = stream.average_rate, (stream.width, stream.height)
    times = np.array([t for t, _ in frames]) - frames[0][0]
    return times, np.stack([f for _, f in frames]), rate, size


def _preprocessed(frames, finder, options):
    """Crops made by preprocessing's own function (`emotrack.preprocess.session.face_crops`) from in-memory frames,
    read back as `emotrack.data.pipeline` reads them; and the face flags."""
    import tensorflow as tf

    from emotrack.preprocess.session import face_crops

    crops, present, _ = face_crops(list(frames), finder, options, "in-memory")
    encoded = next(iter(crops.values()))
    decode = lambda data: tf.io.decode_image(data, channels=encoded.shape[-1], expand_animations=False).numpy()
    return np.stack([decode(data) for data in encoded.images]), present


def _reference(run, crops, fps, postprocess=True):
    """The in-memory path: the whole sequence of crops through `predict_frames`, the delay undone, the
    run's chain applied."""
    config = load_run_config(run)
    pred = predict_frames(load_model(run / "best.keras"), {"frames": crops, "fps": fps}, config)
    pred = undo_label_delay(pred, int(round(config["data"]["label_delay_s"] * fps)))
    if postprocess:
        pred = PostProcessingChain.load(run / "postprocessing.json").apply(pred, fps)
    return pred


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def predicted(run, tiny_corpus, tmp_path_factory):
    """S01 (40 frames at 10 fps, with a sound track) through the command line, with an overlay."""
    import emotrack.apps.predict

    out = tmp_path_factory.mktemp("predicted")
    video = tiny_corpus / "videos" / "S01.mp4"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emotrack.apps.predict, "DEFAULT_BLOCK_FRAMES", BLOCK)
        result = CliRunner().invoke(main, ["predict", str(run), str(video), "--out", str(out / "va.csv"),
                                           "--overlay", str(out / "overlay.mp4"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "40 frames (100.0% with a face)" in result.output
    return video, out / "va.csv", out / "overlay.mp4"


def test_csv_has_one_row_per_frame_at_the_frame_times(predicted):
    video, csv, _ = predicted
    table = pd.read_csv(csv)
    times, _, _, _ = _decoded(video)
    assert list(table.columns) == ["time", "arousal", "valence", "face_present"]
    assert len(table) == len(times) == 40
    np.testing.assert_allclose(table["time"], times, atol=1e-6)
    assert np.isfinite(table[["arousal", "valence"]].to_numpy()).all()
    assert table["face_present"].eq(1).all()
    assert not list(csv.parent.glob(".*tmp*")), "a temporary file was left behind"


def test_streamed_blocks_give_the_numbers_of_the_preprocessed_session(run, predicted, tiny_tfr):
    """Prediction on a video of the corpus equals `predict_frames` on that session's record (the crops
    preprocessing stored), post-processed by the run's chain."""
    from emotrack.data.pipeline import session_arrays

    _, csv, _ = predicted
    session = next(s for s in session_arrays(tiny_tfr, ["train", "devel", "test"]) if s["session"] == "S01")
    expected = _reference(run, session["frames"], float(session["fps"]))
    table = pd.read_csv(csv)
    np.testing.assert_allclose(table[["arousal", "valence"]].to_numpy(), expected, atol=1e-5)
    # The chain changed something, so that comparing post-processed values is not vacuous.
    raw = _reference(run, session["frames"], float(session["fps"]), postprocess=False)
    assert np.abs(raw - expected).max() > 1e-4


def test_mtcnn_on_every_frame_in_batches(run, tiny_corpus):
    """``detector="mtcnn"`` (here in batches of 7 frames) cuts the crops preprocessing cuts with MTCNN on
    every frame: the face chosen is carried across batches as in preprocessing."""
    from emotrack.faces.detect import FaceDetector

    video = tiny_corpus / "videos" / "S02.mp4"
    options = run_preprocessing(load_run_config(run))
    frames, _, fps = read_video(video)
    crops, _ = _preprocessed(frames, FaceDetector(min_confidence=options.min_confidence), options)
    result = predict_video(run, video, postprocess=False, detector=FaceDetector(batch_size=7), block_frames=BLOCK)
    np.testing.assert_allclose(result.table[["arousal", "valence"]].to_numpy(),
                               _reference(run, crops, fps, postprocess=False), atol=1e-5)


def test_overlay_is_the_video_with_the_plane_drawn(predicted):
    video, csv, overlay = predicted
    times, frames, rate, size = _decoded(video)
    out_times, drawn, out_rate, out_size = _decoded(overlay)
    assert (len(drawn), out_size, out_rate) == (len(frames), size, rate)
    np.testing.assert_allclose(out_times, times, atol=1e-6)
    with av.open(str(overlay)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert len(container.streams.audio) == 1  # the sound track is copied
    diff = np.abs(drawn.astype(np.int16) - frames.astype(np.int16)).mean(axis=(0, 3))
    height, width = diff.shape
    # The plane (64 px square in the lower right corner): darkened, with axes and the marker.
    assert diff[-60:-8, -60:-8].mean() > 25
    # Far from the plane and the face box: only the loss of a second encoding.
    assert diff[:12, :12].mean() < 4
    # The marker sits at each frame's (valence, arousal): its red is where the CSV says.
    table = pd.read_csv(csv)
    side, pad = 64, 4
    half, reach = (side - 1) / 2, (side - 1) / 2 - 4
    for k in (0, len(frames) // 2, len(frames) - 1):
        x = width - side - pad + half + reach * np.clip(table["valence"][k], -1, 1)
        y = height - side - pad + half - reach * np.clip(table["arousal"][k], -1, 1)
        patch = drawn[k, int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].astype(int)
        assert (patch[..., 0] - patch[..., 1]).mean() > 80, "no red marker at the predicted point"


def _face_video(tiny_corpus, tmp_path, fps=25.0, count=60, blank=(range(0, 5), range(30, 38))):
    """A face video at another frame rate than the run's (25 fps), with gray frames (no face) at the start
    and in the middle."""
    from emotrack.synth.corpus import iter_session_frames

    images = [item.image for _, item in zip(range(count), iter_session_frames(7, 1, count / fps + 1, fps))]
    for span in blank:
        for k in span:
            images[k] = np.full_like(images[k], 128)
    return write_video(tmp_path / "gaps.mp4", images, fps, quality=12)


def test_frames_without_a_face_and_bounded_frames_in_memory(run, tiny_corpus, tmp_path, monkeypatch):
    import emotrack.apps.predict
    from emotrack.media.video import iter_frames

    video = _face_video(tiny_corpus, tmp_path)
    alive, most, lock = [0], [0], threading.Lock()

    def counted(path):
        """iter_frames, counting the decoded frames still referenced anywhere."""
        def release():
            with lock:
                alive[0] -= 1

        for t, frame in iter_frames(path):
            with lock:
                alive[0] += 1
                most[0] = max(most[0], alive[0])
            weakref.finalize(frame, release)
            yield t, frame
            del frame

    monkeypatch.setattr(emotrack.apps.predict, "iter_frames", counted)
    options = run_preprocessing(load_run_config(run))
    tracker = FaceTracker(every=2, batch_size=4, read_ahead=2, min_confidence=options.min_confidence)
    result = predict_video(run, video, tmp_path / "va.csv", postprocess=False, detector=tracker,
                           block_frames=BLOCK)
    # The tracker's chunk (4 + 1), the read-ahead queue (2), one frame in each thread's hands: never the
    # whole video.
    assert 0 < most[0] <= 4 + 1 + 2 + 3 < 60
    assert result.crops_held <= BLOCK + 1

    table = pd.read_csv(tmp_path / "va.csv")
    times, frames, _, _ = _decoded(video)
    assert len(table) == 60 and np.allclose(table["time"], times, atol=1e-6)
    present = table["face_present"].to_numpy()
    assert present[:5].sum() == 0 and present[30:38].sum() == 0 and present[5:30].all() and present[38:].all()
    assert np.isnan(result.boxes[:5]).all()  # zeros before the first face
    np.testing.assert_array_equal(result.boxes[30:38], np.repeat(result.boxes[29:30], 8, axis=0))  # last box
    values = table[["arousal", "valence"]].to_numpy()
    assert np.isnan(values[:5]).all() and np.isfinite(values[5:]).all()  # no prediction before the first face
    np.testing.assert_array_equal(values[30:38], np.repeat(values[29:30], 8, axis=0))  # the last face's held
    # Preprocessing's crops of the same frames (zeros before the first face, the last face after one): the
    # frames with a face get the numbers of the in-memory path.
    same = FaceTracker(every=2, batch_size=4, read_ahead=2, min_confidence=options.min_confidence)
    crops, flags = _preprocessed(frames, same, options)
    np.testing.assert_array_equal(flags, present)
    reference = _reference(run, crops, 25.0, postprocess=False)
    np.testing.assert_allclose(values[present == 1], reference[present == 1], atol=1e-5)


def test_postprocessing_keeps_its_durations_at_another_frame_rate(run):
    """The run's chain was fitted at 10 Hz; a 25 fps prediction is post-processed at 10 Hz and brought back."""
    chain = PostProcessingChain.load(run / "postprocessing.json")
    times = np.arange(60) / 25.0
    # A constant stays a constant, whatever the steps (median, centring, scaling, shift).
    constant = np.full((60, 2), 0.25)
    expected = chain.apply(np.full((24, 2), 0.25), 10.0)[0]
    np.testing.assert_allclose(apply_postprocessing(chain, constant, times, 25.0), np.tile(expected, (60, 1)),
                               atol=1e-6)
    # A shift of 3 frames at 10 Hz moves a ramp by 0.3 s at 25 fps (the first value held before).
    data = chain.to_dict()
    for record in data["fitted_steps"]:
        for entry in record["dimensions"].values():
            entry["kept"] = record["name"] == "time_shift"
            if entry["kept"]:
                entry["params"] = {"shift_frames": 3, "shift_s": 0.3}
    shift = PostProcessingChain.from_dict(data)
    ramp = np.stack([times, -times], axis=1)
    out = apply_postprocessing(shift, ramp, times, 25.0)
    np.testing.assert_allclose(out[:, 0], np.maximum(times - 0.3, 0.0), atol=1e-6)
    np.testing.assert_allclose(out[:, 1], -np.maximum(times - 0.3, 0.0), atol=1e-6)
    # At the chain's own rate it is the chain itself.
    np.testing.assert_allclose(apply_postprocessing(chain, ramp, np.arange(60) / 10.0, 10.0),
                               chain.apply(ramp, 10.0), atol=1e-6)


def _clip_model(window, side, outputs=2):
    import keras

    x = keras.Input((window, side, side, 1))
    y = keras.layers.Reshape((window, side * side))(x)
    y = keras.layers.LSTM(3)(y)
    return keras.Model(x, keras.layers.Dense(outputs)(y))


def _siamese_model(side, clip):
    """Two clips through one stream network, as AST-Net's Siamese model: (B, 2, N, H, W, 1) -> (B, 2, N, 2)."""
    import keras

    frames = keras.Input((None, side, side, 1))
    y = keras.layers.Reshape((-1, side * side))(frames)
    y = keras.layers.LSTM(3, return_sequences=True)(y)
    stream = keras.Model(frames, keras.layers.Dense(2)(y), name="stream")
    pairs = keras.Input((2, clip, side, side, 1))
    return keras.Model(pairs, keras.ops.stack([stream(pairs[:, 0]), stream(pairs[:, 1])], axis=1))


@pytest.mark.parametrize("kind", ["frame", "frame-pooled-subsampled", "clip", "siamese-compiled"])
def test_block_predictor_equals_the_whole_sequence(kind):
    """A long crop sequence (603 frames) fed one crop at a time, in blocks of about 100, against
    `predict_frames` on all of it: equal numbers, and never more than a block (and its context) held.
    The Siamese model is predicted through `CompiledModel` (its stream, in a graph) against the eager
    model."""
    side = 16
    config = {"model": {"name": "huang2018-convlstm", "options": {"pooling": "max"}}, "evaluate": {"chunk": 40},
              "data": {"window": 8}}
    if kind == "frame":
        model = build_model("huang2018-convlstm", filters=[2, 2, 2, 2], dense_units=4, pooling="max",
                            input_shape=[None, side, side, 1])
    elif kind == "frame-pooled-subsampled":
        model = build_model("huang2018-convlstm", filters=[2, 2, 2, 2], dense_units=4,
                            input_shape=[None, side, side, 1])
        config["model"]["options"]["pooling"] = "original"
        config["data"].update(temporal_pooling_s=0.3, frame_step=2)
    elif kind == "clip":
        model = _clip_model(5, side)
        config = {"model": {"name": "teixeira2021-vgg16-lstm", "options": {}}, "evaluate": {},
                  "data": {"window": 5, "frame_step": 2, "hop": 3}}
    else:
        model = _siamese_model(side, 5)
        config = {"model": {"name": "astnet2017-siamese", "options": {}}, "evaluate": {"chunk": 40},
                  "data": {"window": 5, "frame_step": 3}}
    crops = np.random.default_rng(0).integers(0, 256, (603, side, side, 1), dtype=np.uint8)
    predictor = CompiledModel(model) if kind == "siamese-compiled" else model
    if kind == "siamese-compiled":  # the stream that predict_frames finds is the compiled one
        assert [type(layer) for layer in predictor.layers if hasattr(layer, "layers")] == [CompiledModel]
    blocks = BlockPredictor(predictor, config, fps=10.0, block_frames=100)
    for crop in crops:
        blocks.push(crop)
    streamed = blocks.finish()
    whole = predict_frames(model, {"frames": crops, "fps": 10.0}, config)
    assert streamed.shape == whole.shape == (603, 2)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert blocks.block >= 100 and blocks.block % blocks.unit == 0
    assert blocks.held_max <= blocks.block + 2 * blocks.context + blocks.lookahead < 603 / 2


def test_errors_are_clear(run, tiny_corpus, tmp_path):
    runner = CliRunner()
    video = tiny_corpus / "videos" / "S01.mp4"
    out = tmp_path / "va.csv"

    result = runner.invoke(main, ["predict", str(tmp_path / "nope"), str(video), "--out", str(out)])
    assert result.exit_code != 0 and "does not exist" in result.output

    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.yaml").write_text((run / "config.yaml").read_text())
    result = runner.invoke(main, ["predict", str(empty), str(video), "--out", str(out)])
    assert result.exit_code == 1 and "best.keras does not exist" in result.output

    result = runner.invoke(main, ["predict", str(tmp_path), str(video), "--out", str(out)])
    assert result.exit_code == 1 and "config.yaml does not exist" in result.output

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    result = runner.invoke(main, ["predict", str(run), str(bad), "--out", str(out)])
    assert result.exit_code == 1 and "broken.mp4" in result.output

    faceless = write_video(tmp_path / "faceless.mp4", [np.full((128, 160, 3), 90, np.uint8)] * 12, 10, quality=12)
    result = runner.invoke(main, ["predict", str(run), str(faceless), "--out", str(out), "--quiet"])
    assert result.exit_code == 1 and "no face found in any frame of" in result.output
    assert "faceless.mp4" in result.output
    assert not out.exists()

    result = runner.invoke(main, ["predict", "--help"])
    assert result.exit_code == 0 and "--overlay" in result.output and "--detector" in result.output
