"""Faces on real photographs: detection, face choice, tracking through a video with a cut, eye alignment
and multi-size crops.

The face is the public-domain portrait of Grace Hopper that matplotlib ships; MTCNN (mtcnn 1.0.0, weights
in its wheel) finds it at (178, 110, 173, 220) in the 512x600 photograph.
"""


import numpy as np
import pytest
from PIL import Image

from emotrack.faces.crop import CROP_SPECS, CropSpec, crop_face, crop_faces, eye_angle
from emotrack.faces.detect import FaceDetector, TrackedFace, box_iou, choose_face
from emotrack.faces.finder import find_faces, make_face_finder
from emotrack.faces.track import FaceTracker, read_ahead

PHOTO_FACE = (178.0, 110.0, 173.0, 220.0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    """mtcnn's own ``detect_faces`` at its defaults, on whole frames."""
    return FaceDetector()


def scaled(image: np.ndarray, factor: float) -> np.ndarray:
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((round(pil.width * factor), round(pil.height * factor)), Image.BILINEAR))


def background(height: int, width: int) -> np.ndarray:
    """A smooth colour gradient: something to paste faces on that has no face of its own."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([90 + 40 * xx / width, 110 + 30 * yy / height, 130 + 0 * xx], -1).astype(np.uint8)


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> np.ndarray:
    canvas = canvas.copy()
    canvas[y:y + image.shape[0], x:x + image.shape[1]] = image
    return canvas


def test_mtcnn_finds_the_face_in_the_photograph(photo, detector):
    face = detector.detect([photo])[0]
    assert box_iou(face.box, PHOTO_FACE) > 0.95 and face.confidence > 0.9
    assert set(face.keypoints) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    # Proposals on the frame shrunk to find faces down to 0.2 of its width, O-Net at full size: same face.
    fast = FaceDetector(min_face=0.2)
    assert fast.detection_scale(photo.shape) == pytest.approx(20 / (0.2 * 512))
    shrunk = fast.detect([photo])[0]
    assert box_iou(shrunk.box, face.box) > 0.9
    for name in ("left_eye", "right_eye", "nose"):
        assert np.hypot(*np.subtract(shrunk.keypoints[name], face.keypoints[name])) < 6
    # Unshrunk, the staged detector (compiled networks, O-Net patches sampled in NumPy) gives mtcnn's numbers.
    from mtcnn import MTCNN

    unshrunk = FaceDetector(min_face=20 / 512, min_confidence=0.0)
    assert unshrunk.detection_scale(photo.shape) == 1.0
    expected = MTCNN().detect_faces(photo, output_type="numpy", box_format="xyxy")
    np.testing.assert_allclose(unshrunk._detect_rows([photo])[0][:, :16], expected, atol=0.01)


def test_a_frame_without_a_face_gives_none(detector):
    rng = np.random.default_rng(0)
    blank = np.full((240, 320, 3), 128, np.uint8)
    # A landscape of sorts: sky, a hill line, grass texture.
    from scipy import ndimage

    yy, xx = np.mgrid[0:240, 0:320]
    hills = 120 + 25 * np.sin(xx / 37.0) + 10 * np.sin(xx / 11.0 + 1)
    sky = yy < hills
    texture = ndimage.gaussian_filter(rng.normal(0, 40, (240, 320)), 1.5)
    landscape = np.where(sky[..., None], [120, 170, 235], [60, 130, 50]) + (~sky[..., None]) * texture[..., None]
    landscape = np.clip(landscape, 0, 255).astype(np.uint8)
    frames = [blank, landscape]
    assert detector.detect(frames) == [None, None]
    assert FaceDetector(min_face=0.1).detect(frames) == [None, None]
    assert FaceTracker(every=2, min_face=0.1, read_ahead=0).track_all(frames * 3) == [None] * 6


def test_two_faces_select_largest_left_right(photo):
    big, small = scaled(photo, 0.6), scaled(photo, 0.35)
    canvas = background(400, 560)
    canvas = paste(canvas, small, 20, 100)          # small face on the left
    canvas = paste(canvas, big, 560 - big.shape[1] - 10, 20)
    found = FaceDetector(min_face=0.1).detect_all([canvas])[0]
    assert len(found) == 2
    centres = sorted(f.box[0] + f.box[2] / 2 for f in found)
    assert centres[0] < 200 < 260 < centres[1]
    for select, expected_centre in (("largest", centres[1]), ("left", centres[0]), ("right", centres[1])):
        for detector in (FaceDetector(select=select), FaceDetector(select=select, min_face=0.1)):
            face = detector.detect([canvas])[0]
            assert face.box[0] + face.box[2] / 2 == pytest.approx(expected_centre, abs=8), (select, detector.min_face)
    mirrored = np.ascontiguousarray(canvas[:, ::-1])  # now the large face is on the left
    left = FaceDetector(select="left", min_face=0.1).detect([mirrored])[0]
    assert left.box[2] > 80 and left.box[0] < 200
    # One person alone on the right is not the left one.
    alone = paste(background(400, 560), big, 560 - big.shape[1] - 10, 20)
    for detector in (FaceDetector(select="left", min_face=0.1), FaceTracker(select="left", read_ahead=0)):
        result = detector.detect([alone]) if isinstance(detector, FaceDetector) else detector.track_all([alone])
        assert result == [None]
    assert FaceDetector(select="right", min_face=0.1).detect([alone])[0].box[2] > 80
    # "tracked" keeps the face that overlaps the one before, not the larger one.
    assert choose_face(found, "tracked", previous=min(found, key=lambda f: f.box[2])).box[2] < 80
    with pytest.raises(ValueError, match="select"):
        FaceDetector(select="biggest")


def test_make_face_finder_builds_the_finder_asked_for():
    tracker = make_face_finder(tracker=True, every=4, min_face=0.25, min_confidence=0.8, select="left",
                               batch_size=30)
    assert isinstance(tracker, FaceTracker)
    assert (tracker.every, tracker.detector.min_face, tracker.min_confidence, tracker.select) == (4, 0.25, 0.8, "left")
    assert tracker.batch_size == 32  # rounded up to a multiple of every: chunks end on a key frame
    # MTCNN on every frame at its defaults: no shrinking, whatever min_face and every say.
    detector = make_face_finder(tracker=False, every=4, min_face=0.25, min_confidence=0.8, select="right",
                                batch_size=7)
    assert isinstance(detector, FaceDetector) and detector.min_face is None
    assert (detector.batch_size, detector.min_confidence, detector.select) == (7, 0.8, "right")
    with pytest.raises(ValueError, match="select"):
        make_face_finder(select="biggest")


def test_find_faces_keeps_every_frame_and_takes_the_select_asked_for(photo):
    big, small = scaled(photo, 0.6), scaled(photo, 0.35)
    canvas = paste(paste(background(400, 560), small, 20, 100), big, 560 - big.shape[1] - 10, 20)
    empty = background(400, 560)
    frames = [canvas, empty, canvas]
    expected = FaceDetector(select="left", min_face=0.1).detect([canvas])[0]  # the small face, on the left
    for tracker in (True, False):
        finder = make_face_finder(tracker=tracker, every=2, select="largest", batch_size=2)
        found = list(find_faces(finder, iter(frames), "left"))
        assert len(found) == 3 and all(f is g for (f, _), g in zip(found, frames))
        assert found[1][1] is None
        for _, face in (found[0], found[2]):
            assert box_iou(face.box, expected.box) > 0.8, tracker
        assert finder.select == "largest"  # the finder given is left as it was


def test_tracker_follows_a_moving_face_through_a_cut(photo, detector, tmp_path):
    from emotrack.media.video import iter_frames, read_video, write_video

    head = scaled(photo[40:420, 100:430], 0.4)  # 152x132, the face about 70x88
    canvas = background(240, 320)
    # Moving right 5 px a frame; a cut to another place, moving left; the camera covered; the face back.
    places = ([(10 + 5 * i, 20 + round(3 * np.sin(i / 4))) for i in range(17)]
              + [(180 - 4 * i, 80) for i in range(13)] + [None] * 3 + [(60 + 2 * i, 50) for i in range(9)])
    frames = [paste(canvas, head, *p) if p is not None else np.full_like(canvas, 30) for p in places]
    video = tmp_path / "moving.mp4"
    write_video(video, frames, 25, quality=14)

    tracker = FaceTracker(every=5, min_face=0.2, batch_size=10, read_ahead=8)
    pairs = list(tracker.track(iter_frames(video), frame=lambda item: item[1]))
    assert len(pairs) == len(places)  # no frame dropped, faceless ones included
    faces = [face for _, face in pairs]
    decoded, _, _ = read_video(video)
    assert all(np.array_equal(item[1], frame) for (item, _), frame in zip(pairs, decoded))
    per_frame = FaceDetector(min_face=0.2).detect(list(decoded))  # the same detector on every frame
    reference = detector.detect(list(decoded))  # mtcnn's detect_faces on every frame
    # Where the face really is: its box in the head image, moved to where the head was pasted.
    still = detector.detect([paste(canvas, head, 40, 40)])[0].box
    truth = [(still[0] - 40 + p[0], still[1] - 40 + p[1], still[2], still[3]) if p else None for p in places]

    assert [f is None for f in faces] == [p is None for p in places] == [f is None for f in reference]
    present = [i for i, f in enumerate(faces) if f is not None]
    assert min(box_iou(faces[i].box, truth[i]) for i in present) >= 0.9
    # Tracked and detected boxes each sit a few pixels off the truth (O-Net sees the face framed a little
    # differently), so against each other they agree less closely than with the truth.
    assert min(box_iou(faces[i].box, per_frame[i].box) for i in present) >= 0.85
    assert np.mean([box_iou(faces[i].box, per_frame[i].box) for i in present]) >= 0.93
    # mtcnn's boxes jitter by a few pixels as the face moves (down to IoU 0.83 with the truth here),
    # so against them single frames may fall below 0.9; on average the tracker agrees.
    assert np.mean([box_iou(faces[i].box, reference[i].box) for i in present]) >= 0.9
    assert min(box_iou(faces[i].box, reference[i].box) for i in present) >= 0.7
    assert all(isinstance(f, TrackedFace) for f in faces if f is not None)
    sources = [f.source if f is not None else None for f in faces]
    assert sources.count("tracked") >= 20  # most frames between key frames are tracked, not detected
    # Key frames 15 and 20 hold faces far apart: the face of frame 15 is followed frame by frame up to the
    # cut; O-Net loses it there, the frames after the cut are detected afresh, and the box lands on the new
    # place at once.
    assert sources[16:20] == ["tracked"] + ["detected"] * 3
    assert faces[17].box[0] > faces[16].box[0] + 60 and box_iou(faces[17].box, truth[17]) > 0.9
    # The face coming back after the covered camera (key frame 30 has no face, 35 has one) is found in the
    # first frame that shows it: followed back in time from key frame 35, it is lost on the covered frames,
    # which are then detected afresh and found empty.
    assert sources[30:36] == [None, None, None, "tracked", "tracked", "detected"]
    assert box_iou(faces[33].box, truth[33]) > 0.9
    # The faces do not depend on the batch size: a live source's (1, rounded up to 5) gives the boxes a
    # file's 40 give.
    for batch_size in (5, 40):
        again = FaceTracker(every=5, min_face=0.2, batch_size=batch_size, read_ahead=0).track_all(list(decoded))
        assert [f is None for f in again] == [f is None for f in faces]
        np.testing.assert_allclose([f.box for f in again if f], [f.box for f in faces if f], atol=0.01)


def test_eye_alignment_levels_the_eyes(photo, detector):
    for angle in (-15, 12):  # degrees, counter-clockwise as displayed
        turned = np.asarray(Image.fromarray(photo).rotate(angle, resample=Image.BILINEAR,
                                                          fillcolor=(128, 128, 128)))
        face = detector.detect([turned])[0]
        assert abs(eye_angle(face.keypoints)) > 8  # the eyes are tilted in the frame
        aligned, plain = (crop_faces(turned, face, [CropSpec(224, 224)], align=align)[0] for align in (True, False))
        again = detector.detect([aligned, plain])
        assert abs(eye_angle(again[0].keypoints)) < 3
        assert abs(eye_angle(again[1].keypoints) - eye_angle(face.keypoints)) < 4
    with pytest.raises(ValueError, match="keypoints"):
        crop_faces(photo, PHOTO_FACE, ["huang2018"], align=True)


def test_multi_size_crops_have_exact_shapes_in_one_pass(photo, detector):
    face = detector.detect([photo])[0]
    crops = crop_faces(photo, face, list(CROP_SPECS), margin=0.2)
    expected = {"huang2018": (112, 112, 1), "tzirakis2017": (96, 96, 3), "teixeira2021": (100, 80, 3),
                "astnet": (224, 224, 3)}
    assert [c.shape for c in crops] == [expected[name] for name in CROP_SPECS]
    assert all(c.dtype == np.uint8 for c in crops)
    # One pass gives what each spec gives alone; crop_face is the one-spec case.
    for spec, crop in zip(CROP_SPECS.values(), crops):
        np.testing.assert_array_equal(crop, crop_faces(photo, face.box, [spec])[0])
    np.testing.assert_array_equal(crops[0], crop_face(photo, face.box, (112, 112), 0.2, gray=True))
    # Aligned and near the frame's edge (padded with edge pixels), the shapes hold.
    edge = crop_faces(photo, (470, 560, 60, 70), [*CROP_SPECS.values(), (64, 48, True)], align=False)
    assert [c.shape for c in edge] == [s.shape for s in CROP_SPECS.values()] + [(64, 48, 1)]
    # Past any edge, and wholly outside the frame, a crop is the one cut from the frame padded with its
    # edge pixels (numpy's "edge" padding: the reference).
    padded = np.pad(photo, ((300, 300), (300, 300), (0, 0)), mode="edge")
    for box in [(470, 560, 60, 70), (-40, -30, 90, 100), (-200, 100, 60, 60), (600, 700, 50, 50), (-20, 0, 600, 40)]:
        shifted = (box[0] + 300, box[1] + 300, box[2], box[3])
        for ours, reference in zip(crop_faces(photo, box, list(CROP_SPECS)), crop_faces(padded, shifted, list(CROP_SPECS))):
            np.testing.assert_array_equal(ours, reference)
    assert [c.shape for c in crop_faces(photo, face, list(CROP_SPECS), align=True)] == list(expected.values())
    # The 100x80 crop keeps the face's proportions: it is cut narrower than the square, not squeezed.
    gray = crop_faces(photo, face, [CropSpec(100, 80, True), CropSpec(100, 100, True)])
    np.testing.assert_allclose(gray[0][:, 40].astype(float), gray[1][:, 50].astype(float), atol=40)


def test_read_ahead_keeps_order_raises_and_stops():
    assert list(read_ahead(range(100), 4)) == list(range(100))

    def broken():
        yield 1
        raise OSError("truncated")

    with pytest.raises(OSError, match="truncated"):
        list(read_ahead(broken(), 2))
    taken = []

    def endless():
        i = 0
        while True:
            taken.append(i)
            yield i
            i += 1

    stream = read_ahead(endless(), 3)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()  # joins the producer
    count = len(taken)
    assert count <= 5 + 3 + 2 and len(taken) == count


def test_pyramid_is_resampled_as_tensorflow_resamples_it(photo):
    """MTCNN's image pyramid, resampled in NumPy, is `tf.image.resize(method="area")`'s at every level, at
    the sizes mtcnn's own `scale_images` gives."""
    import tensorflow as tf
    from mtcnn.utils.images import scale_images

    from emotrack.faces.detect import _area_resize, _pyramid_shapes

    for image in (photo, scaled(photo, 0.37), photo[:211, :97]):
        normalised = (image.astype(np.float32) - 127.5) / 128.0
        levels = _pyramid_shapes(*image.shape[:2])
        assert len(levels) >= 3 and min(min(size) for _, size in levels) >= 12
        for scale, size in levels:
            expected = scale_images(normalised[None], scale)[0].numpy()
            assert expected.shape[:2] == size
            np.testing.assert_allclose(_area_resize(normalised, size), expected, atol=1e-5)
    # A shrink by a whole factor averages whole blocks.
    block = np.arange(48, dtype=np.float32).reshape(4, 4, 3)
    np.testing.assert_allclose(_area_resize(block, (2, 2)), tf.nn.avg_pool2d(block[None], 2, 2, "VALID")[0])


