"""``emotrack train``."""

from __future__ import annotations

import click


@click.command()
@click.argument("experiment")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
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
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]),
              help="Spread training over devices (train.strategy): mirrored over this machine's GPUs, "
                   "multiworker over the machines in the TF_CONFIG environment variable (run the same "
                   "command on each; worker 0 writes --out). --set data.batch_size is the global batch.")
@click.option("--mixed-precision", is_flag=True,
              help="Compute in float16 with float32 variables (train.mixed_precision=true; for GPUs; "
                   "on a CPU --set train.mixed_precision=mixed_bfloat16).")
def train(experiment, data_dir, out_dir, config_file, overrides, seed, overwrite, resume, repeats, strategy,
          mixed_precision):
    """Train EXPERIMENT (e.g. huang2018-convlstm) and write the run folder.

    The run folder gets config.yaml (resolved config, seed, data manifest hash, versions),
    best.keras (highest devel CCC), last.keras, history.csv, TensorBoard logs/ and the newest
    epoch's checkpoint for --resume. `emotrack experiments` lists the experiments.
    """
    from emotrack.config.schema import ConfigError
    from emotrack.reproduce.repeats import train_repeats
    from emotrack.training.train import RunExistsError
    from emotrack.training.train import train as run_training

    overrides = tuple(overrides) + ((f"train.strategy={strategy}",) if strategy else ()) + (
        ("train.mixed_precision=true",) if mixed_precision else ())
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
