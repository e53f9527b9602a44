"""``emotrack evaluate``."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--partition", "partitions", multiple=True, help="Partition(s) to evaluate (default: devel and test).")
@click.option("--checkpoint", default="best.keras", show_default=True, help="Checkpoint file in the run folder.")
@click.option("--aggregation", type=click.Choice(["concat", "mean"]), default="concat", show_default=True,
              help="CCC over all sessions concatenated, or per session then averaged.")
def evaluate(run_dir, partitions, checkpoint, aggregation):
    """Evaluate RUN_DIR on whole sessions: CCC per dimension, report.json and a plot."""
    from ..evaluate import evaluate as run_evaluation

    try:
        report = run_evaluation(run_dir, list(partitions) or None, checkpoint, aggregation)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    for name, part in report["partitions"].items():
        scores = "  ".join(f"{t} CCC {part['metrics'][t]['CCC']:.3f}" for t in report["targets"])
        click.echo(f"{name:6s} ({part['num_sessions']} sessions)  {scores}")
    click.echo(f"report: {run_dir}/report.json" + (f"  plot: {report['plot']}" if report["plot"] else ""))
