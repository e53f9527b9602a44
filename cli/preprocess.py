"""``emotrack preprocess``."""

from __future__ import annotations

import sys

import click


def _parsed(parser_name: str):
    """A click callback that parses an option's text with ``parse_crops`` or ``parse_shard`` (None stays
    None), a parse error becoming click's usage error for that option."""

    def callback(ctx, param, value):
        if value is None:
            return None
        from emotrack.faces.crop import parse_crops
        from emotrack.preprocess.corpus import parse_shard

        try:
            return {"parse_crops": parse_crops, "parse_shard": parse_shard}[parser_name](value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from err

    return callback


@click.command()
@click.option("--spec", default=None,
              help="Built-in corpus spec name (see `emotrack specs`) or the path of a spec YAML (required, "
                   "except with --merge-shards).")
@click.option("--root", default=None, type=click.Path(exists=True, file_okay=False),
              help="The corpus folder (required, except with --merge-shards).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for TFRecords + manifest.json.")
@click.option("--size", default=112, show_default=True, type=click.IntRange(16), help="Face crop side in pixels.")
@click.option("--color/--gray", default=False, show_default=True, help="RGB or gray face crops.")
@click.option("--crops", default=None, callback=_parsed("parse_crops"), metavar="SETS",
              help="Crop sets cut in one pass, comma-separated, instead of --size/--color: huang2018 (112x112 gray), "
                   "tzirakis2017 (96x96 RGB), teixeira2021 (100x80 RGB), astnet (224x224 RGB) or HxW[gray|rgb]. "
                   "The first is stored as the records' frames, every other as frames_<name>.")
@click.option("--margin", default=0.2, show_default=True, type=click.FloatRange(0.0), help="Margin around the face box.")
@click.option("--align/--no-align", default=False, show_default=True,
              help="Rotate the crops so that the eyes are level.")
@click.option("--tracker/--no-tracker", default=True, show_default=True,
              help="Track the face (MTCNN every --detect-every frames, O-Net in between; fast), or run MTCNN at "
                   "its defaults on every frame.")
@click.option("--detect-every", default=30, show_default=True, type=click.IntRange(1),
              help="Tracker: MTCNN's proposal stages every N frames.")
@click.option("--min-face", default=0.1, show_default=True, type=click.FloatRange(0.0, 1.0, min_open=True),
              help="Tracker, --faces all and a spec's left/right sides: smallest face to find, as a fraction of "
                   "the frame's shorter side (36 px at 360p); smaller faces are missed.")
@click.option("--min-confidence", default=0.9, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="MTCNN detections below it are ignored.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), help="Frames per MTCNN call.")
@click.option("--image-format", default="jpeg", show_default=True, type=click.Choice(["jpeg", "png"]),
              help="How crops are stored: JPEG (quality 95, 4:4:4) or PNG (lossless, several times slower).")
@click.option("--rater", default=None,
              help="One rater's ratings instead of the raters' mean (corpora with several raters, e.g. recola: FM1).")
@click.option("--video-path", default=None,
              help="Path pattern of the videos under --root, replacing the spec's (e.g. for semaine-avec2012: "
                   "'video/{split}/{split}{number}.avi').")
@click.option("--video-fps", default=None, type=click.FloatRange(0.0, min_open=True),
              help="Frame rate replacing the spec's or the video's (e.g. for afew-va's folders of frames).")
@click.option("--fps", default=None, type=click.FloatRange(0.0, min_open=True),
              help="Keep this many frames per second (e.g. 10 for SEWA's 50 fps video: every 5th frame; the "
                   "rating rate to subsample frames to the ratings). Default: every frame.")
@click.option("--resample", default="linear", show_default=True, type=click.Choice(["linear", "hold"]),
              help="Ratings at the frames' times: linear interpolation between rating steps, or hold the last "
                   "step.")
@click.option("--audio/--no-audio", default=None,
              help="Store each frame's audio (16 kHz mono, normalised per session). Default: where the corpus "
                   "has usable audio (the spec's audio files, else the videos' sound tracks); --audio: a "
                   "session without usable audio fails.")
@click.option("--faces", type=click.Choice(["one", "all"]), default="one", show_default=True,
              help="all: every person of a video becomes a session of their own, <session>_track<k> (k: the "
                   "person's id, as `emotrack predict --faces all` gives it), rated by their own rating file "
                   "(the spec's rating path with {session} = <session>_track<k>); people without one are "
                   "listed as unlabelled and not written.")
@click.option("--min-track-s", default=1.0, show_default=True, type=click.FloatRange(0.0),
              help="--faces all, and the left/right person of a shared video: people seen for less than this "
                   "many seconds are left out.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Sessions preprocessed in parallel, one process (and face detector) each.")
@click.option("--shard", default=None, callback=_parsed("parse_shard"), metavar="I/N",
              help="Take sessions I, I+N, I+2N, ... of the corpus (e.g. 0/4 on the first of four machines); "
                   "writes manifest.shard-I-of-N.json, merged into manifest.json when all N parts are in --out.")
@click.option("--merge-shards", is_flag=True,
              help="Only merge the shard parts in --out into manifest.json (after copying them together).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Keep sessions already written from the same inputs with the same options whose "
                   "checksums verify.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def preprocess(ctx, spec, root, out_dir, size, color, crops, margin, align, tracker, detect_every, min_face,
               min_confidence, batch_size, image_format, rater, video_path, video_fps, fps, resample, audio,
               faces, min_track_s, workers, shard, merge_shards, resume, quiet):
    """Find the faces (MTCNN), crop them, align the ratings and audio, and write TFRecords.

    Writes OUT/sessions/<session>.tfrecord and OUT/manifest.json. Before any decoding, OUT is tried and
    the corpus checked: a partition file that lists a session twice, or a spec that finds no session,
    stops the command with nothing written; files the partition file does not list are warned about.
    A session that fails, or whose video or rating file is missing, is reported by name and skipped;
    the command then exits with status 1. A session whose audio cannot be used is stored without it,
    for visual models, and named (with --audio it fails instead). Sessions of a partition without
    public ratings (a challenge's test set) are listed and skipped. With --faces all, each person of a
    video is a session of their own, written where they have a rating file of their own, and listed as
    unlabelled otherwise. A rerun keeps the sessions whose
    inputs (video, rating and audio files, partition, subject) and options are unchanged and whose
    records verify, redoes the others, and drops the sessions no longer in the corpus, so an
    interrupted run is resumed by running it again.
    """
    from emotrack.corpora.spec import SpecError
    from emotrack.preprocess.corpus import merge_shards as merge
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.preprocess.options import PreprocessOptions

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    try:
        if merge_shards:
            report = merge(out_dir)
        else:
            if not spec or not root:
                raise click.UsageError("--spec and --root are needed (all but --out are ignored with --merge-shards)")
            if crops is not None and any(ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
                                         for name in ("size", "color")):
                raise click.UsageError("--crops replaces --size and --color: name the default crop set first in "
                                       "--crops (e.g. 112x112gray,tzirakis2017)")
            options = PreprocessOptions(size=(size, size), gray=not color, crops=crops, margin=margin, align=align,
                                        tracker=tracker, detect_every=detect_every, min_face=min_face,
                                        min_confidence=min_confidence, batch_size=batch_size,
                                        image_format=image_format, rater=rater, video_path=video_path,
                                        video_fps=video_fps, fps=fps, resample=resample, audio=audio,
                                        faces=faces, min_track_s=min_track_s)
            report = preprocess_corpus(spec, root, out_dir, options, progress=not quiet, log=log,
                                       workers=workers, shard=shard, resume=resume)
    except (SpecError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    unlabelled = f", {len(report.unlabelled)} without ratings (not written)" if report.unlabelled else ""
    kept = f" ({len(report.skipped)} kept from an earlier run)" if report.skipped else ""
    if merge_shards:
        merged = " (merged from the shard parts)"
    else:
        merged = f"; all shard parts present, merged into {report.out_dir / 'manifest.json'}" if report.merged else ""
    click.echo(f"{len(report.done)} sessions in {report.manifest}{kept}, {len(report.failed)} failed"
               f"{unlabelled}{merged}")
    if report.failed:
        for f in report.failed:
            click.echo(f"FAILED {f['session']}: {f['error']}", err=True)
        sys.exit(1)