def test_patches_are_sampled_as_tensorflow_crops_and_resizes_them(photo):
    """MTCNN's patches (mtcnn's ``extract_patches``: ``tf.image.crop_and_resize`` of the normalised frame at the
    box corners divided by the frame size, 0 outside it), for boxes in frames of two sizes at once, some
    reaching out of the frame: each patch as TensorFlow samples it from its own frame."""
    import tensorflow as tf

    from emotrack.faces.detect import _sample_patches

    frames = [photo, np.ascontiguousarray(photo[100:400, 50:450][::-1])]
    rng = np.random.default_rng(1)
    corners = rng.uniform(-80, 420, (25, 2))
    rows = np.concatenate([rng.integers(0, 2, (25, 1)), corners, corners + rng.uniform(8, 300, (25, 1))], axis=1)
    for side in (24, 48):
        ours = _sample_patches(frames, rows, side)
        assert ours.shape == (25, side, side, 3) and ours.dtype == np.float32
        for k, (index, x1, y1, x2, y2) in enumerate(rows):
            frame = frames[int(index)]
            h, w = frame.shape[:2]
            normalised = (frame[None].astype(np.float32) - 127.5) / 128.0
            expected = tf.image.crop_and_resize(normalised, [[y1 / h, x1 / w, y2 / h, x2 / w]], [0], (side, side))
            np.testing.assert_allclose(ours[k], expected.numpy()[0], atol=1e-4)  # a pixel step is 0.0078
    assert (ours == 0).any(), "some boxes reach out of the frame, where patches are 0"


