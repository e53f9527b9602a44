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
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run in --out from its last epoch, with the config saved there.")
@click.option("--repeats", type=int, default=1, show_default=True,
              help="Train and evaluate N runs with seeds SEED..SEED+N-1 in --out/seed-<s>; "
                   "repeats.json gets the mean and standard deviation of their CCC.")
def train(experiment, data_dir, out_dir, config_file, overrides, seed, overwrite, resume, repeats):
    """Train EXPERIMENT (e.g. huang2018-convlstm) and write the run folder.

    The run folder gets config.yaml (resolved config, seed, data manifest hash, versions),
    best.keras (highest devel CCC), last.keras, history.csv, TensorBoard logs/ and the newest
    epoch's checkpoint for --resume. `emotrack experiments` lists the experiments.
    """
    from ..config import ConfigError
    from ..train import RunExistsError, train as run_training, train_repeats

    try:
        if repeats != 1:
            summary = train_repeats(experiment, data_dir, out_dir, repeats, config_file=config_file,
                                    overrides=overrides, seed=seed, overwrite=overwrite, resume=resume)
            for partition, kinds in summary["summary"].items():
                for kind, dims in kinds.items():
                    scores = "  ".join(f"{d} CCC {v['mean']:.3f} +- {v['std']:.3f}" for d, v in dims.items()
                                       if v["mean"] is not None)
                    click.echo(f"{partition:6s} {kind:15s} ({repeats} seeds)  {scores}")
            click.echo(f"runs and summary written to {out_dir} (repeats.json)")
            return
        run = run_training(experiment, data_dir, out_dir, config_file=config_file, overrides=overrides,
                           seed=seed, overwrite=overwrite, resume=resume)
    except (ConfigError, RunExistsError, FileNotFoundError, KeyError, TypeError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"run written to {run}")
