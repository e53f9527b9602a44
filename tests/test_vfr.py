"""Phone videos: variable frame rate and a picture stored turned (a display matrix). Fixtures are written
here with PyAV, lossless (4:4:4), so that the same picture decodes to the same pixels in every file."""

from fractions import Fraction

import av
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.media.video import iter_frames, video_timing
from emotrack.preprocess.align import on_grid

TICK = Fraction(1, 600)
# 30 fps, a stretch at 24 fps, 30 fps again (in ticks of 1/600 s: 20 and 25).
VFR_TICKS = [20 * k for k in range(24)] + [480 + 25 * k for k in range(19)] + [960 + 20 * k for k in range(24)]


def write_timed(path, frames, ticks, rotation=0):
    """Encode RGB frames with PyAV at the given time stamps (ticks of 1/600 s), losslessly (H.264 4:4:4,
    CRF 0), with a display matrix turning the picture ``rotation`` degrees counter-clockwise."""
    ticks = [int(t) for t in ticks]
    steps = np.diff(ticks).tolist()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(600, int(np.median(steps))))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv444p", {"crf": "0", "preset": "ultrafast"}
        stream.time_base = stream.codec_context.time_base = TICK
        if rotation:
            stream.set_display_rotation(rotation)
        for image, tick, step in zip(frames, ticks, steps + steps[-1:]):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base, frame.duration = tick, TICK, step  # shown until the next one
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _faces(count, fps=30.0):
    from emotrack.synth.corpus import iter_session_frames

    return [item.image for _, item in zip(range(count), iter_session_frames(7, 1, count / fps + 1, fps))]


