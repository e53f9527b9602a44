"""``preprocess --faces all``: every person of a video a session of their own, and the left/right person of a
shared video kept through crossings. Real videos (PyAV) of the synthetic subjects moving along known paths
(`people_videos.compose`), real MTCNN on their pixels; the tests know where each face is in every frame."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.corpora.layout import discover
from emotrack.corpora.spec import load_spec
from emotrack.data.pipeline import session_arrays
from emotrack.faces.crop import crop_faces
from emotrack.faces.people import side_track
from emotrack.media.video import read_video, write_video
from emotrack.records.manifest import read_manifest
from people_videos import FPS, compose

FRAMES = 30  # 3 s at 10 fps


# pair: A walks right, B left (B passes in front, A covered); A away at 12-19 (longer than position counts),
# back on the right at 20; a cut at 25 swaps them; a third person shows up for 4 frames (too short).
def _pair_a(k):
    return 20 * k if k < 12 else None if k < 20 else 220 if k < 25 else 0


def _pair_b(k):
    return 220 - 20 * k if k < 12 else 0 if k < 25 else 220


def _pair_brief(k):
    return 112 if k >= 26 else None


# trio: C in the middle until 9, away, back on the left at 20; a cut at 25 moves everyone.
def _trio_c(k):
    return 112 if k < 10 else None if k < 20 else 0 if k < 25 else 224


def _trio_a(k):
    return 0 if k < 25 else 112


def _trio_b(k):
    return 224 if k < 25 else 0


VIDEOS = {"pair": [_pair_a, _pair_b, _pair_brief], "trio": [_trio_c, _trio_a, _trio_b]}
# Each person's own ratings: arousal = slope * k, valence = -slope * k (distinct per person and session).
SLOPES = {"pair_track1": 0.01, "pair_track2": -0.02, "trio_track1": 0.03, "trio_track2": 0.02, "trio": 0.005}


def _rating_file(path, slope):
    rows = "".join(f"{k / FPS:.1f},{slope * k:.3f},{-slope * k:.3f},0\n" for k in range(FRAMES))
    path.write_text("time,arousal,valence,liking\n" + rows)


def _corpus(root, sessions):
    """A generic corpus of ``sessions`` (of `VIDEOS`) with the rating files of `SLOPES`; the noses of each video."""
    (root / "videos").mkdir(parents=True)
    (root / "ratings").mkdir()
    noses = {}
    for session in sessions:
        images, noses[session] = compose(VIDEOS[session], FRAMES)
        write_video(root / "videos" / f"{session}.mp4", images, FPS)
    parts = {"pair": "train", "trio": "devel"}
    (root / "partitions.csv").write_text("session,subject,partition\n"
                                         + "".join(f"{s},{s[0]},{parts[s]}\n" for s in sessions))
    for name, slope in SLOPES.items():
        if name.split("_")[0] in sessions:
            _rating_file(root / "ratings" / f"{name}.csv", slope)
    return noses


def _expected_ids(noses, paths):
    """Track ids as the tracker gives them: in the order people first appear, left to right among those
    who appear together; {id: subject}."""
    order = []
    for k, seen in enumerate(noses):
        new = [s for s in range(len(paths)) if paths[s](k) is not None and s not in order]
        order += sorted(new, key=lambda s: paths[s](k))
    return {i + 1: s for i, s in enumerate(order)}


def _holds(box, point, slack=0.0):
    x, y, w, h = box
    return x - slack <= point[0] <= x + w + slack and y - slack <= point[1] <= y + h + slack


def _check_person(s, subject, noses, path):
    """Session ``s`` follows ``subject`` on every frame: found where their nose is in view (80 %), absent
    where they are away, its box on their face (centre within 16 px of the nose) and never on anyone else's."""
    present = s["face_present"]
    in_view = [subject in seen for seen in noses]
    assert present[in_view].mean() >= 0.8
    assert all(present[k] == 0 for k in range(FRAMES) if path(k) is None)  # away: never someone else
    for k in np.flatnonzero(present):
        box = s["box"][k]
        centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
        if subject in noses[k]:
            assert _holds(box, noses[k][subject]) and abs(centre[0] - noses[k][subject][0]) < 16, (k, box)
        assert not any(_holds(box, p) for other, p in noses[k].items() if other != subject), (k, box)


@pytest.fixture(scope="module")
def people_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("people") / "corpus"
    noses = _corpus(root, ["pair", "trio"])
    out = root.parent / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(root), "--out", str(out),
                                       "--faces", "all", "--quiet"])
    return root, out, noses, result


