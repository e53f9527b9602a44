"""``emotrack train``."""

from __future__ import annotations

import click


@click.command()
@click.argument("experiment")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The --out folder of `emotrack preprocess`.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run folder to create.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML file whose values override the experiment's defaults.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one value, e.g. --set train.epochs=3 (repeatable).")
@click.option("--seed", type=int, help="Random seed (overrides train.seed).")
@click.option("--overwrite", is_flag=True, help="Replace a run already in --out.")
def train(experiment, data_dir, out_dir, config_file, overrides, seed, overwrite):
    """Train EXPERIMENT (e.g. huang2018-convlstm) and write the run folder.

    The run folder gets config.yaml (resolved config, seed, data manifest hash, versions),
    best.keras, last.keras and history.csv.
    """
    from ..config import ConfigError
    from ..train import RunExistsError, train as run_training

    try:
        run = run_training(experiment, data_dir, out_dir, config_file=config_file, overrides=overrides,
                           seed=seed, overwrite=overwrite)
    except (ConfigError, RunExistsError, FileNotFoundError, KeyError, TypeError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"run written to {run}")
