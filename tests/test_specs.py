"""Corpus specs read the real release layouts: mock trees of every built-in spec, in the exact file
formats of each release, made from tiny synthetic face videos.

Most tests check what the spec finds and reads (sessions, partitions, ratings at known times, masks)
without face detection; three run the whole preprocessing (recola-avec2016, affwild2-va, afew-va).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.corpora.layout import LayoutError, discover
from emotrack.corpora.ratings import RATING_READERS, RatingsError, read_arff, read_ratings, register_rating_reader
from emotrack.corpora.spec import SpecError, builtin_specs, describe_specs, load_spec, with_overrides
from emotrack.data.pipeline import session_arrays, training_windows
from emotrack.media.video import read_frames_dir, read_video, video_fps, write_video
from emotrack.records.manifest import read_manifest

FPS = 25.0
SECONDS = 2.0
FRAMES = int(SECONDS * FPS)  # 50
W, H = 160, 128
SPECS = ["afew-va", "affwild2-va", "generic", "recola", "recola-avec2016", "semaine-avec2012", "sewa-avec2017"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two 2-second face videos of different subjects (25 fps, 160x128), an AVI of the first at 20 fps,
    and both side by side in one 320x128 video (two people, as in Aff-Wild2)."""
    from emotrack.synth.corpus import iter_session_frames

    folder = tmp_path_factory.mktemp("clips")
    a, b = (np.stack([f.image for f in iter_session_frames(5, i, SECONDS, FPS, W, H)]) for i in (0, 1))
    return {"frames_a": a, "a": write_video(folder / "a.mp4", a, FPS, quality=12), "b": write_video(folder / "b.mp4", b, FPS, quality=12),
            "a_avi20": write_video(folder / "a20.avi", a[:40], 20.0, codec="mpeg4"),
            "pair": write_video(folder / "pair.mp4", np.concatenate([a, b], axis=2), FPS, quality=12)}


def _wav(path: Path, seconds: float, freq: float, rate: int = 16000) -> Path:
    """A mono 16-bit PCM WAV holding a sine tone, as the AVEC 2016 release ships its audio."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def _put(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _wave(n: int, offset: float) -> np.ndarray:
    """Known rating values, one per step: a slow ramp inside [-1, 1]."""
    return np.round(offset + 0.01 * np.arange(n), 6)


# ---------------------------------------------------------------------------------------------
# The list of specs and the CLI

def test_every_builtin_spec_loads_and_is_listed():
    assert builtin_specs() == SPECS
    described = {d["name"]: d for d in describe_specs()}
    assert described["recola-avec2016"]["rating_rate"] == "25 Hz"
    assert described["semaine-avec2012"]["dimensions"] == ["arousal", "expectancy", "power", "valence"]
    assert described["affwild2-va"]["rating_rate"].startswith("one per video frame")
    result = CliRunner().invoke(main, ["specs"])
    assert result.exit_code == 0, result.output
    for name in SPECS:
        assert f"\n{name}\n" in f"\n{result.output}"
    assert "by {number}: train 1-360, devel 361-480, test 481-600" in result.output  # afew-va's split
    assert "49.979 Hz" in result.output and "arousal, valence, liking" in result.output
    shown = CliRunner().invoke(main, ["specs", "recola"])
    assert shown.exit_code == 0 and "P01-P39 -> train" in shown.output
    assert CliRunner().invoke(main, ["specs", "nope"]).exit_code != 0
    helped = CliRunner().invoke(main, ["specs", "--help"])
    assert helped.exit_code == 0 and "List the built-in corpus specs" in helped.output


def test_a_wrong_spec_is_named(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "name: bad\npartitions: {names: [train], field: split, map: {a: test}}\n"
                 "video: {path: 'v/{split}.mp4'}\nratings: {path: 'r/{split}.csv', format: csv, rate_hz: 10, "
                 "dimensions: [arousal], range: [-1, 1]}\n")
    with pytest.raises(SpecError, match=r"bad.yaml: partitions name \['test'\]"):
        load_spec(bad)
    bad.write_text(bad.read_text().replace("map: {a: test}", "map: {a: train}").replace("'v/{split}.mp4'",
                   "'v/{other}.mp4'") + "sessions: {discover: [ratings], name: '{split}'}\n")
    with pytest.raises(SpecError, match=r"video.path uses \['other'\]"):
        load_spec(bad)



def test_a_new_rating_format_is_one_registered_reader(tmp_path):
    """A format the spec check refuses until a reader is registered under its name; then the spec loads and
    its files are read, scaled and checked like any other's."""
    text = ("name: words\npartitions: {file: p.csv, session_column: s, subject_column: u, partition_column: p, "
            "names: [train]}\nvideo: {path: 'v/{session}.mp4'}\nratings: {path: 'r/{session}.txt', format: words, "
            "rate_hz: 2, dimensions: [arousal, valence], range: [0, 10]}\n")
    path = _write(tmp_path / "words.yaml", text)
    with pytest.raises(SpecError, match="rating format 'words' is not one of"):
        load_spec(path)

    @register_rating_reader("words")
    def read_words(spec, file):
        rows = [line.split() for line in file.read_text().splitlines()]
        return pd.DataFrame(rows, columns=spec.dimensions), {"subject": file.stem}

    try:
        with pytest.raises(ValueError, match="already has a reader"):
            register_rating_reader("words")(read_words)
        spec = load_spec(path)
        track = read_ratings(spec, {d: _write(tmp_path / "r" / "s1.txt", "0 10\n5 5\n10 0\n")
                                    for d in spec.dimensions})
        np.testing.assert_allclose(track.times, [0.0, 0.5, 1.0])
        np.testing.assert_allclose(track.values, [[-1, 1], [0, 0], [1, -1]])
        assert track.subject == "s1" and track.valid.all()
    finally:
        del RATING_READERS["words"]

