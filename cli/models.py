"""``emotrack models``."""

from __future__ import annotations

import click


@click.command()
@click.option("--params", is_flag=True,
              help="Build every model at the paper's size (random weights) and print its parameter counts.")
@click.option("--name", "names", multiple=True, help="Only these models (default: all).")
def models(params, names):
    """List the registered models, with the paper each follows.

    With --params every model is built at its paper-size defaults (no weights are downloaded)
    and its total and trainable parameter counts are printed.
    """
    from emotrack.models import (
        build_model,
        count_parameters,
        describe_model,
        list_models,
    )

    known = list_models()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.ClickException(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if params:
        click.echo(f"{'model':28s} {'parameters':>13s} {'trainable':>13s}")
    for name in names or known:
        line = f"{name:28s} {describe_model(name)[:100]}"
        if params:
            counts = count_parameters(build_model(name))
            line = f"{name:28s} {counts['total']:>13,d} {counts['trainable']:>13,d}"
        click.echo(line)
