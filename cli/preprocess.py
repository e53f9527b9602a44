"""``emotrack preprocess``."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--spec", required=True,
              help="Built-in corpus spec name (see `emotrack specs`) or the path of a spec YAML.")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="The corpus folder.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for TFRecords + manifest.json.")
@click.option("--size", default=112, show_default=True, type=click.IntRange(16), help="Face crop side in pixels.")
@click.option("--color/--gray", default=False, show_default=True, help="RGB or gray face crops.")
@click.option("--margin", default=0.2, show_default=True, type=click.FloatRange(0.0), help="Margin around the face box.")
@click.option("--min-confidence", default=0.9, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="MTCNN detections below it are ignored.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), help="Frames per MTCNN call.")
@click.option("--rater", default=None,
              help="One rater's ratings instead of the raters' mean (corpora with several raters, e.g. recola: FM1).")
@click.option("--video-path", default=None,
              help="Path pattern of the videos under --root, replacing the spec's (e.g. for semaine-avec2012: "
                   "'video/{split}/{split}{number}.avi').")
@click.option("--video-fps", default=None, type=click.FloatRange(0.0, min_open=True),
              help="Frame rate replacing the spec's or the video's (e.g. for afew-va's folders of frames).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def preprocess(spec, root, out_dir, size, color, margin, min_confidence, batch_size, rater, video_path, video_fps,
               quiet):
    """Detect faces (MTCNN), crop them, align the ratings and write TFRecords.

    Writes OUT/sessions/<session>.tfrecord and OUT/manifest.json. A session that fails, or whose
    video or rating file is missing, is reported by name and skipped; the command then exits with
    status 1. Sessions of a partition without public ratings (a challenge's test set) are listed
    and skipped.
    """
    from ..preprocess import PreprocessOptions, preprocess_corpus
    from ..specs import SpecError

    options = PreprocessOptions(size=(size, size), gray=not color, margin=margin,
                                min_confidence=min_confidence, batch_size=batch_size, rater=rater,
                                video_path=video_path, video_fps=video_fps)
    try:
        report = preprocess_corpus(spec, root, out_dir, options, progress=not quiet,
                                   log=lambda m: click.echo(m, err=True))
    except (SpecError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    unlabelled = f", {len(report.unlabelled)} without ratings (not written)" if report.unlabelled else ""
    click.echo(f"{len(report.done)} sessions written to {out_dir}, {len(report.failed)} failed{unlabelled}")
    if report.failed:
        for f in report.failed:
            click.echo(f"FAILED {f['session']}: {f['error']}", err=True)
        sys.exit(1)
