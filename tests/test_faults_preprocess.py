"""Bad input to `emotrack preprocess`, one kind of fault at a time, through the command line.

Every fault is named with its file (or key) and the fix, exits non-zero where it is an error, prints no
traceback, leaves nothing half-written, and where the run goes on, the good sessions are still written.
One tiny corpus (3 sessions of 2 s at 10 fps, 64x64) is synthesised for the module; each test breaks a
copy of it.
"""

import json
import os
import re
import shutil
import subprocess
import wave

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.records.manifest import file_sha256

SESSIONS = ["S01", "S02", "S03"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from emotrack.synth.corpus import synthesize_corpus

    root = tmp_path_factory.mktemp("faults_corpus")
    synthesize_corpus(root, sessions=3, seconds=2.0, fps=10.0, seed=5, width=64, height=64, progress=False)
    return root


@pytest.fixture
def root(corpus, tmp_path):
    """A copy of the corpus to break."""
    shutil.copytree(corpus, tmp_path / "corpus")
    return tmp_path / "corpus"


def preprocess(root, out, *extra, spec="generic"):
    result = CliRunner().invoke(main, ["preprocess", "--spec", str(spec), "--root", str(root), "--out", str(out),
                                       "--quiet", "--size", "16", *extra])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def assert_whole(out):
    """Nothing half-written: no temporary file, no journal, and the records are exactly the manifest's,
    each with the checksum it names."""
    assert not [p for p in out.rglob(".*") if ".tmp" in p.name]
    assert not list(out.glob("*.partial.jsonl"))
    m = manifest(out)
    assert sorted(p.name for p in (out / "sessions").glob("*.tfrecord")) == \
        sorted(f"{e['session']}.tfrecord" for e in m["sessions"])
    for e in m["sessions"]:
        assert file_sha256(out / e["file"]) == e["sha256"]


def _write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.asarray(samples) * 32767).astype("<i2").tobytes())


