"""Preprocessing writes what the loader reads back exactly; bad sessions are reported and skipped."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from emotrack.cli import main
from emotrack.corpora.layout import Session, discover
from emotrack.corpora.spec import load_spec
from emotrack.data.pipeline import load_sessions, session_arrays
from emotrack.faces.crop import CropSpec, crop_face, crop_faces, crop_set, parse_crops
from emotrack.faces.detect import box_iou
from emotrack.media.video import read_video
from emotrack.preprocess.align import align_ratings, align_valid, at_rate
from emotrack.preprocess.corpus import merge_shards, preprocess_corpus
from emotrack.preprocess.options import PreprocessOptions
from emotrack.preprocess.session import audio_source
from emotrack.records.manifest import read_manifest, shard_manifest_name

# The crop sets of the per-frame MTCNN run below: the default set gray, two more in RGB.
CROP_SETS = ("huang2018", "tzirakis2017", "teixeira2021")


@pytest.fixture(scope="module")
def per_frame_tfr(tiny_corpus, tmp_path_factory):
    """The tiny corpus through the other face finder (`--no-tracker`: mtcnn's detect_faces on every frame),
    with three crop sets, stored losslessly (PNG)."""
    out = tmp_path_factory.mktemp("tfr_per_frame")
    options = PreprocessOptions(tracker=False, crops=CROP_SETS, image_format="png")
    report = preprocess_corpus("generic", tiny_corpus, out, options, progress=False)
    assert report.ok, report.failed
    return out


def test_loader_reads_back_frames_mask_ratings_and_ids(tiny_corpus, tiny_tfr):
    manifest = read_manifest(tiny_tfr)
    partitions = pd.read_csv(tiny_corpus / "partitions.csv", dtype=str)
    sessions = {s["session"]: s for s in session_arrays(tiny_tfr)}
    assert sorted(sessions) == sorted(partitions["session"])
    for _, row in partitions.iterrows():
        s = sessions[row["session"]]
        assert (s["subject"], s["partition"]) == (row["subject"], row["partition"])
        frames, times, fps = read_video(tiny_corpus / "videos" / f"{row['session']}.mp4")
        assert s["frames"].shape == (len(frames), 112, 112, 1) and s["frames"].dtype == np.uint8
        np.testing.assert_allclose(s["time"], times, atol=1e-6)
        assert float(s["fps"]) == pytest.approx(fps)
        # The stored crops are the decoded frames cropped at the stored boxes, up to JPEG's rounding (the
        # default format; PNG is checked pixel for pixel below).
        for t in np.flatnonzero(s["face_present"])[::7]:
            diff = np.abs(s["frames"][t].astype(int) - crop_face(frames[t], s["box"][t], (112, 112), 0.2))
            assert diff.mean() < 2.0 and diff.max() <= 24
        # The ratings are the rating file interpolated at the frame times.
        csv = pd.read_csv(tiny_corpus / "ratings" / f"{row['session']}.csv")
        expected = np.stack([np.interp(times, csv["time"], csv[d]) for d in ("arousal", "valence", "liking")], 1)
        np.testing.assert_allclose(s["ratings"], expected, atol=1e-6)
        entry = next(e for e in manifest["sessions"] if e["session"] == row["session"])
        assert entry["num_frames"] == len(frames) and entry["face_fraction"] >= 0.95
    assert manifest["partitions"] == {p: sorted(partitions.loc[partitions.partition == p, "session"])
                                      for p in ("train", "devel", "test")}
    assert manifest["options"]["size"] == [112, 112] and manifest["failed"] == []
    assert manifest["options"]["tracker"] is True and manifest["options"]["image_format"] == "jpeg"
    assert manifest["crops"] == {"112x112gray": {"height": 112, "width": 112, "channels": 1, "feature": "frames"}}
    assert manifest["frame"] == {"height": 112, "width": 112, "channels": 1, "crops": "112x112gray"}


def test_tracker_and_per_frame_mtcnn_find_the_same_faces(tiny_tfr, per_frame_tfr):
    """The tracker (the default) and mtcnn on every frame (--no-tracker) find a face in the same frames, and
    the same face. Boxes of 50 px faces in 160x128 frames differ by a pixel or two, which costs IoU: mtcnn's
    own boxes of two consecutive frames overlap by as little as 0.78 here, so single frames may fall below
    0.9; on average the two agree."""
    tracked = {s["session"]: s for s in session_arrays(tiny_tfr)}
    per_frame = {s["session"]: s for s in session_arrays(per_frame_tfr)}
    assert sorted(tracked) == sorted(per_frame)
    for name, a in tracked.items():
        b = per_frame[name]
        assert len(a["box"]) == len(b["box"])
        assert abs(int(a["face_present"].sum()) - int(b["face_present"].sum())) <= 1
        both = np.flatnonzero(a["face_present"] & b["face_present"])
        assert len(both) >= 0.95 * len(a["box"])
        ious = [box_iou(a["box"][t], b["box"][t]) for t in both]
        assert np.mean(ious) >= 0.9 and min(ious) >= 0.7, (name, np.mean(ious), min(ious))
    entries = {e["session"]: e for e in read_manifest(per_frame_tfr)["sessions"]}
    for e in read_manifest(tiny_tfr)["sessions"]:
        assert abs(e["face_fraction"] - entries[e["session"]]["face_fraction"]) * e["num_frames"] <= 1 + 1e-9


def test_crop_sets_are_stored_at_their_sizes_from_one_face_box(tiny_corpus, per_frame_tfr):
    manifest = read_manifest(per_frame_tfr)
    assert manifest["crops"] == {
        "huang2018": {"height": 112, "width": 112, "channels": 1, "feature": "frames"},
        "tzirakis2017": {"height": 96, "width": 96, "channels": 3, "feature": "frames_tzirakis2017"},
        "teixeira2021": {"height": 100, "width": 80, "channels": 3, "feature": "frames_teixeira2021"}}
    assert manifest["frame"] == {"height": 112, "width": 112, "channels": 1, "crops": "huang2018"}
    assert manifest["options"]["crops"] == list(CROP_SETS) and manifest["options"]["tracker"] is False
    name = manifest["partitions"]["train"][0]
    default = session_arrays(per_frame_tfr, "train")[0]
    sets = {crops: next(load_sessions(per_frame_tfr, "train", crops=crops).as_numpy_iterator())["frames"]
            for crops in CROP_SETS}
    t = len(default["frames"])
    assert {k: v.shape for k, v in sets.items()} == {"huang2018": (t, 112, 112, 1), "tzirakis2017": (t, 96, 96, 3),
                                                     "teixeira2021": (t, 100, 80, 3)}
    np.testing.assert_array_equal(sets["huang2018"], default["frames"])
    # A set is found by its shape under any name of it; a set the corpus lacks is named with those it holds.
    assert load_sessions(per_frame_tfr, "train", crops="100x80rgb").element_spec["frames"].shape.as_list() == \
        [None, 100, 80, 3]
    with pytest.raises(ValueError, match=r"no crop set 'astnet'.*tzirakis2017 \(96x96x3\)"):
        load_sessions(per_frame_tfr, crops="astnet")
    # PNG: every set is the frame cut at the stored box, pixel for pixel.
    frames, _, _ = read_video(tiny_corpus / "videos" / f"{name}.mp4")
    present = np.flatnonzero(default["face_present"])
    for k in present[::9]:
        expected = crop_faces(frames[k], default["box"][k], CROP_SETS, margin=0.2)
        for crops, crop in zip(CROP_SETS, expected):
            np.testing.assert_array_equal(sets[crops][k], crop)
    # The same face in every set: the gray 112x112 crop is the luminance of the RGB 96x96 one enlarged.
    for k in present[::4]:
        enlarged = Image.fromarray(sets["tzirakis2017"][k]).resize((112, 112), Image.BILINEAR).convert("L")
        assert np.abs(np.asarray(enlarged, float) - sets["huang2018"][k][..., 0]).mean() < 4.0


def test_crop_set_names():
    assert crop_set("tzirakis2017") == ("tzirakis2017", CropSpec(96, 96, False))
    assert crop_set("64x48") == ("64x48rgb", CropSpec(64, 48, False))
    assert crop_set("112x112GRAY") == ("112x112gray", CropSpec(112, 112, True))
    assert parse_crops("huang2018, 64x64rgb") == ("huang2018", "64x64rgb")
    for bad in ("vgg", "0x8gray", "64x64grey", "huang2018,huang2018", ""):
        with pytest.raises(ValueError):
            parse_crops(bad)
    options = PreprocessOptions(crops=("astnet", "huang2018"))
    assert (options.size, options.gray) == ((224, 224), False)
    assert list(options.crop_sets()) == ["astnet", "huang2018"]
    assert PreprocessOptions(**options.to_dict()) == options  # as the manifest and a run's config store them
    runner = CliRunner()
    result = runner.invoke(main, ["preprocess", "--spec", "generic", "--root", ".", "--out", "o", "--crops", "vgg"])
    assert result.exit_code == 2 and "unknown crop set 'vgg'" in result.output
    result = runner.invoke(main, ["preprocess", "--spec", "generic", "--root", ".", "--out", "o", "--crops",
                                  "huang2018", "--size", "96"])
    assert result.exit_code == 2 and "--crops replaces --size and --color" in result.output


def test_preprocessing_and_prediction_build_the_same_face_finder():
    """Both build their finder with `make_face_finder`: a run's predictions find faces as its data did."""
    from emotrack.apps.predict import face_finder
    from emotrack.faces.detect import FaceDetector
    from emotrack.faces.track import FaceTracker

    def settings(finder):
        detector = finder.detector if isinstance(finder, FaceTracker) else finder
        every = finder.every if isinstance(finder, FaceTracker) else None
        return type(finder), every, detector.min_face, detector.min_confidence, detector.select, detector.batch_size

    tracked = PreprocessOptions(detect_every=3, min_face=0.3, min_confidence=0.8, select="left", batch_size=9)
    assert settings(tracked.face_finder()) == settings(face_finder(tracked)) == \
        (FaceTracker, 3, 0.3, 0.8, "left", 9)
    per_frame = PreprocessOptions(tracker=False, min_face=0.3, batch_size=8)
    assert settings(per_frame.face_finder()) == settings(face_finder(per_frame)) == \
        (FaceDetector, None, None, 0.9, "largest", 8)
    assert settings(face_finder(per_frame, "tracker", every=2)) == (FaceTracker, 2, 0.3, 0.9, "largest", 8)


def _two_people_corpus(root, frames=20, fps=10.0, covered=range(8, 12)):
    """A one-session generic corpus: two synthetic subjects side by side (320x128), the left one hidden (a
    dark left half) in the ``covered`` frames."""
    import av

    from emotrack.synth.corpus import iter_session_frames

    left, right = ([f.image for f in iter_session_frames(3, i, frames / fps, fps, 160, 128)] for i in (0, 1))
    (root / "videos").mkdir(parents=True)
    (root / "ratings").mkdir()
    with av.open(str(root / "videos" / "pair.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = 320, 128, "yuv420p"
        stream.options = {"crf": "12", "threads": "1"}
        for k, (a, b) in enumerate(zip(left, right)):
            image = np.concatenate([np.full_like(a, 25) if k in covered else a, b], axis=1)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    (root / "partitions.csv").write_text("session,subject,partition\npair,p,train\n")
    rows = "".join(f"{k / fps:.1f},0,0,0\n" for k in range(frames))
    (root / "ratings" / "pair.csv").write_text("time,arousal,valence,liking\n" + rows)
    return root


def test_select_left_or_right_keeps_that_person(tmp_path):
    corpus = _two_people_corpus(tmp_path / "corpus")
    sides = {}
    for select in ("left", "right"):
        report = preprocess_corpus("generic", corpus, tmp_path / select, PreprocessOptions(select=select, audio=False),
                                   progress=False)
        assert report.ok, report.failed
        sides[select] = session_arrays(tmp_path / select)[0]
    centre = lambda s: s["box"][:, 0] + s["box"][:, 2] / 2  # noqa: E731
    left, right = sides["left"], sides["right"]
    # The left person is kept on the left half, and missed while hidden: the right one, alone in the frame,
    # is not taken for them.
    assert left["face_present"].tolist() == [0 if k in range(8, 12) else 1 for k in range(20)]
    assert (centre(left)[left["face_present"] == 1] < 160).all()
    assert right["face_present"].all() and (centre(right) >= 160).all()
    # While the left person is hidden, their crop stays at their last box (the dark half).
    assert left["frames"][9].mean() < 40 < left["frames"][7].mean()


def test_mtcnn_boxes_sit_on_the_face(tiny_tfr):
    for s in session_arrays(tiny_tfr):
        boxes = s["box"][s["face_present"] == 1]
        assert len(boxes) >= 0.95 * len(s["box"])
        assert (boxes[:, 2] > 20).all() and (boxes[:, 3] > 20).all()  # a face, not a speck


def test_align_ratings_by_time():
    rating_times = np.array([0.0, 0.1, 0.2])
    ratings = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    out = align_ratings(rating_times, ratings, np.array([0.0, 0.05, 0.15, 0.3]))
    np.testing.assert_allclose(out, [[0, 1], [0.5, 0.5], [0.75, 0.25], [0.5, 0.5]])


def test_align_valid_needs_valid_steps_on_both_sides():
    rating_times = np.array([0.0, 0.1, 0.2, 0.3])
    valid = np.array([True, False, True, True])
    out = align_valid(rating_times, valid, np.array([0.0, 0.05, 0.1, 0.2, 0.25, 0.4]))
    assert out.tolist() == [True, False, False, True, True, True]


def test_listed_sessions_without_video_or_ratings_are_named(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    names = list(pd.read_csv(corpus / "partitions.csv")["session"])
    (corpus / "videos" / f"{names[0]}.mp4").unlink()
    (corpus / "ratings" / f"{names[1]}.csv").unlink()
    found = discover(load_spec("generic"), corpus)
    assert [s.session for s in found.sessions] == [names[2]]
    errors = {p["session"]: p["error"] for p in found.problems}
    assert f"have no video: expected '{corpus / 'videos' / f'{names[0]}.mp4'}'" in errors[names[0]]
    assert f"{names[1]}.mp4 of session {names[1]} has no rating file: expected " \
           f"'{corpus / 'ratings' / f'{names[1]}.csv'}'" in errors[names[1]]


def test_unreadable_video_is_reported_skipped_and_exit_nonzero(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    victim = pd.read_csv(corpus / "partitions.csv")["session"][1]
    (corpus / "videos" / f"{victim}.mp4").write_bytes(b"this is not a video")
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(corpus),
                                       "--out", str(out), "--quiet", "--no-audio"])
    assert result.exit_code == 1
    assert victim in result.output and f"{victim}.mp4" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["session"] for f in manifest["failed"]] == [victim]
    assert len(manifest["sessions"]) == 2 and victim not in [s["session"] for s in manifest["sessions"]]
    assert not list(out.rglob("*.tmp")) and not list(out.glob("*.partial.jsonl"))
    assert not (out / "sessions" / f"{victim}.tfrecord").exists()
    # --no-audio: no audio in the records, and the manifest says so.
    assert [s["audio"] for s in manifest["sessions"]] == [False, False]
    assert manifest["audio"]["sample_rate"] is None and manifest["audio"]["sessions_with_audio"] == 0
    assert all(s["audio"].shape == (len(s["frames"]), 0) for s in session_arrays(out))


def test_nan_ratings_and_length_mismatch_are_named(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    names = list(pd.read_csv(corpus / "partitions.csv")["session"])
    nan_file = corpus / "ratings" / f"{names[0]}.csv"
    table = pd.read_csv(nan_file)
    table.loc[5, "valence"] = np.nan
    table.to_csv(nan_file, index=False)
    short_file = corpus / "ratings" / f"{names[2]}.csv"
    pd.read_csv(short_file).iloc[:10].to_csv(short_file, index=False)
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(corpus),
                                       "--out", str(tmp_path / "tfr"), "--quiet"])
    assert result.exit_code == 1
    assert f"{names[0]}.csv holds NaN" in result.output
    assert f"{names[2]}.csv" in result.output and "lasts" in result.output


def test_wrong_spec_or_root_fails_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["preprocess", "--spec", "nope", "--root", str(tmp_path),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no built-in spec named 'nope'" in result.output
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(tmp_path),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "partitions.csv does not exist" in result.output


def _without_seconds(manifest):
    return {k: v for k, v in manifest.items() if k != "seconds"}


def test_workers_and_shards_reproduce_one_serial_run(tiny_corpus, tiny_tfr, tmp_path):
    """Shard 0/2 in two worker processes, then shard 1/2 in this one: the records are the serial run's,
    byte for byte, and the parts merge into its manifest."""
    serial = read_manifest(tiny_tfr)
    order = [e["session"] for e in serial["sessions"]]
    out = tmp_path / "tfr"
    runner = CliRunner()
    result = runner.invoke(main, ["preprocess", "--spec", "generic", "--root", str(tiny_corpus), "--out", str(out),
                                  "--quiet", "--shard", "0/2", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert not (out / "manifest.json").exists()
    result = runner.invoke(main, ["preprocess", "--spec", "generic", "--root", str(tiny_corpus), "--out", str(out),
                                  "--quiet", "--shard", "1/2"])
    assert result.exit_code == 0, result.output
    parts = [json.loads((out / shard_manifest_name(i, 2)).read_text()) for i in range(2)]
    assert [[e["session"] for e in p["sessions"]] for p in parts] == [order[0::2], order[1::2]]
    for name in order:
        assert (out / "sessions" / f"{name}.tfrecord").read_bytes() == \
            (tiny_tfr / "sessions" / f"{name}.tfrecord").read_bytes()
    merged = read_manifest(out)  # merged when the second part was written
    assert _without_seconds(merged) == _without_seconds(serial)
    (out / "manifest.json").unlink()
    result = runner.invoke(main, ["preprocess", "--merge-shards", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _without_seconds(read_manifest(out)) == _without_seconds(serial)
    assert not list(out.rglob("*.tmp")) and not list(out.glob("*.partial.jsonl"))


def test_merge_names_missing_and_foreign_parts(tiny_tfr, tmp_path):
    serial = read_manifest(tiny_tfr)
    part = {**serial, "shard": {"index": 0, "count": 2, "order": [e["session"] for e in serial["sessions"]]}}
    (tmp_path / shard_manifest_name(0, 2)).write_text(json.dumps(part))
    with pytest.raises(FileNotFoundError, match="manifest.shard-1-of-2.json"):
        merge_shards(tmp_path)
    other = {**part, "options": {**part["options"], "size": [64, 64]}, "shard": {**part["shard"], "index": 1}}
    (tmp_path / shard_manifest_name(1, 2)).write_text(json.dumps(other))
    with pytest.raises(ValueError, match="their options differ"):
        merge_shards(tmp_path)


def test_rerun_keeps_verified_sessions_and_redoes_a_truncated_record(tiny_corpus, tiny_tfr, tmp_path):
    out = tmp_path / "tfr"
    shutil.copytree(tiny_tfr, out)  # keeps the files' modification times
    names = [e["session"] for e in read_manifest(tiny_tfr)["sessions"]]
    victim = out / "sessions" / f"{names[1]}.tfrecord"
    victim.write_bytes(victim.read_bytes()[:1000])  # as left by a crash of something else than preprocess
    mtimes = {n: (out / "sessions" / f"{n}.tfrecord").stat().st_mtime_ns for n in names}
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(tiny_corpus),
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(2 kept from an earlier run)" in result.output
    assert f"session {names[1]} is redone: its record {victim} does not match the checksum" in result.output
    for n in (names[0], names[2]):
        assert (out / "sessions" / f"{n}.tfrecord").stat().st_mtime_ns == mtimes[n]
    assert victim.read_bytes() == (tiny_tfr / "sessions" / victim.name).read_bytes()
    assert _without_seconds(read_manifest(out)) == _without_seconds(read_manifest(tiny_tfr))
    # Other options: nothing is kept.
    report = preprocess_corpus("generic", tiny_corpus, out, PreprocessOptions(size=(16, 16)), progress=False,
                               log=lambda m: None, shard=(0, 3))
    assert report.skipped == [] and [e["session"] for e in report.done] == names[:1]


def test_an_interrupted_run_resumes_from_its_journal(tiny_corpus, tiny_tfr, tmp_path, monkeypatch):
    """Sessions finished before an interruption are in the journal; the rerun keeps them."""
    import emotrack.preprocess.corpus as pp

    entries = {e["session"]: e for e in read_manifest(tiny_tfr)["sessions"]}
    names = list(entries)
    calls, interrupt = [], {names[1]}

    def fake_session(spec, root, info, out_dir, options, detector):
        calls.append(info.session)
        if info.session in interrupt:
            raise KeyboardInterrupt
        shutil.copy(tiny_tfr / entries[info.session]["file"], out_dir / "sessions")
        return entries[info.session]

    monkeypatch.setattr(pp, "process_session", fake_session)
    monkeypatch.setattr(PreprocessOptions, "face_finder", lambda options: object())
    out = tmp_path / "tfr"
    with pytest.raises(KeyboardInterrupt):
        preprocess_corpus("generic", tiny_corpus, out, progress=False, log=lambda m: None)
    assert calls == names[:2] and not (out / "manifest.json").exists()
    assert [json.loads(line).get("session") for line in (out / "manifest.partial.jsonl").read_text().splitlines()] \
        == [None, names[0]]
    with open(out / "manifest.partial.jsonl", "a") as fh:
        fh.write('{"session": "torn')  # a line cut short by the interruption
    calls.clear()
    interrupt.clear()
    report = preprocess_corpus("generic", tiny_corpus, out, progress=False, log=lambda m: None)
    assert calls == names[1:] and report.skipped == names[:1]
    assert _without_seconds(read_manifest(out)) == _without_seconds(read_manifest(tiny_tfr))
    assert not (out / "manifest.partial.jsonl").exists()


def test_audio_comes_from_the_spec_file_or_the_video_track(tiny_corpus, tmp_path):
    recola = load_spec("recola-avec2016")
    info = Session("dev_3", "dev_3", "devel", fields={"split": "dev", "number": "3"})
    assert audio_source(recola, tmp_path, info, PreprocessOptions()) == \
        (tmp_path / "recordings_audio" / "dev_3.wav", False)
    assert audio_source(recola, tmp_path, info, PreprocessOptions(audio=False)) == (None, False)
    generic = load_spec("generic")
    video = tiny_corpus / "videos" / "S01.mp4"
    with_track = Session("S01", "subj01", "train", video=video, fields={"session": "S01"})
    assert audio_source(generic, tiny_corpus, with_track, PreprocessOptions()) == (video, True)
    (tmp_path / "x.mp4").write_bytes(b"no sound here")
    silent = Session("x", "x", "train", video=tmp_path / "x.mp4", fields={"session": "x"})
    assert audio_source(generic, tmp_path, silent, PreprocessOptions()) == (None, False)
    assert audio_source(generic, tmp_path, silent, PreprocessOptions(audio=True)) == (tmp_path / "x.mp4", True)


def test_a_run_trains_and_evaluates_on_the_crop_set_data_crops_names(per_frame_tfr, tmp_path):
    from emotrack.evaluation.report import evaluate
    from emotrack.models import load_model
    from emotrack.training.train import train

    run = train("demo", per_frame_tfr, tmp_path / "run", verbose=0, overrides=[
        "data.crops=tzirakis2017", "train.epochs=1", "data.window=8", "data.hop=8", "data.batch_size=4",
        "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4"])
    model = load_model(run / "best.keras")
    assert tuple(model.input.shape[2:]) == (96, 96, 3)
    evaluate(run)
    table = pd.read_csv(run / "predictions.csv")
    frames = sum(len(s["frames"]) for p in ("devel", "test") for s in session_arrays(per_frame_tfr, p))
    assert len(table) == frames and np.isfinite(table.filter(like="pred").to_numpy()).all()


def test_ratings_hold_or_interpolate_between_rating_steps():
    times, values, valid = np.array([0.0, 0.1, 0.2]), np.array([[0.0], [1.0], [-1.0]]), np.array([1, 0, 1], bool)
    frames = np.array([0.0, 0.05, 0.1, 0.15, 0.25])
    np.testing.assert_allclose(align_ratings(times, values, frames)[:, 0], [0.0, 0.5, 1.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(align_ratings(times, values, frames, "hold")[:, 0], [0.0, 0.0, 1.0, 1.0, -1.0])
    assert align_valid(times, valid, frames).tolist() == [True, False, False, False, True]
    assert align_valid(times, valid, frames, "hold").tolist() == [True, True, False, False, True]
    with pytest.raises(ValueError, match="resample must be one of linear, hold"):
        PreprocessOptions(resample="nearest")


def test_at_rate_keeps_the_first_frame_of_every_slot():
    fifty = [(k / 50, k) for k in range(50)]
    assert [f for _, f in at_rate(fifty, 10.0)] == list(range(0, 50, 5))
    assert [f for _, f in at_rate(fifty, None)] == list(range(50))
    kept = [t for t, _ in at_rate([(k / 25, k) for k in range(25)], 10.0)]
    assert len(kept) == 10 and all(j / 10 <= t < (j + 1) / 10 for j, t in enumerate(kept))


@pytest.fixture(scope="module")
def five_fps_tfr(tiny_corpus, tmp_path_factory):
    """The tiny corpus (10 fps) preprocessed with --fps 5."""
    out = tmp_path_factory.mktemp("tfr_5fps")
    report = preprocess_corpus("generic", tiny_corpus, out, PreprocessOptions(fps=5.0), progress=False)
    assert report.ok, report.failed
    return out


def test_fps_keeps_every_other_frame_with_its_ratings_and_audio(tiny_tfr, five_fps_tfr):
    entries = read_manifest(five_fps_tfr)["sessions"]
    full = {s["session"]: s for s in session_arrays(tiny_tfr)}
    assert read_manifest(five_fps_tfr)["audio"]["samples_per_frame"] == 3200
    for entry, s in zip(entries, session_arrays(five_fps_tfr)):
        ref = full[s["session"]]
        assert entry["fps"] == 5.0 and entry["video_fps"] == 10.0 and float(s["fps"]) == 5.0
        assert entry["num_frames"] == len(s["frames"]) == len(ref["frames"]) // 2
        np.testing.assert_allclose(s["time"], ref["time"][::2], atol=1e-6)
        np.testing.assert_array_equal(s["ratings"], ref["ratings"][::2])
        # A 5 fps frame's audio is the 0.2 s from its time: the audio of two 10 fps frames.
        np.testing.assert_allclose(s["audio"], ref["audio"].reshape(-1, 3200), atol=1e-5)


def test_a_run_on_subsampled_frames_predicts_every_video_frame(tiny_corpus, five_fps_tfr, tmp_path):
    from emotrack.apps.predict import predict_video
    from emotrack.training.train import train

    run = train("demo", five_fps_tfr, tmp_path / "run", verbose=0, overrides=[
        "train.epochs=1", "data.window=4", "data.hop=4", "data.batch_size=4", "data.label_delay_s=0.4",
        "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4"])
    video = tiny_corpus / "videos" / "S02.mp4"
    table = predict_video(run, video, tmp_path / "va.csv").table
    times = read_video(video)[1]
    assert len(table) == len(times) == 40
    np.testing.assert_allclose(table["time"], np.arange(40) / 10, atol=1e-5)
    assert np.isfinite(table[["arousal", "valence"]].to_numpy()).all() and table["face_present"].mean() > 0.9


def test_video_longer_than_its_ratings_is_cut_and_reported(tiny_corpus, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, root)
    ratings = root / "ratings" / "S03.csv"
    rows = ratings.read_text().splitlines()
    ratings.write_text("\n".join(rows[:-5]) + "\n")  # 0.5 s shorter than the video: within 1 s
    messages = []
    report = preprocess_corpus("generic", root, tmp_path / "tfr", progress=False, log=messages.append)
    assert report.ok, report.failed
    entry = next(e for e in report.done if e["session"] == "S03")
    assert entry["trimmed_s"] == {"video": pytest.approx(0.5), "ratings": 0.0} and entry["num_frames"] == 35
    assert any("S03: the last 0.50 s of its video were cut to the ratings' length" in m for m in messages)