# ---------------------------------------------------------------------------------------------
# RECOLA, AVEC 2016 release: ARFF gold standard, partitions from the name, test unlabelled

def _arff(name: str, dim: str, values: np.ndarray) -> str:
    head = (f"@relation GoldStandard_{dim}_{name}\n\n@attribute Instance_name string\n"
            "@attribute frameTime numeric\n@attribute GoldStandard numeric\n\n@data\n\n")
    return head + "".join(f"{name},{k * 0.04:.2f},{v:.6f}\n" for k, v in enumerate(values))


@pytest.fixture(scope="module")
def avec2016(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("AVEC2016")
    for name, clip in (("train_1", "a"), ("dev_1", "b"), ("test_1", "a"), ("dev_2", "b")):
        _put(clips[clip], root / "recordings_video" / f"{name}.mp4")
        _wav(root / "recordings_audio" / f"{name}.wav", SECONDS, 440.0)
    n = int(SECONDS / 0.04) + 1  # 51 rows for 2 s, as 7501 for 300 s
    for name, offset in (("train_1", -0.2), ("dev_1", 0.1), ("train_2", 0.0)):  # train_2: no video
        _write(root / "ratings_gold_standard" / "arousal" / f"{name}.arff", _arff(name, "arousal", _wave(n, offset)))
        _write(root / "ratings_gold_standard" / "valence" / f"{name}.arff", _arff(name, "valence", -_wave(n, offset)))
    return root


def test_arff_reader_keeps_string_attributes(avec2016):
    table = read_arff(avec2016 / "ratings_gold_standard" / "arousal" / "train_1.arff")
    assert list(table.columns) == ["Instance_name", "frameTime", "GoldStandard"]
    assert len(table) == 51 and table.iloc[1].tolist() == ["train_1", "0.04", "-0.190000"]


def test_recola_avec2016_sessions_partitions_and_ratings(avec2016):
    spec = load_spec("recola-avec2016")
    found = discover(spec, avec2016)
    assert [(s.session, s.partition) for s in found.sessions] == [("dev_1", "devel"), ("train_1", "train")]
    assert [(s.session, s.partition) for s in found.unlabelled] == [("test_1", "test")]
    problems = {p["session"]: p["error"] for p in found.problems}
    assert sorted(problems) == ["dev_2", "train_2"]
    assert "dev_2.mp4 of session dev_2 has no rating file" in problems["dev_2"]
    assert "arousal/train_2.arff" in problems["train_2"] and "have no video" in problems["train_2"]
    train = found.sessions[1]
    track = read_ratings(spec, train.ratings)
    assert track.values.shape == (51, 2) and track.rate_hz == 25.0 and track.valid.all()
    # The ARFF row at 0.04 s: "train_1,0.04,-0.190000" (arousal), valence its negative.
    assert track.times[1] == pytest.approx(0.04)
    np.testing.assert_allclose(track.values[1], [-0.19, 0.19], atol=1e-7)


def test_recola_avec2016_preprocess_writes_labelled_reports_the_rest(avec2016, tmp_path):
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "recola-avec2016", "--root", str(avec2016),
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert f"2 sessions in {out / 'manifest.json'}, 2 failed, 1 without ratings" in result.output, result.output
    assert "FAILED train_2" in result.output and "FAILED dev_2" in result.output
    manifest = read_manifest(out)
    assert manifest["partitions"] == {"train": ["train_1"], "devel": ["dev_1"], "test": []}
    assert manifest["unlabelled"][0]["session"] == "test_1"
    assert sorted(f["session"] for f in manifest["failed"]) == ["dev_2", "train_2"]
    sessions = {s["session"]: s for s in session_arrays(out)}
    for entry in manifest["sessions"]:
        assert entry["num_frames"] == FRAMES and entry["fps"] == FPS and entry["rating_rate"] == 25.0
        assert entry["face_fraction"] >= 0.95 and entry["rating_valid_fraction"] == 1.0
    s = sessions["train_1"]
    # Frame k is at k / 25 s, exactly on ARFF row k: the stored rating is that row.
    np.testing.assert_allclose(s["time"][:3], [0.0, 0.04, 0.08], atol=1e-6)
    np.testing.assert_allclose(s["ratings"][1], [-0.19, 0.19], atol=1e-6)
    np.testing.assert_allclose(s["ratings"][:, 0], _wave(51, -0.2)[:FRAMES], atol=1e-6)
    # The WAV's 16 kHz samples are stored per 40 ms frame: 640 each, a 440 Hz tone normalised per session.
    audio = s["audio"].reshape(-1)
    assert s["audio"].shape == (FRAMES, 640)
    assert abs(np.fft.rfftfreq(audio.size, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(audio)))] - 440.0) < 1.0