def _remux(src, dst, audio_from_s=0.0, audio_until_s=None, faststart=False):
    """Copy a video's packets into a new MP4: the audio's from ``audio_from_s`` on (its first packet moved
    there) and up to ``audio_until_s`` only; ``faststart`` puts the index before the frames."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           options={"movflags": "faststart"} if faststart else {}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "audio":
                start = float(packet.pts * packet.time_base)
                if audio_until_s is not None and start >= audio_until_s:
                    continue
                shift = int(round(audio_from_s / packet.time_base))
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)


def _rows(path):
    return path.read_text().splitlines()


def _set_rows(path, rows):
    path.write_text("".join(f"{row}\n" for row in rows))


def _cut(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


def _faststart_cut(path):
    _remux(path, path.with_suffix(".fs.mp4"), faststart=True)
    path.with_suffix(".fs.mp4").replace(path)
    _cut(path, 0.5)


def _edit_ratings(edit):
    def mutate(root):
        path = root / "ratings" / "S02.csv"
        _set_rows(path, edit(_rows(path)))
        return path
    return mutate


def _edit_video(edit):
    def mutate(root):
        path = root / "videos" / "S02.mp4"
        edit(path)
        return path
    return mutate


SESSION_FAULTS = {
    "empty video": (_edit_video(lambda p: p.write_bytes(b"")),
                    ["is empty (0 bytes)", "copy the session's video again"]),
    "text named .mp4": (_edit_video(lambda p: p.write_text("session S02, see the drive\n")),
                        ["is not a video file: it holds text", "put the session's video file there"]),
    "sound named .mp4": (_edit_video(lambda p: _write_wav(p, np.zeros(16000))),
                         ["holds no video stream (only sound)", "put the session's video file there"]),
    "video cut before its index": (_edit_video(lambda p: _cut(p, 0.6)),
                                   ["is truncated", "no frame can be decoded", "copy the session's video again"]),
    "video cut mid-stream": (_edit_video(_faststart_cut),
                             ["is truncated: its frames stop at", "(the last good time)", "declares 2.00 s",
                              "copy the session's video again"]),
    "rating column missing": (_edit_ratings(lambda r: [",".join(x.split(",")[:2] + x.split(",")[3:]) for x in r]),
                              ["lacks the column 'valence'", "rename the column"]),
    "non-numeric rating": (_edit_ratings(lambda r: r[:5] + ["0.400,high,0.1,0.1"] + r[6:]),
                           ["non-numeric values (first at data row 5)", "fill or remove them"]),
    "NaN rating": (_edit_ratings(lambda r: r[:3] + ["0.200,nan,0.1,0.1"] + r[4:]),
                   ["holds NaN", "(first at data row 3)", "fill or remove them"]),
    "unsorted times": (_edit_ratings(lambda r: r[:4] + [r[5], r[4]] + r[6:]),
                       ["must increase strictly, but data row 5 (0.3 s) comes after a later time (0.4 s)",
                        "sort the rows by time"]),
    "duplicated times": (_edit_ratings(lambda r: r[:4] + [r[4], r[4]] + r[5:]),
                         ["data row 5 repeats the time of the row before", "keep one row per time"]),
    "empty rating file": (_edit_ratings(lambda r: []), ["is empty", "write its ratings there"]),
    "header only": (_edit_ratings(lambda r: r[:1]), ["holds no rating row", "write its ratings there"]),
    "wrong delimiter": (_edit_ratings(lambda r: [x.replace(",", ";") for x in r]),
                        ["lacks the column 'time'", "separated by ';'", "ratings.separator"]),
    "rating out of range": (_edit_ratings(lambda r: r[:2] + ["0.100,7.0,0.1,0.1"] + r[3:]),
                            ["outside the spec's range [-1, 1]", "ratings.range"]),
    "ratings far shorter than video": (_edit_ratings(lambda r: r[:6]),
                                       ["lasts 2.00 s but rating file", "belong to the same session"]),
}


@pytest.mark.parametrize("fault", list(SESSION_FAULTS))
def test_a_bad_session_file_is_named_and_the_others_are_written(root, tmp_path, fault):
    mutate, expected = SESSION_FAULTS[fault]
    path = mutate(root)
    out = tmp_path / "tfr"
    result = preprocess(root, out)
    assert result.exit_code == 1, result.output
    for text in [str(path), *expected]:
        assert text in result.output, (text, result.output)
    assert "re-encode" not in result.output
    m = manifest(out)
    assert [e["session"] for e in m["sessions"]] == ["S01", "S03"]
    assert [f["session"] for f in m["failed"]] == ["S02"] and str(path) in m["failed"][0]["error"]
    assert_whole(out)


def _spec(tmp_path, edit):
    from emotrack.corpora.spec import spec_text

    path = tmp_path / "mine.yaml"
    path.write_text(edit(spec_text("generic")))
    return path


def _append(path, text):
    path.write_text(path.read_text() + text)


def _under_file(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path / "a_file" / "tfr"


RUN_FAULTS = {
    "unknown spec key": (lambda root, tmp: {"spec": _spec(tmp, lambda t: t.replace("  fps: from_file",
                                                                                  "  fsp: from_file"))},
                         ["mine.yaml: unknown key video.'fsp'", "did you mean video.fps?"]),
    "spec key missing": (lambda root, tmp: {"spec": _spec(tmp, lambda t: t.replace("  rate_hz: 10.0\n", ""))},
                         ["mine.yaml: section 'ratings' lacks rate_hz"]),
    "spec matches nothing": (lambda root, tmp: {"spec": _spec(tmp, lambda t: t.replace(
                                 "path: videos/{session}.mp4", "path: clips/{session}.avi"))},
                             ["found no video under", "clips/{session}.avi", "is --root the folder"]),
    "session listed twice": (lambda root, tmp: _append(root / "partitions.csv", "S02,subj02b,devel\n"),
                             ["partitions.csv lists session S02 2 times", "line 3: S02,subj02,",
                              "line 5: S02,subj02b,devel", "keep one row per session"]),
    "row without subject": (lambda root, tmp: (root / "partitions.csv").write_text(
                                (root / "partitions.csv").read_text().replace("subj02", "")),
                            ["partitions.csv line 3 has no subject", "fill it in or remove the row"]),
    "empty partition file": (lambda root, tmp: (root / "partitions.csv").write_text(""),
                             ["partitions.csv is empty", "one row per session"]),
    "every video empty": (lambda root, tmp: [(root / "videos" / f"{s}.mp4").write_bytes(b"") for s in SESSIONS],
                          ["finds no session to preprocess", "S01.mp4 is empty (0 bytes)", "no manifest was written"]),
    "--out under a file": (lambda root, tmp: {"out": _under_file(tmp)},
                           ["a_file is a file, not a folder", "choose another --out"]),
}


@pytest.mark.parametrize("fault", list(RUN_FAULTS))
def test_a_run_level_fault_stops_before_any_work_and_writes_nothing(root, tmp_path, fault):
    mutate, expected = RUN_FAULTS[fault]
    given = mutate(root, tmp_path)
    given = given if isinstance(given, dict) else {}
    out = given.get("out", tmp_path / "tfr")
    result = preprocess(root, out, spec=given.get("spec", "generic"))
    assert result.exit_code == 1, result.output
    for text in expected:
        assert text in result.output, (text, result.output)
    assert not out.exists() and not (tmp_path / "tfr").exists()


def test_an_unlisted_file_is_warned_about_and_the_rest_written(root, tmp_path):
    shutil.copy(root / "videos" / "S01.mp4", root / "videos" / "S09.mp4")
    out = tmp_path / "tfr"
    result = preprocess(root, out)
    assert result.exit_code == 0, result.output
    assert "warning: 1 file(s) match the spec's paths but partitions.csv does not list their session" in result.output
    assert f"{root / 'videos' / 'S09.mp4'}; add their sessions to partitions.csv" in result.output
    assert [e["session"] for e in manifest(out)["sessions"]] == SESSIONS
    assert_whole(out)


def _mount_tmpfs(path, *options):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"a small file system cannot be mounted here ({done.stderr.decode().strip()})")


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 64 KiB file system (a tmpfs; root only): records of this corpus do not fit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "size=64k")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write into: read-only by its mode, or as root, a read-only tmpfs."""
    folder = tmp_path / "read_only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    _mount_tmpfs(folder, "ro", "size=64k")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_out_is_refused_before_any_decoding(root, read_only):
    result = preprocess(root, read_only / "tfr")
    assert result.exit_code == 1
    assert f"--out {read_only / 'tfr'} cannot be written: {read_only}:" in result.output
    assert "choose a folder you can write to" in result.output
    assert "session" not in result.output.lower() and not list(read_only.iterdir())


