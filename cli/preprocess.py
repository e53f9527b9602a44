"""``emotrack preprocess``."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--spec", required=True, help="Built-in corpus spec name (e.g. generic) or the path of a spec YAML.")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="The corpus folder.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for TFRecords + manifest.json.")
@click.option("--size", default=112, show_default=True, type=click.IntRange(16), help="Face crop side in pixels.")
@click.option("--color/--gray", default=False, show_default=True, help="RGB or gray face crops.")
@click.option("--margin", default=0.2, show_default=True, type=click.FloatRange(0.0), help="Margin around the face box.")
@click.option("--min-confidence", default=0.9, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="MTCNN detections below it are ignored.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), help="Frames per MTCNN call.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def preprocess(spec, root, out_dir, size, color, margin, min_confidence, batch_size, quiet):
    """Detect faces (MTCNN), crop them, align the ratings and write TFRecords.

    Writes OUT/sessions/<session>.tfrecord and OUT/manifest.json. A session that fails is
    reported and skipped; the command then exits with status 1.
    """
    from ..preprocess import PreprocessOptions, preprocess_corpus
    from ..specs import SpecError

    options = PreprocessOptions(size=(size, size), gray=not color, margin=margin,
                                min_confidence=min_confidence, batch_size=batch_size)
    try:
        report = preprocess_corpus(spec, root, out_dir, options, progress=not quiet,
                                   log=lambda m: click.echo(m, err=True))
    except (SpecError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{len(report.done)} sessions written to {out_dir}, {len(report.failed)} failed")
    if report.failed:
        for f in report.failed:
            click.echo(f"FAILED {f['session']}: {f['error']}", err=True)
        sys.exit(1)
