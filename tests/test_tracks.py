"""``--faces all``: every person in the video with a stable id, through crossings, exits and cuts. The
videos are composed here from the synthetic corpus' subjects, so the test knows where each face is."""

import numpy as np

from emotrack.faces.detect import FaceDetector
from emotrack.faces.people import PeopleTracker, face_signature, signature_distance, track_people
from people_videos import FPS, SIDE, WIDTH, compose


def _ids_of(tracked, noses):
    """For each subject, the ids given to the faces whose box holds their nose; and the frames they were
    in view but not found."""
    ids, missed = {}, {}
    for (_, people), seen in zip(tracked, noses):
        for subject, (x, y) in seen.items():
            mine = [pid for pid, f in people if f.box[0] <= x <= f.box[0] + f.box[2]
                    and f.box[1] <= y <= f.box[1] + f.box[3]]
            ids.setdefault(subject, []).extend(mine)
            missed[subject] = missed.get(subject, 0) + (not mine)
    return ids, missed


def _check_stable(images, noses, subjects):
    tracked = list(track_people(FaceDetector(min_confidence=0.9, batch_size=8, min_face=0.15), images, FPS))
    ids, missed = _ids_of(tracked, noses)
    in_view = {s: sum(s in seen for seen in noses) for s in range(subjects)}
    for s in range(subjects):
        assert missed[s] <= 0.2 * in_view[s], f"subject {s} missed in {missed[s]} of {in_view[s]} frames"
        assert len(set(ids[s])) == 1, f"subject {s} was given ids {sorted(set(ids[s]))}"
    assert len({ids[s][0] for s in range(subjects)}) == subjects  # one id per person, none shared
    everyone = {pid for _, people in tracked for pid, _ in people}
    assert everyone == {ids[s][0] for s in range(subjects)}  # no id for anything else
    return tracked


def test_two_people_cross_leave_come_back_and_swap_at_a_cut():
    # 0-11: A walks right, B left, B passing in front; 12-19: A away (longer than position counts);
    # 20-24: A back on the right; 25-29: a cut, the two swap sides.
    def a(k):
        return 20 * k if k < 12 else None if k < 20 else 220 if k < 25 else 0

    def b(k):
        return 220 - 20 * k if k < 12 else 0 if k < 25 else 220

    images, noses = compose([a, b], 30)
    assert any(0 not in seen for seen in noses[3:9])  # A is covered while they cross
    _check_stable(images, noses, 2)


def test_three_people_one_leaves_and_comes_back_elsewhere():
    # C stays in the middle until 9, leaves, and comes back on the left at 20; A and B cross in front of
    # the middle; a cut at 25 moves everyone.
    def a(k):
        return 0 if k < 25 else 112

    def b(k):
        return 224 if k < 25 else 0

    def c(k):
        return 112 if k < 10 else None if k < 20 else 0 if k < 25 else 224

    images, noses = compose([c, a, b], 30)
    _check_stable(images, noses, 3)


def test_signatures_tell_people_apart():
    images, noses = compose([lambda k: 0, lambda k: 224], 8)
    faces = FaceDetector(min_confidence=0.9, batch_size=8, min_face=0.15).detect_all(images)
    sig = {}
    for image, found in zip(images, faces):
        for f in found:
            sig.setdefault(int(f.box[0] > WIDTH / 2), []).append(face_signature(image, f.box))
    same = max(signature_distance(s, sig[i][0]) for i in sig for s in sig[i])
    other = min(signature_distance(s, t) for s in sig[0] for t in sig[1])
    assert same < PeopleTracker(FPS).max_distance < other


def test_predict_faces_all_one_row_per_frame_and_person(tiny_run, tmp_path):
    """Two people side by side, the left one away for frames 10-17: --faces all gives each their track,
    and each person's rows are what `predict_video` gives for that side alone (MTCNN keeping the left or
    the right face), the person away flagged face_present 0 with their last prediction held."""
    import pandas as pd
    from click.testing import CliRunner

    from emotrack.apps.predict import predict_video, run_preprocessing
    from emotrack.cli import main
    from emotrack.config.run import load_run_config
    from emotrack.media.video import write_video

    images, noses = compose([lambda k: None if 10 <= k < 18 else 0, lambda k: 224], 30)
    video = write_video(tmp_path / "two.mp4", images, FPS)
    result = CliRunner().invoke(main, ["predict", str(tiny_run), str(video), "--out", str(tmp_path / "all.csv"),
                                       "--faces", "all", "--overlay", str(tmp_path / "all.mp4"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 people, 30 frames: 60 rows" in result.output
    table = pd.read_csv(tmp_path / "all.csv")
    assert list(table.columns) == ["time", "track", "arousal", "valence", "face_present"]
    assert table["track"].tolist() == [1, 2] * 30
    options = run_preprocessing(load_run_config(tiny_run))
    for side, subject in (("left", 0), ("right", 1)):
        rows = table[table["track"] == (1 if side == "left" else 2)].reset_index(drop=True)
        detector = FaceDetector(min_confidence=options.min_confidence, batch_size=options.batch_size,
                                select=side, min_face=options.min_face)
        alone = predict_video(tiny_run, video, detector=detector).table
        np.testing.assert_allclose(rows[["arousal", "valence"]], alone[["arousal", "valence"]], atol=1e-5)
        np.testing.assert_array_equal(rows["face_present"], alone["face_present"])
        in_view = np.array([subject in seen for seen in noses])
        assert (rows["face_present"].to_numpy()[in_view] == 1).mean() > 0.8
        assert rows["face_present"].to_numpy()[~in_view].sum() == 0
    # The overlay: each person's box in their own colour around their face: red (track 1) around the left
    # person, blue (track 2) around the right one.
    from emotrack.media.video import read_video

    gained = read_video(tmp_path / "all.mp4")[0].astype(int) - read_video(video)[0].astype(int)
    k = 0  # both in view
    redder = gained[k, ..., 0] - gained[k, ..., 2] > 60
    bluer = gained[k, ..., 2] - gained[k, ..., 0] > 60
    left, right = slice(0, SIDE), slice(224, 224 + SIDE)
    assert redder[:, left].sum() > 10 and bluer[:, right].sum() > 10
    assert redder[:, left].sum() > 5 * bluer[:, left].sum() and bluer[:, right].sum() > 5 * redder[:, right].sum()
    result = CliRunner().invoke(main, ["predict", str(tiny_run), "-", "--out", str(tmp_path / "x.csv"),
                                       "--faces", "all"])
    assert result.exit_code == 2 and "--faces all" in result.output and not (tmp_path / "x.csv").exists()