def test_a_full_disk_stops_the_run_naming_the_record_and_leaves_nothing(root, small_disk):
    out = small_disk / "tfr"
    result = preprocess(root, out)
    assert result.exit_code == 1
    assert f"cannot write {out / 'sessions' / 'S01.tfrecord'}: " in result.output
    assert "No space left on device" in result.output and "free space on its disk" in result.output
    assert not out.exists() and not list(small_disk.iterdir())


def test_temporaries_of_a_killed_run_are_removed_and_a_live_run_s_kept(root, tmp_path):
    out = tmp_path / "tfr"
    (out / "sessions").mkdir(parents=True)
    dead = [out / "sessions" / ".S01.tfrecord.99999999-0badc0de.tmp", out / ".manifest.json.99999999-1badc0de.tmp",
            out / ".input-hashes.json.99999999-2badc0de.tmp"]
    for path in dead:
        path.write_bytes(b"half a record")
    live = out / "sessions" / ".S02.tfrecord.1-3badc0de.tmp"  # pid 1 is running
    live.write_bytes(b"being written")
    result = preprocess(root, out)
    assert result.exit_code == 0, result.output
    for path in dead:
        assert f"removed {path}, left by a run that was stopped" in result.output and not path.exists()
    assert live.exists()
    live.unlink()
    assert_whole(out)


def _partitions(root):
    return pd.read_csv(root / "partitions.csv", dtype=str)