def test_faces_all_one_session_per_person(people_run):
    root, out, noses, result = people_run
    assert result.exit_code == 0, result.output
    # The short track, the video's own rating file and the person without ratings: one line each.
    assert "track session pair_track3: the person is seen in 4 frame(s) (0.40 s), less than --min-track-s 1 s: " \
           "not written" in result.output
    assert f"its rating file(s) {root / 'ratings' / 'trio.csv'} rate the video, not one person" in result.output
    assert "1 person(s) without a rating file of their own, listed as unlabelled and not written: trio_track3; " \
           "to use them, give each a rating file at ratings/trio_track<k>.csv" in result.output
    assert "4 sessions in" in result.output and "1 without ratings (not written)" in result.output
    manifest = read_manifest(out)
    entries = {e["session"]: e for e in manifest["sessions"]}
    assert list(entries) == ["pair_track1", "pair_track2", "trio_track1", "trio_track2"]
    assert manifest["partitions"]["train"] == ["pair_track1", "pair_track2"]
    for name, e in entries.items():
        parent, k = name.split("_track")
        assert (e["parent"], e["track"], e["subject"]) == (parent, int(k), f"{parent[0]}_track{k}")
        assert e["ratings"] == [str(root / "ratings" / f"{name}.csv")]
    assert entries["trio_track1"]["people"] == {"written": [1, 2], "unlabelled": [3], "short": []}
    assert entries["pair_track1"]["people"] == {"written": [1, 2], "unlabelled": [], "short": [3]}
    assert manifest["unlabelled"] == [{"session": "trio_track3", "partition": "devel",
                                       "video": str(root / "videos" / "trio.mp4"), "parent": "trio", "track": 3}]
    assert sorted(p.name for p in (out / "sessions").iterdir()) == [f"{n}.tfrecord" for n in entries]

    sessions = {s["session"]: s for s in session_arrays(out)}
    frames = {name: read_video(root / "videos" / f"{name}.mp4")[0] for name in VIDEOS}
    for name, s in sessions.items():
        parent, k = name.split("_track")
        paths = VIDEOS[parent]
        subject = _expected_ids(noses[parent], paths)[int(k)]
        _check_person(s, subject, noses[parent], paths[subject])
        # The video's timing, and this person's own ratings, never the video's (trio.csv).
        np.testing.assert_allclose(s["time"], np.arange(FRAMES) / FPS, atol=1e-6)
        steps = SLOPES[name] * np.arange(FRAMES)
        np.testing.assert_allclose(s["ratings"][:, :2], np.stack([steps, -steps], 1), atol=1e-6)
        # The crops are cut from this person's boxes (JPEG: within a few grey levels).
        for j in np.flatnonzero(s["face_present"])[::7]:
            (crop,) = crop_faces(frames[parent][j], tuple(s["box"][j]), ["huang2018"], 0.2)
            assert np.abs(s["frames"][j].astype(int) - crop.astype(int)).mean() < 3
    # Those who leave and come back elsewhere keep their id: pair's A (away at 12-19, back on the right) and
    # trio's C (away at 10-19, back at 20 but hidden behind A, in view on the right from the cut at 25).
    assert sessions["pair_track1"]["face_present"][12:20].sum() == 0
    assert sessions["pair_track1"]["face_present"][20:].mean() == 1
    assert sessions["trio_track2"]["face_present"][10:25].sum() == 0
    assert sessions["trio_track2"]["face_present"][25:].mean() >= 0.8


def test_faces_all_discovery_and_the_video_rating_alone(people_run):
    root = people_run[0]
    spec = load_spec("generic")
    found = discover(spec, root, people=True)
    by_name = {s.session: s for s in found.sessions}
    assert sorted(by_name) == ["pair", "trio"] and not found.unlisted and not found.problems
    assert by_name["pair"].ratings == {} and sorted(by_name["pair"].track_ratings) == [1, 2]
    assert by_name["trio"].track_ratings[2]["arousal"] == root / "ratings" / "trio_track2.csv"
    # Without --faces all the people's files are no sessions: pair has no rating file of its own.
    found = discover(spec, root)
    assert [p["session"] for p in found.problems] == ["pair"] and len(found.unlisted) == 4


