"""``emotrack predict RUN -``: a real MPEG-TS stream piped by another process (benchmarks/live_source.py),
rows flushed as they are known, the end of the stream and Ctrl-C closing the CSV cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.apps.live import LIVE_EVERY
from emotrack.apps.predict import predict_video
from emotrack.cli import main

ROOT = Path(__file__).resolve().parents[1]
SOURCE = [sys.executable, str(ROOT / "benchmarks" / "live_source.py")]
EMOTRACK = [str(Path(sys.executable).parent / "emotrack")]


def _piped(video, run, out, *source_args):
    """The live source streaming ``video`` into ``emotrack predict RUN - --out OUT``; both processes."""
    producer = subprocess.Popen([*SOURCE, str(video), *source_args], stdout=subprocess.PIPE)
    consumer = subprocess.Popen([*EMOTRACK, "predict", str(run), "-", "--out", str(out), "--quiet"],
                                stdin=producer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer.stdout.close()  # the consumer holds the pipe now
    return producer, consumer


def test_stdin_stream_is_predicted_as_its_file(tiny_run, tiny_corpus, tmp_path):
    """Every frame of the stream gets its row, at its time; the values are those `predict_video` gives
    (without the post-processing chain, which a live stream cannot have) on the very bytes streamed."""
    out, copy = tmp_path / "live.csv", tmp_path / "streamed.ts"
    producer, consumer = _piped(tiny_corpus / "videos" / "S01.mp4", tiny_run, out, "--tee", str(copy))
    said, err = consumer.communicate(timeout=120)
    assert producer.wait(timeout=30) == 0
    assert consumer.returncode == 0, err
    assert f"40 frames (100.0% with a face) written to {out}" in said
    live = pd.read_csv(out)
    assert list(live.columns) == ["time", "arousal", "valence", "face_present"]
    np.testing.assert_allclose(live["time"], np.arange(40) / 10, atol=1e-6)
    # The file path with the live path's face tracker (key frames at most every LIVE_EVERY frames).
    reference = predict_video(tiny_run, copy, postprocess=False, every=LIVE_EVERY).table
    np.testing.assert_array_equal(live["face_present"], reference["face_present"])
    np.testing.assert_allclose(live[["arousal", "valence"]], reference[["arousal", "valence"]], atol=1e-5)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """30 s of a synthetic face at 10 fps: longer than a test waits for."""
    from emotrack.media.video import write_video
    from emotrack.synth.corpus import iter_session_frames

    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return write_video(path, (item.image for item in iter_session_frames(7, 2, 30.0, 10.0)), 10.0)


@pytest.mark.slow  # a real-time stream and a second process: about 10 s
def test_rows_come_as_the_stream_plays_and_ctrl_c_closes_the_csv(tiny_run, long_video, tmp_path):
    out, sent = tmp_path / "live.csv", tmp_path / "sent.txt"
    producer, consumer = _piped(long_video, tiny_run, out, "--pace", "--log", str(sent))
    try:
        deadline = time.monotonic() + 90
        rows = 0
        while rows < 15 and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = max(0, len(out.read_text().splitlines()) - 1) if out.exists() else 0
        assert rows >= 15, "no rows while the stream plays"
        assert producer.poll() is None  # the stream is still playing: the rows were written as they came
        consumer.send_signal(signal.SIGINT)
        said, err = consumer.communicate(timeout=60)
    finally:
        for process in (consumer, producer):
            if process.poll() is None:
                process.kill()
        producer.wait()
    assert consumer.returncode == 0, err
    assert "Traceback" not in err
    text = out.read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert all(line.count(",") == 3 for line in lines)  # no half-written row
    live = pd.read_csv(out)
    frames_sent = len(sent.read_text().splitlines())
    # Every frame read has its row, in order, with no gap; none was lost to the interruption.
    assert rows <= len(live) <= frames_sent < 300
    np.testing.assert_allclose(live["time"], np.arange(len(live)) / 10, atol=1e-6)
    assert f"{len(live)} frames" in said
    assert np.isfinite(live.loc[live["face_present"].cummax() == 1, ["arousal", "valence"]].to_numpy()).all()


def test_live_source_errors_are_clear(tiny_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(tiny_run), "-", "--out", str(tmp_path / "a.csv"),
                                  "--overlay", str(tmp_path / "a.mp4")])
    assert result.exit_code == 2 and "--overlay needs a video file" in result.output
    result = runner.invoke(main, ["predict", str(tiny_run), str(tmp_path / "nosuch.mp4"), "--out",
                                  str(tmp_path / "a.csv")])
    assert result.exit_code == 2 and "nosuch.mp4 is neither a video file nor a live source" in result.output
    result = runner.invoke(main, ["predict", str(tiny_run), "/dev/video97", "--out", str(tmp_path / "a.csv")])
    assert result.exit_code == 1 and "camera /dev/video97" in result.output and "cannot be opened" in result.output
    result = runner.invoke(main, ["predict", str(tiny_run), "rtsp://127.0.0.1:9/none", "--out",
                                  str(tmp_path / "a.csv")])
    assert result.exit_code == 1 and "stream rtsp://127.0.0.1:9/none" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "a.csv").exists()  # nothing written for a source that never opened
    # Standard input that is not an MPEG-TS stream.
    done = subprocess.run([*EMOTRACK, "predict", str(tiny_run), "-", "--out", str(tmp_path / "a.csv"), "--quiet"],
                          input=b"not a video\n" * 100, capture_output=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert b"standard input" in done.stderr and b"MPEG-TS" in done.stderr and b"Traceback" not in done.stderr
    assert os.path.exists(tmp_path / "a.csv") is False