def test_a_rerun_redoes_what_changed_and_drops_what_left_the_corpus(root, tmp_path):
    out = tmp_path / "tfr"
    assert preprocess(root, out).exit_code == 0
    first = {e["session"]: e for e in manifest(out)["sessions"]}
    table = _partitions(root)
    moved = table.loc[table.session == "S02", "partition"].item()
    target = next(p for p in ("train", "devel", "test") if p != moved)
    table.loc[table.session == "S02", "partition"] = target
    table.to_csv(root / "partitions.csv", index=False)
    ratings = root / "ratings" / "S03.csv"
    rows = _rows(ratings)
    _set_rows(ratings, rows[:4] + ["0.300,0.5,0.5,0.5"] + rows[5:])
    mtime = (out / "sessions" / "S01.tfrecord").stat().st_mtime_ns

    result = preprocess(root, out)
    assert result.exit_code == 0, result.output
    assert f"session S02 is redone: its partition changed from '{moved}' to '{target}'" in result.output
    assert f"session S03 is redone: {ratings} changed" in result.output
    assert "(1 kept from an earlier run)" in result.output
    m = manifest(out)
    assert "S02" in m["partitions"][target] and "S02" not in m["partitions"][moved]
    assert {e["session"]: e["partition"] for e in m["sessions"]}["S02"] == target
    assert (out / "sessions" / "S01.tfrecord").stat().st_mtime_ns == mtime
    assert m["sessions"][2]["sha256"] != first["S03"]["sha256"]
    assert_whole(out)

    # A session dropped from the partition file leaves the manifest, and its record goes.
    _partitions(root).query("session != 'S03'").to_csv(root / "partitions.csv", index=False)
    shutil.copy(root / "videos" / "S02.mp4", root / "videos" / "S01.mp4")  # and S01's video replaced
    result = preprocess(root, out)
    assert result.exit_code == 0, result.output
    assert (f"session S03 is no longer in the corpus: its record {out / 'sessions' / 'S03.tfrecord'} was "
            f"deleted and it is no longer in the manifest") in result.output
    assert f"session S01 is redone: {root / 'videos' / 'S01.mp4'} changed" in result.output
    assert "partitions.csv does not list their session" in result.output  # S03's files are still there
    assert [e["session"] for e in manifest(out)["sessions"]] == ["S01", "S02"]
    assert_whole(out)


def _resound(root, session, **remux):
    video = root / "videos" / f"{session}.mp4"
    _remux(video, video.with_suffix(".new.mp4"), **remux)
    video.with_suffix(".new.mp4").replace(video)
    return video


def test_audio_out_of_step_at_either_end_is_kept_for_visual_use_and_named(root, tmp_path):
    from emotrack.data.pipeline import check_audio

    early = _resound(root, "S02", audio_until_s=0.5)  # ends 1.5 s before its video
    late = _resound(root, "S03", audio_from_s=1.5, audio_until_s=0.5)  # starts 1.5 s after it
    out = tmp_path / "tfr"
    result = preprocess(root, out)
    assert result.exit_code == 0, result.output
    m = manifest(out)
    entries = {e["session"]: e for e in m["sessions"]}
    assert entries["S01"]["audio"] and "audio_unusable" not in entries["S01"]
    # (AAC's first frame of priming moves the late start a little earlier than 1.5 s.)
    for session, video, why in (
            ("S02", early, r"lasts until 0\.[4-6]\d s but its video ends at 2\.00 s \(1\.\d\d s earlier"),
            ("S03", late, r"starts at 1\.[3-5]\d s but its video starts at 0\.00 s \(1\.\d\d s later")):
        assert entries[session]["audio"] is False
        assert re.search(re.escape(f"audio {video} ") + why, entries[session]["audio_unusable"])
        assert f"warning: session {session} is stored without audio, for visual models only: audio {video}" \
            in result.output
    assert "tolerance 1 s at either end" in result.output and "or pass --no-audio" in result.output
    assert set(m["audio"]["unusable"]) == {"S02", "S03"}
    with pytest.raises(ValueError, match="audio of 2 session\\(s\\) was set aside in preprocessing \\(S02: audio .*; "
                                         "S03: audio .*train a visual model"):
        check_audio(m, out)
    assert_whole(out)

    # With --audio the same sessions fail, by name.
    out = tmp_path / "tfr_audio"
    result = preprocess(root, out, "--audio")
    assert result.exit_code == 1
    assert f"FAILED S02: audio {early} lasts until 0." in result.output
    assert f"FAILED S03: audio {late} starts at 1." in result.output
    assert [e["session"] for e in manifest(out)["sessions"]] == ["S01"]
    assert_whole(out)


def test_silent_audio_is_warned_about_naming_the_file(root, tmp_path):
    from emotrack.media.video import read_video, write_video

    video = root / "videos" / "S01.mp4"
    frames, _, fps = read_video(video)
    write_video(video, frames, fps, audio=np.zeros(32000, np.float32))
    out = tmp_path / "tfr"
    result = preprocess(root, out)
    assert result.exit_code == 0, result.output
    assert f"warning: session S01: its audio {video} is silent" in result.output
    assert "check the recording, or pass --no-audio" in result.output
    silent = {e["session"]: e["audio"]["silent"] for e in manifest(out)["sessions"]}
    assert silent == {"S01": True, "S02": False, "S03": False}
    assert_whole(out)
