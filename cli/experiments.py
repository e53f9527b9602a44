"""``emotrack experiments``."""

from __future__ import annotations

import click


@click.command()
@click.option("--name", "names", multiple=True, help="Only these experiments (default: all).")
def experiments(names):
    """List the named experiments with the model they train and the numbers their paper reports.

    Each experiment is one row of a paper's table; `emotrack train NAME` runs it with the paper's
    settings as defaults (changed with --config and --set).
    """
    from ..config import EXPERIMENTS, list_experiments

    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise click.ClickException(f"unknown experiment(s) {', '.join(unknown)}; known: "
                                   f"{', '.join(list_experiments())}")
    for name in names or list_experiments():
        config = EXPERIMENTS[name]
        reported = "  ".join(f"{d} {v:.3f}" for d, v in config["paper"]["reported"].items())
        click.echo(f"{name:30s} {config['model']['name']:26s} {config['paper']['source']}: {reported}")
        click.echo(f"{'':30s} {config['description']}")
