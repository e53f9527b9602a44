"""``emotrack specs``."""

from __future__ import annotations

import click


@click.command()
@click.argument("name", required=False)
def specs(name):
    """List the built-in corpus specs, or show one spec in full.

    Without NAME: every built-in spec with its description, dimensions, rating rate and partitions.
    With NAME (a built-in spec or the path of a spec file): the spec's YAML, which states the layout
    it expects, the rating format and the split it uses. Pass a spec's name or path to
    `emotrack preprocess --spec`.
    """
    from emotrack.corpora.spec import SpecError, spec_text, specs_summary

    try:
        click.echo(spec_text(name) if name else specs_summary())
    except SpecError as err:
        raise click.ClickException(str(err)) from err