def test_wrong_root_names_root_pattern_and_writes_nothing(avec2016, tmp_path):
    out = tmp_path / "tfr"
    out.mkdir()
    earlier = _write(out / "manifest.json", '{"earlier": true}')
    result = CliRunner().invoke(main, ["preprocess", "--spec", "recola-avec2016", "--root",
                                       str(avec2016 / "recordings_audio"), "--out", str(out)])
    assert result.exit_code != 0
    assert f"found no video under {avec2016 / 'recordings_audio'}" in result.output
    assert "'recordings_video/{split}_{number}.mp4' ({split} = train|dev|test" in result.output
    assert "is --root the folder that holds recordings_video/?" in result.output
    assert earlier.read_text() == '{"earlier": true}' and not (out / "sessions").exists()


# ---------------------------------------------------------------------------------------------
# RECOLA, full release: six raters, the mean as gold standard, one rater on request

@pytest.fixture(scope="module")
def recola(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("RECOLA")
    for p in ("P16", "P45", "P56"):
        _put(clips["a"], root / "RECOLA-Video-recordings" / f"{p}.mp4")
        for k, dim in enumerate(("arousal", "valence")):
            rows = "".join(f"{t * 0.04:.2f};" + ";".join(f"{0.01 * (r + 1) * (k + 1) + 0.001 * t:.4f}"
                                                          for r in range(6)) + "\n" for t in range(51))
            _write(root / "RECOLA-Annotation" / "emotional_behaviour" / dim / f"{p}.csv",
                   "time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3\n" + rows)
    return root


def test_recola_mean_of_six_raters_or_one(recola):
    spec = load_spec("recola")
    found = discover(spec, recola)
    assert [(s.session, s.partition) for s in found.sessions] == [("P16", "train"), ("P45", "devel"),
                                                                  ("P56", "test")]
    assert found.problems == [] and found.unlabelled == []
    track = read_ratings(spec, found.sessions[0].ratings)
    # Row 10 (0.40 s): raters r = 1..6 rated 0.01 r (d + 1) + 0.010; their mean is 0.035 (d + 1) + 0.010.
    assert track.times[10] == pytest.approx(0.4)
    np.testing.assert_allclose(track.values[10], [0.045, 0.080], atol=1e-6)
    one = read_ratings(with_overrides(spec, rater="FF2"), found.sessions[0].ratings)
    np.testing.assert_allclose(one.values[10], [0.060, 0.110], atol=1e-6)  # FF2 is rater 5
    with pytest.raises(SpecError, match="no rater 'XX'; its raters are FM1, FM2, FM3, FF1, FF2, FF3"):
        with_overrides(spec, rater="XX")
    with pytest.raises(SpecError, match="--rater does not apply"):
        with_overrides(load_spec("recola-avec2016"), rater="FM1")


def test_missing_dimension_empty_nan_and_out_of_range_files_are_named(recola, tmp_path):
    root = tmp_path / "RECOLA"
    shutil.copytree(recola, root)
    spec = load_spec("recola")
    ann = root / "RECOLA-Annotation" / "emotional_behaviour"
    (ann / "valence" / "P16.csv").unlink()
    (ann / "arousal" / "P45.csv").write_text("")
    text = (ann / "arousal" / "P56.csv").read_text().splitlines()
    text[3] = ";".join(["0.08", "NaN"] + text[3].split(";")[2:])  # data row 3: FM1 has no value
    (ann / "arousal" / "P56.csv").write_text("\n".join(text) + "\n")
    found = discover(spec, root)
    assert [p["session"] for p in found.problems] == ["P16"]
    assert f"lacks the rating file(s) of valence: expected {ann / 'valence' / 'P16.csv'}" in found.problems[0]["error"]
    files = {s.session: s.ratings for s in found.sessions}
    with pytest.raises(RatingsError, match=r"P45.csv is empty"):
        read_ratings(spec, files["P45"])
    with pytest.raises(RatingsError, match=r"P56.csv holds NaN.*first at data row 3"):
        read_ratings(spec, files["P56"])
    (ann / "arousal" / "P56.csv").write_text((ann / "arousal" / "P56.csv").read_text().replace("NaN", "1.5"))
    with pytest.raises(RatingsError, match=r"P56.csv holds arousal values outside the spec's range \[-1, 1\]"):
        read_ratings(spec, files["P56"])
    (ann / "arousal" / "P56.csv").write_text("time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3\n")
    with pytest.raises(RatingsError, match=r"P56.csv holds no rating row"):
        read_ratings(spec, files["P56"])


# ---------------------------------------------------------------------------------------------
# SEWA: AVEC 2017 (no header, quoted name) and AVEC 2019 (culture code, header) forms

def _sewa_rows(name: str, n: int) -> str:
    return "".join(f"'{name}';{k * 0.1:.6f};{0.02 * k:.6f};{-0.02 * k:.6f};{0.5 - 0.01 * k:.6f}\n" for k in range(n))


def test_sewa_both_release_forms(clips, tmp_path):
    spec = load_spec("sewa-avec2017")
    r2017 = tmp_path / "AVEC2017_SEWA"
    for name in ("Train_01", "Devel_01", "Test_01"):
        _put(clips["a_avi20"], r2017 / "video" / f"{name}.avi")
    for name in ("Train_01", "Devel_01"):
        _write(r2017 / "labels" / f"{name}.csv", _sewa_rows(name, 20))
    found = discover(spec, r2017)
    assert [(s.session, s.partition) for s in found.sessions] == [("Devel_01", "devel"), ("Train_01", "train")]
    assert [s.session for s in found.unlabelled] == ["Test_01"] and found.problems == []
    track = read_ratings(spec, found.sessions[1].ratings)
    assert track.values.shape == (20, 3) and track.times[3] == pytest.approx(0.3)
    np.testing.assert_allclose(track.values[3], [0.06, -0.06, 0.47], atol=1e-6)
    # The Xvid-like AVI decodes, at the rate the file declares (here 20 fps).
    frames, times, fps = read_video(found.sessions[1].video)
    assert fps == 20.0 and video_fps(found.sessions[1].video) == 20.0 and frames.shape == (40, H, W, 3)

    r2019 = tmp_path / "AVEC2019_CES"
    _put(clips["a_avi20"], r2019 / "video" / "Devel_DE_01.avi")
    _write(r2019 / "labels" / "Devel_DE_01.csv",
           "name;timestamp;arousal;valence;liking\n" + _sewa_rows("Devel_DE_01", 20))
    found = discover(spec, r2019)
    assert [(s.session, s.partition) for s in found.sessions] == [("Devel_DE_01", "devel")]
    track = read_ratings(spec, found.sessions[0].ratings)
    assert len(track.times) == 20  # the header line is not a rating
    np.testing.assert_allclose(track.values[3], [0.06, -0.06, 0.47], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# SEMAINE, AVEC 2012: per-dimension .dat files, one line per frame at 49.979 fps; video names unknown

def test_semaine_labels_and_a_clear_message_without_videos(clips, tmp_path):
    spec = load_spec("semaine-avec2012")
    root = tmp_path / "AVEC2012"
    dims = ["arousal", "expectancy", "power", "valence"]
    for split in ("train", "devel"):
        for d, dim in enumerate(dims):
            values = "".join(f"{0.001 * k + 0.1 * d:.6f}\n" for k in range(100))
            _write(root / "emotion labels" / split / f"FC_{split}_labels" /
                   f"labels_continuous_{split}001_{dim}.dat", values)
    with pytest.raises(LayoutError) as err:
        discover(spec, root)
    message = str(err.value)
    assert f"found no video under {root}" in message and "'video/**/*{split}{number}*.avi'" in message
    assert "Pass --video-path" in message and "{number} (three digits)" in message
    # The videos of this copy live elsewhere: the user names them.
    for split in ("train", "devel"):
        _put(clips["a"], root / "Sessions" / f"{split}001" / "user.mp4")
    spec = with_overrides(spec, video_path="Sessions/{split}{number}/user.mp4")
    found = discover(spec, root)
    assert [(s.session, s.partition) for s in found.sessions] == [("devel001", "devel"), ("train001", "train")]
    track = read_ratings(spec, found.sessions[1].ratings)
    assert track.values.shape == (100, 4) and track.rate_hz == 49.979
    assert track.times[50] == pytest.approx(50 / 49.979)
    np.testing.assert_allclose(track.values[50], [0.05, 0.15, 0.25, 0.35], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# AFEW-VA: folders of PNG frames with a JSON of per-frame ratings in -10..10

def _afew_json(clip: str, actor: str, n: int, arousal=lambda k: k % 21 - 10, valence=lambda k: 10 - k % 21) -> str:
    frames = {f"{k:05d}": {"valence": valence(k), "arousal": arousal(k),
                           "landmarks": [[1.0 * i, 2.0 * i] for i in range(68)]} for k in range(n)}
    return json.dumps({"video_id": clip, "actor": actor, "frames": frames})


@pytest.fixture(scope="module")
def afew(clips, tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("AFEW-VA")
    for clip in ("001", "400"):
        (root / clip).mkdir()
        for k, image in enumerate(clips["frames_a"]):
            Image.fromarray(image).save(root / clip / f"{k:05d}.png")
        _write(root / clip / f"{clip}.json", _afew_json(clip, f"Actor {clip}", FRAMES))
    _write(root / "550" / "550.json", _afew_json("550", "Actor 550", FRAMES))  # no frames
    _write(root / "600" / "600.json", _afew_json("600", "Actor 600", FRAMES, arousal=lambda k: 11))
    shutil.copytree(root / "001", root / "600", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.json"))
    return root


def test_afew_va_frames_ratings_scaled_and_split_by_clip_number(afew):
    spec = load_spec("afew-va")
    found = discover(spec, afew)
    assert [(s.session, s.partition) for s in found.sessions] == [("001", "train"), ("400", "devel"),
                                                                  ("550", "test"), ("600", "test")]
    track = read_ratings(spec, found.sessions[0].ratings, video_fps=25.0)
    assert track.subject == "Actor 001" and track.values.shape == (FRAMES, 2)
    # Frame 3: arousal 3 - 10 = -7 -> -0.7; valence 10 - 3 = 7 -> 0.7; frame k at k / 25 s.
    assert track.times[3] == pytest.approx(0.12)
    np.testing.assert_allclose(track.values[3], [-0.7, 0.7], atol=1e-7)
    np.testing.assert_allclose(track.values[20], [1.0, -1.0], atol=1e-7)
    frames, times, fps = read_frames_dir(afew / "001", 25.0)
    assert frames.shape == (FRAMES, H, W, 3) and fps == 25.0 and times[3] == pytest.approx(0.12)


def test_afew_va_preprocess_masks_nothing_and_reports_bad_clips(afew, tmp_path):
    root = tmp_path / "AFEW-VA"
    for clip in ("001", "550", "600"):
        shutil.copytree(afew / clip, root / clip)
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "afew-va", "--root", str(root), "--out", str(out),
                                       "--quiet"])
    assert result.exit_code == 1, result.output
    manifest = read_manifest(out)
    failed = {f["session"]: f["error"] for f in manifest["failed"]}
    assert "holds no frame matching '*.png'" in failed["550"]
    assert "600.json holds arousal values outside the spec's range [-10, 10]" in failed["600"]
    (entry,) = manifest["sessions"]
    assert (entry["session"], entry["subject"], entry["partition"]) == ("001", "Actor 001", "train")
    assert entry["num_frames"] == FRAMES and entry["fps"] == 25.0 and entry["rating_valid_fraction"] == 1.0
    assert manifest["rating_scale"]["from"] == [-10.0, 10.0] and manifest["rating_scale"]["to"] == [-1.0, 1.0]
    (s,) = session_arrays(out)
    np.testing.assert_allclose(s["ratings"][3], [-0.7, 0.7], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Aff-Wild2 VA: one line per frame, -5 masked, <video>_left/_right pick a side, mp4 or avi

@pytest.fixture(scope="module")
def affwild2(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("Aff-Wild2")
    _put(clips["pair"], root / "videos" / "batch1" / "12-24-1920x1080.mp4")
    _put(clips["a_avi20"], root / "videos" / "batch2" / "solo.avi")
    ann = root / "annotations" / "VA_Estimation_Challenge"

    def lines(n, masked=(), half=()):
        rows = []
        for k in range(n):
            valence, arousal = round(0.3 - 0.01 * k, 4), round(-0.2 + 0.01 * k, 4)
            if k in masked:
                valence = arousal = -5
            if k in half:
                arousal = -5
            rows.append(f"{valence},{arousal}\n")
        return "valence,arousal\n" + "".join(rows)

    _write(ann / "Train_Set" / "12-24-1920x1080_left.txt", lines(FRAMES, masked=range(10, 15), half=(30,)))
    _write(ann / "Train_Set" / "12-24-1920x1080_right.txt", lines(FRAMES))
    _write(ann / "Validation_Set" / "solo.txt", lines(40))
    _write(ann / "Train_Set" / "ghost.txt", lines(FRAMES))  # no video
    return root


def test_affwild2_sessions_sides_and_mask(affwild2):
    spec = load_spec("affwild2-va")
    found = discover(spec, affwild2)
    sessions = {s.session: s for s in found.sessions}
    assert sorted(sessions) == ["12-24-1920x1080_left", "12-24-1920x1080_right", "solo"]
    assert [sessions[k].partition for k in sorted(sessions)] == ["train", "train", "devel"]
    assert sessions["12-24-1920x1080_left"].face_select == "left"
    assert sessions["12-24-1920x1080_right"].face_select == "right" and sessions["solo"].face_select is None
    assert sessions["12-24-1920x1080_left"].video == sessions["12-24-1920x1080_right"].video
    assert sessions["solo"].video.suffix == ".avi"
    assert [p["session"] for p in found.problems] == ["ghost"] and "have no video" in found.problems[0]["error"]
    track = read_ratings(spec, sessions["12-24-1920x1080_left"].ratings, video_fps=25.0)
    assert np.flatnonzero(~track.valid).tolist() == [10, 11, 12, 13, 14, 30]
    # Columns are read by name: the file says valence,arousal; the spec's order is arousal, valence.
    np.testing.assert_allclose(track.values[3], [-0.17, 0.27], atol=1e-7)
    assert track.times[3] == pytest.approx(0.12)
    np.testing.assert_allclose(track.values[12], [-0.08, 0.18], atol=1e-6)  # filled from neighbours


def test_affwild2_preprocess_left_right_faces_and_masked_frames(affwild2, tmp_path):
    out = tmp_path / "tfr"
    result = CliRunner().invoke(main, ["preprocess", "--spec", "affwild2-va", "--root", str(affwild2),
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 1 and "FAILED ghost" in result.output, result.output
    manifest = read_manifest(out)
    entries = {e["session"]: e for e in manifest["sessions"]}
    assert entries["solo"]["fps"] == 20.0 and entries["solo"]["rating_rate"] == 20.0
    assert entries["solo"]["num_frames"] == 40
    assert entries["12-24-1920x1080_left"]["rating_valid_fraction"] == pytest.approx(44 / 50)
    sessions = {s["session"]: s for s in session_arrays(out)}
    left, right = sessions["12-24-1920x1080_left"], sessions["12-24-1920x1080_right"]
    centre = lambda s: s["box"][s["box"][:, 2] > 0, 0] + s["box"][s["box"][:, 2] > 0, 2] / 2  # noqa: E731
    assert centre(left).max() < W <= centre(right).min()  # each session keeps its own person
    # Masked frames are never trained on or scored: their rating is marked invalid (the face is kept)
    # and their training weight is 0.
    masked = [10, 11, 12, 13, 14, 30]
    assert left["rating_valid"][masked].tolist() == [0] * 6 and left["face_present"][masked].sum() > 0
    assert left["rating_valid"].sum() == 44
    partition = left["partition"]
    clips = training_windows(out, partition, window=FRAMES, hop=FRAMES, batch_size=1, shuffle=False)
    for s, (_, _, w) in zip(session_arrays(out, partition), clips.as_numpy_iterator()):
        np.testing.assert_array_equal(w[0], s["face_present"] * s["rating_valid"])
    assert right["face_present"].sum() >= 0.95 * FRAMES
    np.testing.assert_allclose(left["ratings"][3], [-0.17, 0.27], atol=1e-6)
