"""``emotrack inspect``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_png", default=None, type=click.Path(dir_okay=False),
              help="Contact sheet PNG to write. Default: DATA_DIR/contact_sheet.png.")
@click.option("--per-session", default=8, show_default=True, type=click.IntRange(1),
              help="Face crops per session, evenly spaced over it.")
@click.option("--max-sessions", default=None, type=click.IntRange(1),
              help="Only the first sessions of the manifest on the sheet (default: all).")
def inspect(data_dir, out_png, per_session, max_sessions):
    """Summarise a preprocessed corpus and draw a contact sheet of its face crops.

    Prints what DATA_DIR/manifest.json holds (sessions and frames per partition, frame rates, the
    fractions of frames with a face and with a rating, audio, failures) and writes a PNG with
    --per-session crops of every session, one row each; crops of frames without a face have a red
    border and a red cross.
    """
    from emotrack.apps.inspect_corpus import contact_sheet, format_summary, summarize

    try:
        click.echo(format_summary(summarize(data_dir)))
        path = contact_sheet(data_dir, out_png or Path(data_dir) / "contact_sheet.png", per_session, max_sessions)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"\ncontact sheet written to {path}")
