"""Challenge submissions: predictions written in a release's own rating-file format read back by
the spec's rating reader (AVEC 2017 SEWA csv, AVEC 2016 RECOLA arff), the fields of a session, the
rating grid and the scale worked by hand."""

import numpy as np
import pytest

from emotrack.apps.submission import SubmissionError, rating_grid, session_fields, to_spec_scale, write_session
from emotrack.corpora.ratings import read_ratings
from emotrack.corpora.spec import load_spec


def test_rating_grid_and_scale_by_hand():
    np.testing.assert_allclose(rating_grid(0.35, 10.0), [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(rating_grid(0.3, 10.0), [0.0, 0.1, 0.2, 0.3])
    manifest = {"rating_scale": {"from": [0.0, 10.0], "to": [-1.0, 1.0]}}
    np.testing.assert_allclose(to_spec_scale(np.array([-1.0, 0.0, 0.5]), manifest), [0.0, 5.0, 7.5])


@pytest.mark.parametrize("spec_name, video, expected", [
    ("sewa-avec2017", "video/Test_03.avi", ["labels/Test_03.csv"]),
    ("recola-avec2016", "recordings_video/test_7.mp4",
     ["ratings_gold_standard/arousal/test_7.arff", "ratings_gold_standard/valence/test_7.arff"]),
])
def test_a_submission_reads_back_as_the_release_labels(spec_name, video, expected, tmp_path):
    spec = load_spec(spec_name)
    root = tmp_path / "corpus"
    (root / video).parent.mkdir(parents=True)
    (root / video).write_bytes(b"")
    fields = session_fields(spec.to_dict(), root, root / video)
    session = video.split("/")[-1].rsplit(".", 1)[0]
    times = rating_grid(2.0, spec.rating_rate_hz)
    rng = np.random.default_rng(0)
    values = {d: rng.uniform(-0.9, 0.9, len(times)) for d in spec.dimensions}
    files = write_session(spec.to_dict(), tmp_path / "sub", session, fields, times, values)
    assert [f.relative_to(tmp_path / "sub").as_posix() for f in files] == expected
    track = read_ratings(spec, {d: next(f for f in files if len(files) == 1 or f.parent.name == d)
                                for d in spec.dimensions})
    np.testing.assert_allclose(track.times, times, atol=1e-6)
    np.testing.assert_allclose(track.values, np.stack([values[d] for d in spec.dimensions], 1), atol=1e-5)


def test_a_dimension_not_predicted_is_left_empty_and_unknown_formats_refused(tmp_path):
    spec = load_spec("sewa-avec2017").to_dict()
    times = rating_grid(0.2, 10.0)
    [path] = write_session(spec, tmp_path, "Test_01", {"split": "Test", "id": "01"}, times,
                           {"arousal": np.array([0.1, 0.2, 0.3]), "valence": np.array([0.0, -0.5, 0.5])})
    assert path.read_text().splitlines() == ["'Test_01';0.000000;0.100000;0.000000;",
                                             "'Test_01';0.100000;0.200000;-0.500000;",
                                             "'Test_01';0.200000;0.300000;0.500000;"]
    spec["ratings"] = {**spec["ratings"], "format": "json_frames"}
    with pytest.raises(SubmissionError, match="json_frames.*no submission writer"):
        write_session(spec, tmp_path, "Test_01", {"split": "Test", "id": "01"}, times, {})


def test_people_of_several_person_videos_are_not_written_as_challenge_items(tmp_path):
    """An unlabelled person (`preprocess --faces all`) is no challenge item: a one-face prediction of the
    whole video would not be theirs, so none is written, and the log says how to predict them."""
    from emotrack.apps.submission import write_submission

    spec = load_spec("sewa-avec2017").to_dict()
    manifest = {"spec": spec, "root": str(tmp_path), "dimensions": ["arousal", "valence"],
                "unlabelled": [{"session": f"Test_01_track{k}", "partition": "test", "video": "absent.avi",
                                "parent": "Test_01", "track": k} for k in (1, 2)]}
    said = []
    result = write_submission(tmp_path / "run", {"targets": ["arousal", "valence"]}, manifest, "test",
                              "best.keras", log=said.append)
    assert result["sessions"] == [] and result["files"] == []
    assert not (tmp_path / "run").exists()
    assert len(said) == 1 and "Test_01_track1, Test_01_track2" in said[0] and "--faces all" in said[0]