def test_faces_all_rerun_keeps_redoes_and_removes(tmp_path):
    root = tmp_path / "corpus"
    _corpus(root, ["trio"])
    out = tmp_path / "tfr"

    def run(*extra):
        result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(root), "--out", str(out),
                                           "--faces", "all", "--quiet", *extra])
        return result, {p.name: p.stat().st_mtime_ns for p in (out / "sessions").iterdir()}

    first, before = run()
    assert first.exit_code == 0 and sorted(before) == ["trio_track1.tfrecord", "trio_track2.tfrecord"], first.output
    again, after = run()
    assert again.exit_code == 0 and "2 sessions in" in again.output and "(2 kept from an earlier run)" in again.output
    assert after == before  # not rewritten
    assert "trio_track3" in again.output  # still listed as unlabelled, with its line
    assert read_manifest(out)["unlabelled"][0]["session"] == "trio_track3"

    # A person's rating file gone: the video is redone, that person listed as unlabelled, their record removed.
    (root / "ratings" / "trio_track2.csv").unlink()
    changed, files = run()
    assert changed.exit_code == 0, changed.output
    assert "session trio is redone" in changed.output
    assert "trio_track2.csv is no longer one of its files" in changed.output
    assert f"track session trio_track2 is no longer written from session trio's video: its record " \
           f"{out / 'sessions' / 'trio_track2.tfrecord'} was deleted" in changed.output
    assert sorted(files) == ["trio_track1.tfrecord"]
    assert [u["session"] for u in read_manifest(out)["unlabelled"]] == ["trio_track2", "trio_track3"]

    # Another option: every person redone.
    redone, files2 = run("--min-track-s", "0.5")
    assert redone.exit_code == 0 and "kept from an earlier run" not in redone.output, redone.output
    assert files2["trio_track1.tfrecord"] != files["trio_track1.tfrecord"]

    # A rating file for a person the tracker does not find: the session fails, naming the file and the fix.
    _rating_file(root / "ratings" / "trio_track7.csv", 0.01)
    failed, _ = run("--min-track-s", "0.5")
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert f"rating file(s) {root / 'ratings' / 'trio_track7.csv'} of session trio are for track(s) 7, but " \
           f"{root / 'videos' / 'trio.mp4'} holds 3 people (tracks 1, 2, 3)" in failed.output
    assert "--faces all --overlay" in failed.output
    # Nothing written before is lost, nothing half-written is left.
    assert [e["session"] for e in json.loads((out / "manifest.json").read_text())["sessions"]] == ["trio_track1"]
    assert sorted(p.name for p in out.rglob("*") if p.is_file() and "sessions" in p.parts) == ["trio_track1.tfrecord"]
    assert not list(out.rglob("*.tmp*"))


# Aff-Wild2: A mostly on the left, B mostly on the right; they cross at 15-24 (B in front) and end swapped.
def _side_a(k):
    return 0 if k < 15 else min(220, 22 * (k - 14))


def _side_b(k):
    return 220 if k < 15 else max(0, 220 - 22 * (k - 14))


def test_left_right_keep_their_person_when_the_two_cross(tmp_path):
    root = tmp_path / "Aff-Wild2"
    paths = [_side_a, _side_b]
    images, noses = compose(paths, FRAMES)
    (root / "videos").mkdir(parents=True)
    write_video(root / "videos" / "duo.mp4", images, FPS)
    ann = root / "annotations" / "VA_Estimation_Challenge" / "Train_Set"
    ann.mkdir(parents=True)
    for side in ("left", "right"):
        (ann / f"duo_{side}.txt").write_text("valence,arousal\n" + "0.1,0.2\n" * FRAMES)
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "affwild2-va", "--root", str(root),
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    sessions = {s["session"]: s for s in session_arrays(out)}
    for side, subject in (("left", 0), ("right", 1)):
        _check_person(sessions[f"duo_{side}"], subject, noses, paths[subject])
    # After the crossing the person rated on the left is on the right: the leftmost face of each frame
    # (the rule before) is the other person there, the left session still the one it started with.
    left = sessions["duo_left"]
    late = [k for k in range(25, FRAMES) if len(noses[k]) == 2]
    assert late and all(noses[k][0][0] > noses[k][1][0] for k in late)
    assert all(left["face_present"][k] and _holds(left["box"][k], noses[k][0]) for k in late)


def test_side_track_rule():
    assert side_track({1: 50.0, 2: 200.0}, "left", 320) == 1
    assert side_track({1: 50.0, 2: 200.0}, "right", 320) == 2
    assert side_track({1: 120.0, 2: 120.0}, "left", 320) == 1 == side_track({1: 120.0, 2: 120.0}, "right", 320)
    assert side_track({3: 40.0, 1: 100.0, 2: 290.0}, "left", 320) == 3
    # One person alone: taken only on their own half.
    assert side_track({1: 100.0}, "left", 320) == 1 and side_track({1: 100.0}, "right", 320) is None
    assert side_track({1: 160.0}, "right", 320) == 1 and side_track({}, "left", 320) is None
    with pytest.raises(ValueError, match="left or right"):
        side_track({1: 1.0}, "largest", 320)


def test_faces_all_options_are_checked(tmp_path):
    for option, value in (("--faces", "some"), ("--min-track-s", "-1")):
        result = CliRunner().invoke(main, ["preprocess", "--spec", "generic", "--root", str(tmp_path),
                                           "--out", str(tmp_path / "out"), option, value])
        assert result.exit_code == 2 and option in result.output and not (tmp_path / "out").exists()
