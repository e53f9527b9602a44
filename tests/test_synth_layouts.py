"""Synthetic corpora in the release layouts: emotrack's own spec readers find every session with its
partition and subject, and read back the ratings the generator made (compared with
``session_ratings`` at the rating times, rounded as the release's file format rounds); preprocessing
runs on each layout end to end."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.corpora.layout import discover
from emotrack.corpora.ratings import read_ratings
from emotrack.corpora.spec import load_spec
from emotrack.media.audio import has_audio_stream
from emotrack.media.video import video_fps
from emotrack.synth.corpus import session_ratings
from emotrack.synth.layouts import LAYOUTS, RELEASE_RATES, afew_scale, synthesize_layout

SEED, SECONDS, SESSIONS, DELAY = 3, 1.5, 4, 0.5


def _expected(spec: str, index: int, rate: float) -> np.ndarray:
    """The ratings the generator made for a session, in the spec's dimension order and the file's rounding."""
    _, values = session_ratings(SEED, index, SECONDS, rate, DELAY)
    if spec == "afew-va":
        return afew_scale(values[:, :2]) / 10.0
    if spec == "affwild2-va":
        return np.round(values[:, :2], 3)
    if spec == "semaine-avec2012":  # arousal, expectancy, power, valence
        _, unrelated = session_ratings(SEED, index + 100_000, SECONDS, rate, DELAY)
        return np.stack([values[:, 0], unrelated[:, 2], values[:, 2], values[:, 1]], axis=1)
    return values[:, :len(load_spec(spec).dimensions)]


def _synth(spec, folder, **size):
    return synthesize_layout(spec, folder, sessions=SESSIONS, seconds=SECONDS, seed=SEED, annotator_delay_s=DELAY,
                             **size)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Every layout at its release rates, with frames too small for face detection (fast)."""
    return {spec: _synth(spec, tmp_path_factory.mktemp(spec), width=48, height=48) for spec in sorted(LAYOUTS)}


@pytest.mark.parametrize("spec", sorted(LAYOUTS))
def test_the_specs_reader_finds_every_session_and_its_ratings(spec, corpora):
    made = corpora[spec]
    spec_ = load_spec(spec)
    found = discover(spec_, made["root"])
    assert not found.problems
    sessions = {s.session: s for s in found.sessions + found.unlabelled}
    labelled = [s for s in made["sessions"] if s["labelled"]]
    # Every session the release labels is found; unlabelled ones are listed as such where the spec
    # finds sessions by their videos, and not at all where it finds them by their rating files.
    assert {s.session for s in found.sessions} == {s["session"] for s in labelled}
    assert {s.session for s in found.unlabelled} <= {s["session"] for s in made["sessions"] if not s["labelled"]}
    assert {s["partition"] for s in labelled} >= {"train", "devel"}
    assert made["fps"] == RELEASE_RATES[spec][0] and made["rating_rate"] == RELEASE_RATES[spec][1]
    for s in made["sessions"]:
        if s["session"] not in sessions:
            assert not s["labelled"] and spec == "affwild2-va"  # its test videos come without annotations
            continue
        got = sessions[s["session"]]
        assert got.partition == s["partition"]
        assert got.video is not None
        assert got.video.is_dir() or video_fps(got.video) == pytest.approx(made["fps"], abs=1e-3)
        if not s["labelled"]:
            assert got in found.unlabelled and s["partition"] == "test" and not got.ratings
            continue
        track = read_ratings(spec_, got.ratings, video_fps=made["fps"])
        assert (track.subject or got.subject) == s["subject"]
        rate = made["rating_rate"] or made["fps"]
        times, _ = session_ratings(SEED, s["index"], SECONDS, rate, DELAY)
        np.testing.assert_allclose(track.times, times, atol=1e-6)
        np.testing.assert_allclose(track.values, _expected(spec, s["index"], rate), atol=2e-6)
        assert track.valid.all()


def test_audio_is_where_each_release_has_it(corpora):
    def first(spec):
        return discover(load_spec(spec), corpora[spec]["root"]).sessions[0]

    for spec in ("sewa-avec2017", "recola", "recola-avec2016"):  # separate WAV files, silent videos
        s = first(spec)
        wav = next(p for p in s.video.parents[1].rglob(f"{s.session}.wav"))
        assert wav.stat().st_size == 44 + 2 * 16000 * SECONDS and not has_audio_stream(s.video)
    for spec in ("semaine-avec2012", "affwild2-va", "generic"):  # the sound is the video's own track
        assert has_audio_stream(first(spec).video)


