"""``emotrack experiments``."""

from __future__ import annotations

import click


@click.command()
@click.argument("experiment", required=False)
@click.option("--name", "names", multiple=True, help="Only these experiments (default: all).")
def experiments(experiment, names):
    """List the named experiments with the model they train and the numbers their paper reports, or,
    given EXPERIMENT, print its fully resolved config as YAML.

    Each experiment is one row of a paper's table; `emotrack train NAME` runs it with the paper's
    settings as defaults (changed with --config and --set).
    """
    from emotrack.config.experiments import EXPERIMENTS, list_experiments, resolve_config
    from emotrack.config.schema import ConfigError

    if experiment is not None:
        import yaml

        try:
            click.echo(yaml.safe_dump(resolve_config(experiment), sort_keys=False), nl=False)
        except ConfigError as err:
            raise click.ClickException(str(err)) from err
        return

    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise click.ClickException(f"unknown experiment(s) {', '.join(unknown)}; known: "
                                   f"{', '.join(list_experiments())}")
    for name in names or list_experiments():
        config = EXPERIMENTS[name]
        reported = "  ".join(f"{d} {v:.3f}" for d, v in config["paper"]["reported"].items())
        click.echo(f"{name:30s} {config['model']['name']:26s} {config['paper']['source']}: {reported}")
        click.echo(f"{'':30s} {config['description']}")