def test_networks_give_the_keras_models_numbers_whatever_they_are_batched_with(photo):
    """MTCNN's networks in TensorFlow Lite give the Keras models' outputs (weights of the mtcnn wheel) on real
    face patches, and the same numbers for a patch alone as among any other patches, and on one thread (the
    tracker's) as on two (MTCNN on every frame)."""
    import tensorflow as tf
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    from emotrack.faces.detect import _sample_patches, _shared_stages

    stages, two = _shared_stages(1), _shared_stages(2)
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 300, (37, 2))
    sides = rng.uniform(40, 260, (37, 1))
    rows = np.concatenate([np.zeros((37, 1)), corners, corners + sides], axis=1)
    for network, keras, side in ((stages.rnet, StageRNet().model, 24), (stages.onet, StageONet().model, 48)):
        patches = _sample_patches([photo], rows, side)
        ours = network(patches)
        theirs = [t.numpy() for t in keras(tf.constant(patches))]
        assert [o.shape for o in ours] == [t.shape for t in theirs]
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, atol=1e-4)
        alone = [network(patches[k:k + 1]) for k in range(len(patches))]
        for i, output in enumerate(ours):  # 37 patches run as 32 + 4 + 1: each as it is alone
            np.testing.assert_array_equal(output, np.concatenate([a[i] for a in alone]))
        on_two = getattr(two, "rnet" if side == 24 else "onet")(patches)
        for a, b in zip(ours, on_two):
            np.testing.assert_array_equal(a, b)
    image = ((photo[:200, :300].astype(np.float32) - 127.5) / 128.0)[None]
    for a, b, c in zip(stages.pnet(image), StagePNet().model(tf.constant(image)), two.pnet(image)):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-4)
        np.testing.assert_array_equal(a, c)


def test_converted_networks_are_kept_for_the_next_process(tmp_path, monkeypatch):
    """A stage's TensorFlow Lite model is converted once and read back after; a torn file is converted again."""
    from mtcnn.stages import StagePNet

    from emotrack.faces.detect import _lite_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = _lite_model(StagePNet, None)
    (kept,) = (tmp_path / "emotrack" / "mtcnn").iterdir()
    assert kept.read_bytes() == first and first[4:8] == b"TFL3"
    assert _lite_model(StagePNet, None) == first  # read back, not converted again (which embeds new names)
    kept.write_bytes(b"\x00" * 4)  # the marker gone: as if the write had been cut short
    again = _lite_model(StagePNet, None)
    assert again[4:8] == b"TFL3" and kept.read_bytes() == again
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    assert _lite_model(StagePNet, None)[4:8] == b"TFL3"  # nowhere to keep it: converted all the same