def _as_shown(frames, ticks, rate=30):
    """What a player shows at every 1/rate s: the last frame whose time has come."""
    grid = np.arange(0, ticks[-1] + 1, 600 // rate)
    held = np.searchsorted(np.asarray(ticks), grid, side="right") - 1
    return [frames[k] for k in held], grid


def test_variable_frame_rate_keeps_true_times(tmp_path):
    frames = _faces(len(VFR_TICKS))
    path = write_timed(tmp_path / "vfr.mp4", frames, VFR_TICKS)
    timing = video_timing(path)
    assert timing.variable and timing.rate == pytest.approx(30.0) and timing.slowest == pytest.approx(20.0)
    assert timing.frames == len(VFR_TICKS)
    times = [t for t, _ in iter_frames(path)]
    np.testing.assert_allclose(times, np.asarray(VFR_TICKS) / 600, atol=1e-9)
    steady = video_timing(write_timed(tmp_path / "cfr.mp4", frames[:20], range(0, 400, 20)))
    assert not steady.variable


def test_on_grid_shows_the_frame_on_screen_at_every_grid_time():
    items = [(0.0, "a"), (0.1, "b"), (0.35, "c"), (0.36, "d"), (0.5, "e")]
    assert list(on_grid(items, 10.0)) == [(0.0, "a"), (0.1, "b"), (0.2, "b"), (0.3, "b"), (0.4, "d"), (0.5, "e")]
    steady = [(k / 25, k) for k in range(50)]
    assert list(on_grid(steady, 25.0)) == steady  # a video at the grid's rate: every frame as it is


def test_rotated_video_is_read_upright(tmp_path):
    frames = _faces(6)
    stored = [np.rot90(f, -1) for f in frames]  # the sensor's picture, a quarter turn clockwise
    path = write_timed(tmp_path / "turned.mp4", stored, range(0, 120, 20), rotation=90)
    decoded = [f for _, f in iter_frames(path)]
    assert decoded[0].shape == frames[0].shape != stored[0].shape
    plain = [f for _, f in iter_frames(write_timed(tmp_path / "plain.mp4", frames, range(0, 120, 20)))]
    np.testing.assert_array_equal(np.stack(decoded), np.stack(plain))


@pytest.fixture(scope="module")
def vfr_predicted(tiny_run, tmp_path_factory):
    """A variable frame-rate face video and the 30 fps video a player shows of it, both predicted through
    the command line, the variable one with an overlay."""
    out = tmp_path_factory.mktemp("vfr")
    frames = _faces(len(VFR_TICKS))
    vfr = write_timed(out / "phone.mov", frames, VFR_TICKS)
    shown, grid = _as_shown(frames, VFR_TICKS)
    cfr = write_timed(out / "shown.mp4", shown, grid)
    runner = CliRunner()
    for video, extra in ((vfr, ["--overlay", str(out / "overlay.mp4")]), (cfr, [])):
        result = runner.invoke(main, ["predict", str(tiny_run), str(video), "--out", str(out / f"{video.stem}.csv"),
                                      "--quiet", *extra])
        assert result.exit_code == 0, result.output
    return vfr, pd.read_csv(out / "phone.csv"), pd.read_csv(out / "shown.csv"), out / "overlay.mp4"


def test_predict_variable_frame_rate_every_frame_at_its_true_time(vfr_predicted):
    _, table, shown, _ = vfr_predicted
    assert len(table) == len(VFR_TICKS)
    np.testing.assert_allclose(table["time"], np.asarray(VFR_TICKS) / 600, atol=1e-6)
    assert table["face_present"].mean() > 0.9
    # The model saw the video as a player shows it, at 30 fps: where a frame falls on that grid its row
    # is the row of the constant-rate video at the same time.
    on_grid = np.asarray(VFR_TICKS) % 20 == 0
    same = shown.set_index(np.round(shown["time"] * 600).astype(int)).loc[np.asarray(VFR_TICKS)[on_grid]]
    assert on_grid.sum() >= 50 and len(same) == on_grid.sum()
    np.testing.assert_allclose(table.loc[on_grid, ["arousal", "valence"]].to_numpy(),
                               same[["arousal", "valence"]].to_numpy(), atol=1e-5)
    # Off the grid (the 24 fps stretch), each row lies between its neighbours on the grid.
    values = table["arousal"].to_numpy()
    for k in np.flatnonzero(~on_grid):
        lo, hi = sorted(shown["arousal"].to_numpy()[[VFR_TICKS[k] // 20, VFR_TICKS[k] // 20 + 1]])
        assert lo - 1e-6 <= values[k] <= hi + 1e-6


def test_overlay_of_variable_frame_rate_keeps_every_frame_time(vfr_predicted):
    video, _, _, overlay = vfr_predicted
    with av.open(str(overlay)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    np.testing.assert_allclose(times, np.asarray(VFR_TICKS) / 600, atol=1e-3)


def test_predict_rotated_video_as_upright(tiny_run, tmp_path):
    frames = _faces(30)
    ticks = range(0, 600, 20)
    plain = write_timed(tmp_path / "plain.mp4", frames, ticks)
    turned = write_timed(tmp_path / "turned.mp4", [np.rot90(f, 1) for f in frames], ticks, rotation=-90)
    runner = CliRunner()
    for video in (plain, turned):
        result = runner.invoke(main, ["predict", str(tiny_run), str(video), "--out", str(tmp_path / f"{video.stem}.csv"),
                                      "--quiet"] + (["--overlay", str(tmp_path / "o.mp4")] if video == turned else []))
        assert result.exit_code == 0, result.output
    a, b = pd.read_csv(tmp_path / "plain.csv"), pd.read_csv(tmp_path / "turned.csv")
    assert a["face_present"].mean() > 0.9
    pd.testing.assert_frame_equal(a, b, atol=1e-5)
    with av.open(str(tmp_path / "o.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (frames[0].shape[1], frames[0].shape[0])


def _one_session_corpus(tiny_corpus, root, frames, ticks):
    """The tiny corpus' session S01 alone, its video replaced by ``frames`` at ``ticks`` (sound left out)."""
    import shutil

    (root / "videos").mkdir(parents=True)
    (root / "ratings").mkdir()
    shutil.copy(tiny_corpus / "ratings" / "S01.csv", root / "ratings" / "S01.csv")
    (root / "partitions.csv").write_text("session,subject,partition\nS01,subj01,devel\n")
    write_timed(root / "videos" / "S01.mp4", frames, ticks)
    return root


def test_preprocess_variable_frame_rate_as_a_player_shows_it(tiny_corpus, tmp_path):
    """S01 (10 fps) with every other frame dropped from 1.5 s to 2.5 s (5 fps there) is preprocessed into
    the record of the 10 fps video a player shows of it: the same frames, times, ratings and rate."""
    from emotrack.data.pipeline import session_arrays
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.records.manifest import read_manifest

    frames = [f for _, f in iter_frames(tiny_corpus / "videos" / "S01.mp4")]
    keep = [k for k in range(len(frames)) if not (15 < k < 25 and k % 2)]
    ticks = [60 * k for k in keep]
    shown, grid = _as_shown([frames[k] for k in keep], ticks, rate=10)
    assert len(shown) == len(frames) and len(keep) < len(frames)
    records = {}
    for name, (images, stamps) in {"vfr": ([frames[k] for k in keep], ticks), "shown": (shown, grid)}.items():
        root = _one_session_corpus(tiny_corpus, tmp_path / name, images, stamps)
        report = preprocess_corpus("generic", root, tmp_path / f"{name}_tfr", progress=False)
        assert report.ok, report.failed
        entry = read_manifest(tmp_path / f"{name}_tfr")["sessions"][0]
        assert entry["num_frames"] == len(frames) and entry["fps"] == pytest.approx(10.0)
        records[name] = next(iter(session_arrays(tmp_path / f"{name}_tfr")))
    vfr, steady = records["vfr"], records["shown"]
    np.testing.assert_allclose(vfr["time"], np.arange(len(frames)) / 10, atol=1e-6)
    for key in ("frames", "face_present", "ratings"):
        np.testing.assert_array_equal(vfr[key], steady[key])


def test_preprocess_refuses_a_fixed_rate_for_a_variable_frame_rate_video(tiny_corpus, tmp_path):
    frames = [f for _, f in iter_frames(tiny_corpus / "videos" / "S01.mp4")]
    keep = [k for k in range(len(frames)) if not (15 < k < 25 and k % 2)]
    root = _one_session_corpus(tiny_corpus, tmp_path / "c", [frames[k] for k in keep], [60 * k for k in keep])
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(root), "--out", str(out),
                                       "--video-fps", "10",
                                       "--quiet"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "S01.mp4" in result.output and "variable frame rate" in result.output
    assert "from_file" in result.output
    assert not list((out / "sessions").glob("*.tfrecord"))
