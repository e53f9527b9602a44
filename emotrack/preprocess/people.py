"""``preprocess --faces all``: every person of a video a session of their own (`process_people`).

People are found and their crops cut by `emotrack.preprocess.crops.people_crops`, as ``emotrack predict
--faces all`` finds them: ids count from 1 in the order people first appear, and stay with a person
through crossings, exits and cuts. Person ``k`` of session ``S`` is the track session ``S_track<k>``
(`emotrack.corpora.layout.track_session`), with the video's timing and audio and their own faces:

- Their ratings are their own rating file only: the spec's rating path with ``{session}`` =
  ``S_track<k>``. A person without one is listed under ``unlabelled`` (with ``parent`` and ``track``) and
  not written, as a session of a test set without ratings is; the video's own rating file (``S``'s) is
  never given to a person, since which person it rates cannot be told.
- People seen in fewer frames than ``min_track_s`` seconds (a false detection, a passer-by) are not
  written, with a line naming them. A rating file for a person the tracker does not find fails the
  session: the ids it was written for are not this video's.
- The entries of track sessions hold ``parent`` (``S``), ``track`` (``k``) and ``people``, what became
  of every person of the video (``written``, ``unlabelled``, ``short``: their ids), which a rerun needs to
  keep them without decoding the video again (`kept_people`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.corpora.layout import Session, track_session
from emotrack.corpora.ratings import RatingsError
from emotrack.corpora.schema import CorpusSpec, PathTemplate
from emotrack.preprocess.crops import no_face_error, people_crops, seen_frames
from emotrack.preprocess.inputs import verified_entry
from emotrack.preprocess.options import PreprocessOptions
from emotrack.preprocess.session import (
    audio_input_checked,
    check_lengths,
    read_session_ratings,
    session_timeline,
    write_session,
)

#: Where ``emotrack predict --faces all --overlay`` shows each person's id.
_SEE_IDS = "see each person's id with `emotrack predict RUN VIDEO --faces all --overlay OUT.mp4`"


def _ratings_path(spec: CorpusSpec, info: Session) -> str:
    """Where a person's rating file is expected, for messages (``<k>`` for the track id)."""
    return PathTemplate(spec.ratings_template.text).format(**{**info.fields, "session": f"{info.session}_track<k>"})


def unlabelled_track(info: Session, track: int) -> dict[str, Any]:
    """The ``unlabelled`` item of person ``track`` of ``info``'s video, who has no rating file of their own."""
    return {"session": track_session(info.session, track), "partition": info.partition, "video": str(info.video),
            "parent": info.session, "track": track}


def process_people(spec: CorpusSpec, root: Path, info: Session, out_dir: Path, options: PreprocessOptions
                   ) -> dict[str, Any]:
    """Every person of ``info``'s video as a track session (see the module docstring).

    Returns:
        ``{"entries": [manifest entry, ...], "unlabelled": [unlabelled item, ...], "notes": [line, ...]}``.
    Raises:
        One of `emotrack.preprocess.session.SESSION_ERRORS`, naming the file.
    """
    # Every person's rating file is read first: a bad one fails before the (slow) decoding.
    rated = {k: read_session_ratings(spec, dataclasses.replace(info, ratings=files))
             for k, files in sorted(info.track_ratings.items())}
    audio_input = audio_input_checked(spec, root, info, options)
    ends = [t.times[-1] + 1.0 / t.rate_hz for t in rated.values()]
    timeline = session_timeline(spec, info, options, until=max(ends, default=np.inf), rated=bool(ends))
    fps = timeline.rate or timeline.fps
    people, _ = people_crops(timeline, options, fps)
    if not people:
        raise no_face_error(info.video, None, options.tracker)
    unknown = sorted(set(rated) - set(people))
    if unknown:
        files = ", ".join(sorted({str(p) for k in unknown for p in info.track_ratings[k].values()}))
        raise RatingsError(f"rating file(s) {files} of session {info.session} are for track(s) "
                           f"{', '.join(map(str, unknown))}, but {info.video} holds {len(people)} people (tracks "
                           f"{', '.join(map(str, sorted(people)))}); {_SEE_IDS}, and name the files after them")
    notes = []
    if info.ratings:
        own = ", ".join(sorted(map(str, set(info.ratings.values()))))
        notes.append(f"session {info.session}: its rating file(s) {own} "
                     f"rate the video, not one person, and are not used with --faces all; each person's "
                     f"ratings come from {_ratings_path(spec, info)}")
    outcome: dict[str, list[int]] = {"written": [], "unlabelled": [], "short": []}
    for pid, person in sorted(people.items()):
        name, seen = track_session(info.session, pid), seen_frames(person)
        if seen < options.min_track_s * fps:
            outcome["short"].append(pid)
            unused = "; its rating file is not used" if pid in rated else ""
            notes.append(f"track session {name}: the person is seen in {seen} frame(s) ({seen / fps:.2f} s), less "
                         f"than --min-track-s {options.min_track_s:g} s: not written{unused}")
        else:
            outcome["written" if pid in rated else "unlabelled"].append(pid)
    persons = {pid: dataclasses.replace(info, session=track_session(info.session, pid),
                                        subject=f"{info.subject}_track{pid}", ratings=info.track_ratings[pid],
                                        track_ratings={}) for pid in outcome["written"]}
    for pid, person_info in persons.items():  # every person's ratings checked before the first is written
        check_lengths(person_info, rated[pid], timeline, options)
    entries = []
    for pid, person_info in persons.items():
        entry = write_session(spec, person_info, out_dir, options, timeline, rated[pid], people[pid].result(),
                              audio_input)
        entries.append({**entry, "parent": info.session, "track": pid, "people": outcome})
    unlabelled = [unlabelled_track(info, pid) for pid in outcome["unlabelled"]]
    if unlabelled:
        notes.append(unlabelled_note(spec, info, outcome["unlabelled"]))
    return {"entries": entries, "unlabelled": unlabelled, "notes": notes}


def unlabelled_note(spec: CorpusSpec, info: Session, tracks: list[int]) -> str:
    """The line that names the people of ``info``'s video without a rating file of their own."""
    names = ", ".join(track_session(info.session, k) for k in tracks)
    return (f"session {info.session}: {len(tracks)} person(s) without a rating file of their own, listed as "
            f"unlabelled and not written: {names}; to use them, give each a rating file at "
            f"{_ratings_path(spec, info)} ({_SEE_IDS})")


def kept_people(out_dir: Path, info: Session, earlier: dict[str, list[dict[str, Any]]], inputs: dict[str, Any]
                ) -> tuple[list[dict[str, Any]] | None, str]:
    """The track sessions of ``info``'s video written by an earlier run (``earlier``: entries by session)
    from the same inputs, every record verified, in track order; or None and why not ("" when no earlier
    run wrote any)."""
    mine = {name: [e for e in entries if e.get("parent") == info.session] for name, entries in earlier.items()}
    mine = {name: entries for name, entries in mine.items() if entries}
    if not mine:
        return None, ""
    kept = []
    for name, entries in sorted(mine.items(), key=lambda item: item[1][-1].get("track", 0)):
        entry, why = verified_entry(out_dir, name, entries, inputs)
        if entry is None:
            return None, f"track session {name}: {why}"
        kept.append(entry)
    written = kept[-1].get("people", {}).get("written")
    if written != [e.get("track") for e in kept] or any(e.get("people") != kept[-1]["people"] for e in kept):
        return None, "its earlier track sessions do not match the people the run that wrote them found"
    return kept, ""
