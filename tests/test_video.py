"""emotrack.media.video.write_video: what it writes reads back (frame count, rate, times, pixels), in both codecs,
and an empty input leaves no file."""

import numpy as np
import pytest

from emotrack.media.video import read_video, video_fps, write_video


def _frames(n=10, h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([(x * 3 + 5 * k) % 256, (y * 4) % 256, np.full_like(x, 20 * k)], -1).astype(np.uint8)
            for k in range(n)]


@pytest.mark.parametrize("name, codec, quality, tolerance", [("v.mp4", "libx264", 0, 2.0), ("v.avi", "mpeg4", 2, 6.0)])
def test_written_frames_read_back_at_their_rate(tmp_path, name, codec, quality, tolerance):
    frames = _frames()
    path = write_video(tmp_path / name, iter(frames), 20.0, codec=codec, quality=quality)
    decoded, times, fps = read_video(path)
    assert fps == video_fps(path) == 20.0 and len(decoded) == len(frames)
    np.testing.assert_allclose(times, np.arange(len(frames)) / 20.0, atol=1e-6)
    # 4:2:0 chroma and (for MPEG-4) quantisation change pixels a little, never the picture.
    assert np.abs(decoded.astype(float) - np.stack(frames)).mean() < tolerance
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_no_frames_is_an_error_that_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="no frames to write"):
        write_video(tmp_path / "empty.mp4", [], 25.0)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="codec must be"):
        write_video(tmp_path / "x.webm", _frames(1), 25.0, codec="vp9")