def test_release_names_and_formats(corpora):
    root = lambda spec: __import__("pathlib").Path(corpora[spec]["root"])  # noqa: E731
    arff = next((root("recola-avec2016") / "ratings_gold_standard" / "valence").glob("train_1.arff")).read_text()
    assert arff.splitlines()[:7] == ["@relation GoldStandard_valence_train_1", "", "@attribute Instance_name string",
                                     "@attribute frameTime numeric", "@attribute GoldStandard numeric", "", "@data"]
    assert arff.splitlines()[9].startswith("train_1,0.04,")
    sewa = next((root("sewa-avec2017") / "labels").glob("Train_01.csv")).read_text().splitlines()
    assert sewa[1].startswith("'Train_01';0.100000;") and len(sewa) == 15 and len(sewa[0].split(";")) == 5
    recola = next((root("recola") / "RECOLA-Annotation" / "emotional_behaviour" / "arousal").glob("P16.csv"))
    assert recola.read_text().splitlines()[0] == "time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3"
    dat = list((root("semaine-avec2012") / "emotion labels").rglob("labels_continuous_train001_power.dat"))
    assert len(dat) == 1 and len(dat[0].read_text().splitlines()) == int(np.ceil(SECONDS * 49.979))
    (txt,) = (root("affwild2-va") / "annotations" / "VA_Estimation_Challenge" / "Train_Set").glob("1-30-48x48.txt")
    assert txt.read_text().splitlines()[0] == "valence,arousal" and len(txt.read_text().splitlines()) == 46
    assert sorted(p.name for p in (root("afew-va") / "001").iterdir())[:2] == ["00000.png", "00001.png"]


def test_the_same_seed_writes_the_same_files(tmp_path):
    """Every file, videos and sound included, byte for byte."""
    a, b = (synthesize_layout("recola-avec2016", tmp_path / name, sessions=3, seconds=1.0, seed=1, fps=10, width=64,
                              height=64) for name in "ab")
    files = sorted(p.relative_to(a["root"]) for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {f.suffix for f in files} == {".mp4", ".wav", ".arff"}
    assert files == sorted(p.relative_to(b["root"]) for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_an_unknown_layout_and_a_wrong_afew_rate_are_refused(tmp_path):
    with pytest.raises(ValueError, match="there are: afew-va, affwild2-va, generic, recola, recola-avec2016"):
        synthesize_layout("semaine-avec2012x", tmp_path)
    with pytest.raises(ValueError, match="its spec reads them at 25 fps"):
        synthesize_layout("afew-va", tmp_path, fps=10.0)


def test_cli_writes_a_layout(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--layout", "sewa-avec2017", "--out", str(tmp_path), "--sessions", "3",
                                       "--seconds", "1", "--fps", "20", "--width", "64", "--height", "64"])
    assert result.exit_code == 0, result.output
    assert "sewa-avec2017 layout" in result.output
    assert video_fps(tmp_path / "video" / "Train_01.avi") == 20.0
    assert len((tmp_path / "labels" / "Train_01.csv").read_text().splitlines()) == 10  # 10 Hz whatever the video


@pytest.mark.parametrize("spec", [pytest.param(s, marks=() if s == "recola-avec2016" else pytest.mark.slow)
                                  for s in sorted(LAYOUTS)])
def test_preprocess_reads_every_layout_end_to_end(spec, tmp_path):
    from emotrack.data.pipeline import session_arrays
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.records.manifest import read_manifest

    # Frames large enough for MTCNN; the video at 10 fps where the release's rate is not needed to read it.
    made = _synth(spec, tmp_path / "corpus", width=96, height=96, **({} if spec == "afew-va" else {"fps": 10.0}))
    report = preprocess_corpus(spec, made["root"], tmp_path / "tfr", progress=False, log=lambda *_: None)
    assert report.ok, report.failed
    manifest = read_manifest(tmp_path / "tfr")
    labelled = {s["session"]: s for s in made["sessions"] if s["labelled"]}
    assert {e["session"] for e in manifest["sessions"]} == set(labelled)
    for s in session_arrays(tmp_path / "tfr"):
        made_s = labelled[s["session"]]
        # The small MPEG-4 faces of a 1.5 s clip are found in most frames, not all: this test is about
        # reading the layout, the face finder has tests of its own.
        assert s["partition"] == made_s["partition"] and s["face_present"].mean() >= 0.7
        rate = made["rating_rate"] or made["fps"]
        times, _ = session_ratings(SEED, made_s["index"], SECONDS, rate, DELAY)
        expected = _expected(spec, made_s["index"], rate)
        # The stored ratings are the file's, carried linearly to the frames' times.
        for d in range(expected.shape[1]):
            np.testing.assert_allclose(s["ratings"][:, d], np.interp(s["time"], times, expected[:, d]), atol=1e-5)
