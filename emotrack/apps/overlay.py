"""The overlay `emotrack predict --overlay` writes: a copy of the video with the face box and an
arousal-valence plane drawn on every frame (the prediction as a moving marker, hollow where the frame has
no face, nothing before the first face's prediction)."""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from emotrack.files import temporary_path
from emotrack.media.video import VideoError, display_rotation, upright

# The overlay's colours (RGB).
_BOX = (0, 230, 90)
_MARKER = (255, 70, 40)
_AXES = (170, 170, 170)


class _Plane:
    """The arousal-valence plane drawn in the lower right corner of every frame: valence on x, arousal on
    y, both from -1 to 1 (values beyond are drawn at the edge), the current frame's prediction as a
    marker (hollow where the frame has no face), the last second as a fading trail and, where there is
    room, the two values as text."""

    def __init__(self, height: int, width: int, fps: float):
        from PIL import Image, ImageDraw

        side = int(min(max(64, round(0.3 * min(height, width))), min(height, width) - 8))
        if side < 24:
            raise ValueError(f"a {width}x{height} video is too small for the arousal-valence plane")
        self.side, self.pad = side, max(4, side // 24)
        self.left, self.top = width - side - self.pad, height - side - self.pad
        self.trail = max(2, int(round(fps)))
        # The static part, drawn once: a translucent dark square with the unit circle, axes and labels.
        layer = Image.new("RGBA", (side, side), (0, 0, 0, 150))
        draw = ImageDraw.Draw(layer)
        m = self.margin = max(3, side // 16)
        draw.ellipse((m, m, side - 1 - m, side - 1 - m), outline=(*_AXES, 120))
        draw.line((m, side // 2, side - 1 - m, side // 2), fill=(*_AXES, 255))
        draw.line((side // 2, m, side // 2, side - 1 - m), fill=(*_AXES, 255))
        draw.text((side - m - 6, side // 2 + 1), "V", fill=(*_AXES, 255))
        draw.text((side // 2 + 3, m - 2), "A", fill=(*_AXES, 255))
        rgba = np.asarray(layer, np.float32)
        self.alpha = rgba[..., 3:] / 255.0
        self.colour = rgba[..., :3] * self.alpha

    def point(self, valence: float, arousal: float) -> tuple[float, float]:
        half = (self.side - 1) / 2.0
        reach = half - self.margin
        return (half + reach * float(np.clip(valence, -1, 1)), half - reach * float(np.clip(arousal, -1, 1)))

    def draw(self, frame: np.ndarray, history: np.ndarray, face: bool) -> None:
        """Draw on ``frame`` (RGB uint8, in place); ``history`` (n, 2) valence, arousal up to this frame."""
        self.draw_marks(frame, [(history, face, _MARKER, "")])

    def draw_marks(self, frame: np.ndarray, marks: list[tuple[np.ndarray, bool, tuple, str]]) -> None:
        """Draw on ``frame`` (RGB uint8, in place) one marker per (history, face, colour, label): a person's
        valence, arousal up to this frame, whether their face is in it, their colour and their label (drawn
        beside the marker; the values as text where there is one marker and room)."""
        from PIL import Image, ImageDraw

        region = frame[self.top:self.top + self.side, self.left:self.left + self.side]
        blended = region * (1.0 - self.alpha) + self.colour
        image = Image.fromarray(blended.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for history, face, colour, label in marks:
            history = history[np.isfinite(history).all(axis=1)]  # no prediction before the first face
            if not len(history):
                continue
            points = [self.point(v, a) for v, a in history[-self.trail:]]
            for k, (p, q) in enumerate(zip(points, points[1:])):
                w = (k + 1) / len(points)
                draw.line((*p, *q), fill=tuple(int(110 * (1 - w) + c * w) for c in colour), width=2)
            if self.side >= 96 and len(marks) == 1:
                valence, arousal = history[-1]
                draw.text((self.margin, self.margin - 2), f"A {arousal:+.2f}\nV {valence:+.2f}", fill=_AXES,
                          spacing=1)
            x, y = points[-1]
            r = max(3, self.side // 22)
            if face:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(255, 255, 255))
            else:  # no face in this frame: the value is carried over, drawn hollow
                draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=2)
            if label:
                draw.text((x + r + 1, y - r - 1), label, fill=colour)
        region[...] = np.asarray(image)


def _draw_box(frame: np.ndarray, box, thickness: int, colour: tuple = _BOX) -> None:
    """An (x, y, w, h) rectangle outline on ``frame`` (in place), clipped to the frame."""
    h, w = frame.shape[:2]
    x0, y0 = int(round(box[0])), int(round(box[1]))
    x1, y1 = int(round(box[0] + box[2])), int(round(box[1] + box[3]))
    x0, x1 = np.clip([x0, x1], 0, w - 1)
    y0, y1 = np.clip([y0, y1], 0, h - 1)
    t = thickness
    frame[y0:min(y0 + t, y1 + 1), x0:x1 + 1] = colour
    frame[max(y1 - t + 1, y0):y1 + 1, x0:x1 + 1] = colour
    frame[y0:y1 + 1, x0:min(x0 + t, x1 + 1)] = colour
    frame[y0:y1 + 1, max(x1 - t + 1, x0):x1 + 1] = colour


def draw_overlay(frame: np.ndarray, box, face: bool, history: np.ndarray, plane: _Plane) -> np.ndarray:
    """One overlay frame: the face box (where the frame has a face) and the arousal-valence plane.

    Args:
        frame: RGB uint8 (H, W, 3); drawn on in place and returned.
        box: (x, y, w, h) of the face.
        history: (n, 2) valence, arousal of the frames up to this one.
    """
    if face:
        _draw_box(frame, box, max(1, round(min(frame.shape[:2]) / 180)))
    plane.draw(frame, history, face)
    return frame


#: The colours of the people of `write_people_overlay` (RGB), by track id.
PEOPLE_COLOURS = ((255, 70, 40), (40, 160, 255), (255, 210, 0), (200, 80, 255), (0, 220, 160), (255, 140, 200))


def write_people_overlay(video: str | Path, out: str | Path, tracks: dict[int, tuple[pd.DataFrame, np.ndarray]],
                         targets: list[str]) -> Path:
    """`write_overlay` for ``--faces all``: each person's box and marker on the plane in their own colour
    (`PEOPLE_COLOURS`), labelled with their track id. ``tracks``: id -> (their table, one row per frame
    of ``video``; their (T, 4) boxes)."""
    marks = [(table, boxes, PEOPLE_COLOURS[(pid - 1) % len(PEOPLE_COLOURS)], str(pid))
             for pid, (table, boxes) in sorted(tracks.items())]
    return _write(video, out, marks, targets)


def write_overlay(video: str | Path, out: str | Path, table: pd.DataFrame, boxes: np.ndarray,
                  targets: list[str]) -> Path:
    """Write a copy of ``video`` with the face box and the arousal-valence plane drawn on every frame.

    Same size, frame rate and frame time stamps as the input (a variable frame-rate video keeps its
    times; a picture stored turned is written upright, as it was predicted); H.264 (yuv420p, or yuv444p
    for an odd width or height), its sound track copied unchanged. Written under a temporary name and renamed.

    Args:
        table: `predict_video`'s table, one row per frame of ``video`` (decoded in the same order).
        boxes: (T, 4) face boxes; drawn where ``face_present`` is 1.
    """
    return _write(video, out, [(table, boxes, None, "")], targets)


def _write(video: str | Path, out: str | Path, people: list[tuple[pd.DataFrame, np.ndarray, tuple | None, str]],
           targets: list[str]) -> Path:
    """The overlay of `write_overlay` with one box and marker per (table, boxes, colour, label) of
    ``people`` (colour None: the single face's colours)."""
    import av

    video, out = Path(video), Path(out)
    if "arousal" not in targets or "valence" not in targets:
        raise ValueError(f"the overlay needs arousal and valence predictions; the run predicts {targets}")
    va = [table[["valence", "arousal"]].to_numpy(np.float32) for table, _, _, _ in people]
    present = [table["face_present"].to_numpy().astype(bool) for table, _, _, _ in people]
    frames = len(people[0][0])
    tmp = temporary_path(out, keep_suffix=True)
    try:
        source = av.open(str(video))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"video {video} cannot be read ({err})") from err
    count = 0
    try:
        with source, av.open(str(tmp), mode="w") as sink:
            vin = source.streams.video[0]
            vin.thread_type = "AUTO"
            rate = vin.average_rate or vin.guessed_rate or Fraction(25)
            vout = sink.add_stream("libx264", rate=rate)
            # Frames keep their own time stamps (a variable frame-rate video's included): the encoder
            # counts in the input's time base, not in ticks of 1/rate, where such stamps would collide.
            vout.time_base = vout.codec_context.time_base = vin.time_base
            vout.options = {"crf": "23", "preset": "superfast"}  # x264's default quality, fast to write
            ain = source.streams.audio[0] if source.streams.audio else None
            if ain is not None and ain.codec_context.name not in sink.supported_codecs:
                ain = None  # a sound track the output format cannot hold is left out
            aout = sink.add_stream_from_template(ain) if ain is not None else None
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            if display_rotation(video) % 180:  # drawn on the picture upright, as the boxes were found
                vout.width, vout.height = vout.height, vout.width
            vout.pix_fmt = "yuv420p" if vout.width % 2 == 0 and vout.height % 2 == 0 else "yuv444p"
            plane = _Plane(vout.height, vout.width, float(rate))
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in source.demux(*streams):
                if ain is not None and packet.stream.index == ain.index:
                    if packet.dts is not None:
                        packet.stream = aout
                        sink.mux(packet)
                    continue
                for frame in packet.decode():
                    if count >= frames:
                        raise VideoError(f"{video} decodes to more frames than were predicted ({frames})")
                    image = upright(frame)
                    if people[0][2] is None:
                        draw_overlay(image, people[0][1][count], present[0][count], va[0][:count + 1], plane)
                    else:
                        thickness = max(1, round(min(image.shape[:2]) / 180))
                        for k, (_, boxes, colour, _) in enumerate(people):
                            if present[k][count]:
                                _draw_box(image, boxes[count], thickness, colour)
                        plane.draw_marks(image, [(va[k][:count + 1], present[k][count], colour, label)
                                                 for k, (_, _, colour, label) in enumerate(people)])
                    drawn = av.VideoFrame.from_ndarray(image, format="rgb24")
                    drawn.pts, drawn.time_base = frame.pts, frame.time_base
                    sink.mux(vout.encode(drawn))
                    count += 1
            sink.mux(vout.encode(None))
        if count != frames:
            raise VideoError(f"{video} decoded to {count} frames on the second pass but {frames} on the first")
        os.replace(tmp, out)
    except av.error.FFmpegError as err:
        raise VideoError(f"overlay of {video} could not be written to {out} ({err})") from err
    finally:
        with contextlib.suppress(OSError):  # the cleanup must not hide the error that brought it here
            tmp.unlink(missing_ok=True)
    return out
