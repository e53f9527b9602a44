"""A corpus -> TFRecords + ``manifest.json``: every session of a corpus (`emotrack.preprocess.session`), in a
pool of workers, one shard of the corpus at a time if asked, resumable.

The corpus spec (:mod:`emotrack.corpora.layout`) finds the sessions and their files; each session becomes
``<out>/sessions/<session>.tfrecord`` (`emotrack.preprocess.session.process_session`), and the manifest
(`emotrack.records.manifest`) lists them. A session that fails is reported by name and skipped; every file
is written under a temporary name and renamed when complete (`emotrack.files.atomic_path`), so nothing is
left half-written.

Scale and resumption:

- ``workers``: sessions run in a pool of processes, each with its own MTCNN detector; the parent
  collects the entries and writes the manifest once, in the corpus' session order. Records are
  serialised deterministically, so a session gives the same bytes (and checksum) in any process of one
  machine. (The tracker's boxes are MTCNN's numbers, which TensorFlow Lite gives alike on any number of
  threads; other TensorFlow ops, and machines with other CPU instruction sets, may differ in the last
  bits, so records of one session made on different machines may differ there.)
- ``shard=(i, n)``: this run takes sessions ``i, i + n, i + 2n, ...`` of the corpus' stable session
  order (the partition file's order, or the sessions' names in natural order) and writes its part of
  the manifest, ``manifest.shard-i-of-n.json``. When all ``n`` parts are in the folder after a shard
  finishes, they are merged into ``manifest.json`` at once; `merge_shards` (``emotrack
  preprocess --merge-shards``) does it by hand, e.g. after copying the parts of several machines
  into one folder. The merged manifest equals that of one unsharded run.
- Resumption: a session is kept, not redone, when an entry of a manifest, a shard part or a journal
  of the same spec, root and options in the folder was made from its inputs as they are now (its
  video, rating and audio files by content, its partition and subject; `emotrack.preprocess.inputs`)
  and its record is on disk with the SHA-256 the entry names; otherwise it is redone, and the log says
  what changed. As sessions finish, their entries are appended to a journal (``manifest.partial.jsonl``,
  or ``manifest.shard-i-of-n.partial.jsonl``; one JSON line each, a torn last line is ignored), so that
  an interrupted run resumes where it stopped; the journal is removed once the manifest is written.
  The manifest lists the corpus as it is now: the records of sessions it no longer has (or that
  failed after their inputs changed) are deleted, with a line each. With ``--faces all`` a video's
  people are kept or redone together (`emotrack.preprocess.people.kept_people`: every record it wrote
  verified, its people's rating files among its inputs), and the records of people no longer written
  are deleted, with a line each. (With shards, the merged manifest lists the track sessions of each
  shard together, after the sessions of the corpus' order: `merge_shard_parts` orders by session.)

Before the first session is decoded, a run tries the output folder (`check_output`), reads the
partition file strictly (a session listed twice stops the run), warns of files that the partition
file does not list, stops with nothing written when the spec finds no session, removes the temporary
files of runs that were stopped, and checks every session it will do (`check_session`: rating files
read, video opened); a run that stops before its first record leaves no folder it made behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from emotrack.corpora.layout import Session, discover, parse_track_session
from emotrack.corpora.schema import CorpusSpec
from emotrack.corpora.spec import SpecError, load_spec, with_overrides
from emotrack.faces.finder import FaceFinder
from emotrack.preprocess.inputs import (
    HASH_CACHE,
    HashCache,
    changed_inputs,
    check_output,
    remove_stale_temporaries,
    session_inputs,
    verified_entry,
)
from emotrack.preprocess.options import PreprocessError, PreprocessOptions, PreprocessReport
from emotrack.preprocess.people import kept_people, process_people, unlabelled_note, unlabelled_track
from emotrack.preprocess.session import SESSION_ERRORS, check_session, process_session
from emotrack.records.manifest import (
    FORMAT,
    MANIFEST,
    SHARD_GLOB,
    build_manifest,
    file_sha256,
    merge_shard_parts,
    read_manifest_file,
    read_shard_parts,
    shard_manifest_name,
    write_manifest,
)

__all__ = ["merge_shards", "parse_shard", "preprocess_corpus"]


_WORKER: dict[str, Any] = {}  # per worker process: its face detector


def _init_worker(options: PreprocessOptions, threads: int) -> None:
    import tensorflow as tf

    # Workers share the machine's cores instead of each taking all of them, except within one op: each keeps
    # TensorFlow's default count of intra-op threads, a serial run's, so that any op whose last bits depend
    # on how it is split (MTCNN's networks in TensorFlow Lite do not) gives a serial run's bytes.
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER["detector"] = options.face_finder()


def _run_session(spec: CorpusSpec, root: Path, info: Session, out_dir: Path, options: PreprocessOptions,
                 detector: FaceFinder | None = None) -> tuple[str, dict[str, Any]]:
    """``("done", entry)``, with ``--faces all`` ``("people", {"entries", "unlabelled", "notes"})``
    (`emotrack.preprocess.people.process_people`), or ``("failed", {"session", "error"})``; in a worker
    process without ``detector``."""
    try:
        if options.faces == "all":
            return "people", process_people(spec, root, info, out_dir, options)
        return "done", process_session(spec, root, info, out_dir, options,
                                       _WORKER["detector"] if detector is None else detector)
    except SESSION_ERRORS as err:
        return "failed", {"session": info.session, "error": str(err)}


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise ValueError(f"a shard is i/n with 0 <= i < n (e.g. 0/4 for the first of four), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def _journal_name(manifest_name: str) -> str:
    return manifest_name[:-len(".json")] + ".partial.jsonl"


def _fingerprint(spec: CorpusSpec, root: Path, options: PreprocessOptions) -> dict[str, Any]:
    """What a record depends on beside its session: entries of runs with another fingerprint are not reused."""
    return json.loads(json.dumps({"format": FORMAT, "spec": spec.to_dict(), "root": str(root.resolve()),
                                  "options": options.to_dict()}))


def _same_run(manifest: dict[str, Any], fingerprint: dict[str, Any]) -> bool:
    return all(manifest.get(key) == value for key, value in fingerprint.items())


def _read_journal(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A journal's header and its entries; lines that do not parse (a torn last line) are left out."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None, []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    if not rows or "journal" not in rows[0]:
        return None, []
    return rows[0]["journal"], [r for r in rows[1:] if "session" in r and "sha256" in r]


class _Journal:
    """Entries appended one JSON line at a time as sessions finish, so that an interrupted run resumes.

    The first line holds the run's fingerprint; a journal of another fingerprint is started afresh.
    """

    def __init__(self, path: Path, fingerprint: dict[str, Any]):
        self.path = path
        header, _ = _read_journal(path)
        if header == fingerprint:
            self.fh = open(path, "a")
            if not path.read_bytes().endswith(b"\n"):
                self.fh.write("\n")  # end a line torn by an interruption, so that the next one parses
        else:
            self.fh = open(path, "w")
            self.add({"journal": fingerprint})

    def add(self, row: dict[str, Any]) -> None:
        self.fh.write(json.dumps(row) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _earlier_entries(out_dir: Path, fingerprint: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Entries of earlier runs with the same fingerprint, by session: from ``manifest.json``, the shard
    parts and the journals in ``out_dir``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in [out_dir / MANIFEST, *sorted(out_dir.glob(SHARD_GLOB))]:
        manifest = read_manifest_file(path)
        if manifest and _same_run(manifest, fingerprint):
            for entry in manifest.get("sessions", []):
                found.setdefault(entry["session"], []).append(entry)
    for path in sorted(out_dir.glob("manifest*.partial.jsonl")):
        header, entries = _read_journal(path)
        if header == fingerprint:
            for entry in entries:
                found.setdefault(entry["session"], []).append(entry)
    return found


def _write(path: Path, manifest: dict[str, Any]) -> None:
    try:
        write_manifest(path, manifest)
    except OSError as err:
        raise PreprocessError(f"cannot write {path}: {err.strerror or err}; free space on its disk (or make "
                              f"{path.parent} writable) and run the same command again") from err


def _remove_stale_records(out_dir: Path, keep: set[str], corpus: set[str], listed: set[str], log,
                          others: set[str] = frozenset()) -> None:
    """Delete the records no session of this run stands behind: those of sessions no longer in the
    corpus, of people (``--faces all``) no longer found or written, and of sessions whose inputs changed
    but failed now (``keep``: the sessions written or kept, and those of other shards; ``others``: with
    ``--faces all``, the sessions of other shards, whose people's records are kept; ``listed``: the
    sessions of the manifest before this run)."""
    for path in sorted((out_dir / "sessions").glob("*.tfrecord")):
        session = path.stem
        parent = (parse_track_session(session) or ("",))[0]
        if session in keep or parent in others:
            continue
        path.unlink()
        if parent in corpus and session not in corpus:
            log(f"track session {session} is no longer written from session {parent}'s video: its record {path} "
                f"was deleted" + (" and it is no longer in the manifest" if session in listed else ""))
        elif session in corpus:
            log(f"session {session}: its earlier record {path} was deleted (its inputs changed, and it failed now)")
        else:
            log(f"session {session} is no longer in the corpus: its record {path} was deleted"
                + (" and it is no longer in the manifest" if session in listed else ""))


def _no_session(spec: CorpusSpec, root: Path, problems: list[dict[str, str]], out_dir: Path,
                people: list[dict[str, Any]] = ()) -> PreprocessError:
    listed = "; ".join(f"{p['session']}: {p['error']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    unrated = (f"; --faces all found {len(people)} people, none with a rating file of their own "
               f"({', '.join(u['session'] for u in people[:5])}{', ...' if len(people) > 5 else ''}): give them "
               f"rating files named after their track sessions, or preprocess without --faces all") if people else ""
    return PreprocessError(f"spec {spec.name!r} finds no session to preprocess under {root}"
                           + (f": {listed}{more}" if problems else "") + unrated
                           + f"; no manifest was written to {out_dir}")


def _check_audio_option(spec: CorpusSpec, options: PreprocessOptions) -> None:
    if options.audio and not spec.audio.get("path") and spec.video.get("kind", "file") == "frames":
        raise SpecError(f"spec {spec.name!r} has no audio: no audio.path, and its videos are folders of frames; "
                        f"preprocess without --audio")


def preprocess_corpus(spec: str | Path | CorpusSpec, root: str | Path, out_dir: str | Path,
                      options: PreprocessOptions | None = None, progress: bool = True,
                      log=print, workers: int = 1, shard: tuple[int, int] | None = None,
                      resume: bool = True) -> PreprocessReport:
    """Preprocess every session of a corpus (or of one shard of it) into ``out_dir``.

    Writes ``out_dir/sessions/<session>.tfrecord`` and ``out_dir/manifest.json`` (sessions,
    partitions, rates, counts, checksums, options, audio, failures, sessions without ratings); with
    ``shard``, ``out_dir/manifest.shard-i-of-n.json`` instead, merged into ``manifest.json`` when all
    parts are there. Sessions that fail, and files the spec cannot pair (a rating file without its video
    or the reverse), are listed under ``failed`` in the manifest and the report; the others are
    written. Sessions of a partition the spec marks unlabelled (a challenge's test set) that come
    without ratings are listed under ``unlabelled`` and not written.

    Args:
        workers: processes that preprocess sessions in parallel, each with its own face detector.
        shard: ``(i, n)``: only sessions i, i + n, ... of the corpus' session order.
        resume: keep the sessions of an earlier run of the same corpus, root and options made from the
            same inputs whose records pass their checksum (see the module docstring); False redoes every
            session.
    Raises:
        SpecError: a spec or an option that does not fit it.
        LayoutError: a root that is not the corpus the spec describes (nothing found where it says), or
            a partition file that cannot be read or lists a session twice; nothing is written then.
        PreprocessError: an output folder that cannot be written, no session to preprocess (nothing is
            written), or a disk that fills up (the sessions written so far are kept for a rerun).
    """
    spec = spec if isinstance(spec, CorpusSpec) else load_spec(spec)
    options = options or PreprocessOptions()
    spec = with_overrides(spec, video_path=options.video_path, video_fps=options.video_fps, rater=options.rater)
    _check_audio_option(spec, options)
    if shard is not None:
        shard = parse_shard(f"{shard[0]}/{shard[1]}")
    # The root resolved, so that every path the manifest records is the same however --root is written
    # (a relative or an absolute spelling of one corpus gives one manifest, hence one hash).
    root, out_dir = Path(root).resolve(), Path(out_dir)
    check_output(out_dir)
    found = discover(spec, root, people=options.faces == "all")
    if found.unlisted:
        more = f" and {len(found.unlisted) - 10} more" if len(found.unlisted) > 10 else ""
        log(f"warning: {len(found.unlisted)} file(s) match the spec's paths but {spec.partitions['file']} does not "
            f"list their session, so they are not preprocessed: {', '.join(map(str, found.unlisted[:10]))}{more}; "
            f"add their sessions to {spec.partitions['file']} (or remove the files)")
    if not found.sessions:
        raise _no_session(spec, root, found.problems, out_dir)
    created = not out_dir.exists()
    try:
        return _run(spec, root, out_dir, options, found, progress, log, workers, shard, resume)
    except BaseException as err:
        # Stopped before anything was written: a folder this run made is not left behind.
        if created and not any((out_dir / "sessions").glob("*.tfrecord")):
            shutil.rmtree(out_dir, ignore_errors=True)
        if isinstance(err, OSError):  # the sessions' own files fail the session: this is the output
            raise PreprocessError(f"cannot write {err.filename or out_dir}: {err.strerror or err}; free space on "
                                  f"its disk (or make it writable) and run the same command again: the sessions "
                                  f"written so far are kept") from err
        raise


def _run(spec: CorpusSpec, root: Path, out_dir: Path, options: PreprocessOptions, found, progress: bool, log,
         workers: int, shard: tuple[int, int] | None, resume: bool) -> PreprocessReport:
    from tqdm import tqdm

    for path in remove_stale_temporaries(out_dir, out_dir / "sessions"):
        log(f"removed {path}, left by a run that was stopped")
    failed = list(found.problems)
    for f in failed:
        log(f"session {f['session']} was skipped: {f['error']}")
    order = [s.session for s in found.sessions]
    mine = found.sessions[shard[0]::shard[1]] if shard else list(found.sessions)
    fingerprint = _fingerprint(spec, root, options)
    name = shard_manifest_name(*shard) if shard else MANIFEST
    before = {e.get("session") for e in (read_manifest_file(out_dir / MANIFEST) or {}).get("sessions", [])}

    cache = HashCache(out_dir / HASH_CACHE)
    inputs = {s.session: session_inputs(spec, root, s, options, cache) for s in mine}
    # A session's entries: its own, or (--faces all) those of its people; and its people without ratings.
    results: dict[str, list[dict[str, Any]]] = {}
    unrated: dict[str, list[dict[str, Any]]] = {}
    earlier = _earlier_entries(out_dir, fingerprint) if resume else {}
    for info in mine:
        if options.faces == "all":
            entries, why = kept_people(out_dir, info, earlier, inputs[info.session])
            if entries is not None:
                results[info.session] = entries
                unrated[info.session] = [unlabelled_track(info, k) for k in entries[0]["people"]["unlabelled"]]
                if unrated[info.session]:
                    log(unlabelled_note(spec, info, entries[0]["people"]["unlabelled"]))
        elif info.session in earlier:
            entry, why = verified_entry(out_dir, info.session, earlier[info.session], inputs[info.session])
            if entry is not None:
                results[info.session] = [entry]
        else:
            why = ""
        if why:
            log(f"session {info.session} is redone: {why}")
    skipped = [e["session"] for s in mine for e in results.get(s.session, [])]
    if skipped:
        log(f"{len(skipped)} session(s) already preprocessed from the same inputs with these options (inputs "
            f"and checksums verified): kept")

    # Every session is checked before the first is decoded, so that a bad file is named at once.
    errors: dict[str, dict[str, str]] = {}
    for info in mine:
        if info.session not in results:
            try:
                check_session(spec, root, info, options)
            except SESSION_ERRORS as err:
                errors[info.session] = {"session": info.session, "error": str(err)}
                log(f"session {info.session} failed and was skipped: {err}")
    todo = [s for s in mine if s.session not in results and s.session not in errors]
    if not shard and not results and not todo:
        raise _no_session(spec, root, failed + list(errors.values()), out_dir)

    (out_dir / "sessions").mkdir(parents=True, exist_ok=True)
    cache.save()
    journal = _Journal(out_dir / _journal_name(name), fingerprint)

    def collect(info: Session, outcome: tuple[str, dict[str, Any]]) -> None:
        status, item = outcome
        if status == "failed":
            errors[info.session] = item
            log(f"session {info.session} failed and was skipped: {item['error']}")
            return
        if status == "people":
            unrated[info.session] = item["unlabelled"]
            for note in item["notes"]:
                log(note)
        results[info.session] = []
        for entry in [item] if status == "done" else item["entries"]:
            entry, session = {**entry, "inputs": inputs[info.session]}, entry["session"]
            results[info.session].append(entry)
            journal.add(entry)
            for part, seconds in entry.get("trimmed_s", {}).items():
                if seconds * entry["fps"] >= 1.0:
                    log(f"session {session}: the last {seconds:.2f} s of its {part} were cut to the "
                        f"{'ratings' if part == 'video' else 'video'}' length (within the tolerance)")
            if entry.get("audio_unusable"):
                log(f"warning: session {session} is stored without audio, for visual models only: "
                    f"{entry['audio_unusable']}")
            elif entry.get("audio") and entry["audio"].get("silent"):
                log(f"warning: session {session}: its audio {entry['audio']['source']} is silent (RMS "
                    f"{entry['audio']['rms']:.1e} of full scale); check the recording, or pass --no-audio")

    bar = tqdm(total=len(todo), desc="preprocess", unit="session", disable=not progress)
    try:
        if min(workers, len(todo)) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            count = min(workers, len(todo))
            threads = max(1, (os.cpu_count() or 1) // count)
            # spawn, not fork: TensorFlow's runtime in the parent does not survive a fork.
            pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(options, threads))
            try:
                futures = {pool.submit(_run_session, spec, root, info, out_dir, options): info for info in todo}
                for future in as_completed(futures):
                    collect(futures[future], future.result())
                    bar.update()
            finally:
                # On an error or an interruption, sessions not yet started are dropped, not waited for.
                pool.shutdown(wait=True, cancel_futures=True)
        elif todo:
            detector = options.face_finder()
            for info in todo:
                bar.set_postfix_str(info.session)
                collect(info, _run_session(spec, root, info, out_dir, options, detector))
                bar.update()
    finally:
        bar.close()
        journal.close()

    done = [e for s in mine for e in results.get(s.session, [])]
    failed += [errors[s.session] for s in mine if s.session in errors]
    people = [u for s in mine for u in unrated.get(s.session, [])]
    if not shard and not done:
        journal.remove()
        raise _no_session(spec, root, failed, out_dir, people)
    unlabelled = [{"session": s.session, "partition": s.partition, "video": str(s.video)}
                  for s in found.unlabelled] + people
    base = {**fingerprint, "format": FORMAT}
    shard_info = {"index": shard[0], "count": shard[1], "order": order} if shard else None
    _write(out_dir / name, build_manifest(base, done, failed, unlabelled, shard_info))
    journal.remove()
    others = set(order) - {s.session for s in mine}
    corpus = set(order) | {f["session"] for f in failed} | {s.session for s in found.unlabelled}
    _remove_stale_records(out_dir, {e["session"] for e in done} | others, corpus, before, log,
                          others if options.faces == "all" else set())
    report = PreprocessReport(out_dir=out_dir, done=done, failed=failed, unlabelled=unlabelled, skipped=skipped,
                              manifest=out_dir / name)
    if shard:
        parts = [out_dir / shard_manifest_name(i, shard[1]) for i in range(shard[1])]
        if all(p.is_file() for p in parts):
            try:
                merge_shards(out_dir, shard[1])
                report.merged = True
                log(f"all {shard[1]} shard parts are in {out_dir}: merged into {MANIFEST}")
            except ValueError as err:
                log(f"shard parts not merged: {err}")
    return report


def merge_shards(out_dir: str | Path, count: int | None = None) -> PreprocessReport:
    """Merge the shard parts ``manifest.shard-i-of-n.json`` in ``out_dir`` into ``manifest.json``.

    The result equals the manifest of one unsharded run over the same sessions (sessions in the corpus'
    order, discovery problems once; see `emotrack.records.manifest.merge_shard_parts`).

    Args:
        count: n, where parts of several shard counts lie in the folder.
    Raises:
        FileNotFoundError: naming the parts that are missing.
        ValueError: parts of different corpora, roots or options, or of several shard counts.
    """
    out_dir = Path(out_dir)
    manifest = merge_shard_parts(read_shard_parts(out_dir, count))
    _write(out_dir / MANIFEST, manifest)
    return PreprocessReport(out_dir=out_dir, done=manifest["sessions"], failed=manifest["failed"],
                            unlabelled=manifest["unlabelled"], manifest=out_dir / MANIFEST, merged=True)
