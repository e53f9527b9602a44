"""``emotrack evaluate``."""

from __future__ import annotations

import click

from emotrack.evaluation.postprocess import chain_names


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--partition", "partitions", multiple=True, help="Partition(s) to evaluate (default: devel and test).")
@click.option("--checkpoint", default=None,
              help="Checkpoint file in the run folder [the run's evaluate.checkpoint: best.keras, or last.keras].")
@click.option("--postprocessing", type=click.Choice(chain_names()),
              help="Post-processing chain fitted on devel (default: the run's config).")
@click.option("--aggregation", type=click.Choice(["concat", "mean"]), default="concat", show_default=True,
              help="CCC over all sessions concatenated, or per session then averaged.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Preprocessed data to evaluate on [the run's data.dir]; it must be the data the run was trained on.")
@click.option("--allow-other-data", is_flag=True,
              help="Score data whose manifest differs from the run's training data; report.json records it.")
def evaluate(run_dir, partitions, checkpoint, aggregation, postprocessing, data_dir, allow_other_data):
    """Evaluate RUN_DIR on whole sessions: CCC per dimension, report.json and a plot.

    The post-processing chain is fitted on the devel partition only (or on the training subjects
    data.validation holds out) and applied unchanged to the others; raw and post-processed numbers are
    reported side by side, those of the partition the chain was fitted on marked in-sample. A partition without labels
    (a challenge's test set) is not scored: its videos are predicted and written in the corpus'
    rating-file format below RUN_DIR/submission/PARTITION/.
    """
    from emotrack.apps.submission import write_submissions
    from emotrack.evaluation.report import evaluate as run_evaluation, in_sample_label

    try:
        report = run_evaluation(run_dir, list(partitions) or None, checkpoint, aggregation, postprocessing,
                                data_dir=data_dir, allow_other_data=allow_other_data)
        report = write_submissions(run_dir, report, log=click.echo)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if not report["data"]["same_as_training"]:
        click.echo(f"note: {report['data']['dir']} is not the data the run was trained on (--allow-other-data)")
    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"

    for name, part in report["partitions"].items():
        for kind in ("raw", "post_processed"):
            if kind in part:
                scores = "  ".join(f"{t} CCC {fmt(part[kind][t]['CCC'])}" for t in report["targets"])
                label = in_sample_label(part) if kind == "post_processed" else ""
                click.echo(f"{name:6s} {kind:15s} ({part['num_sessions']} sessions)  {scores}"
                           + (f"  [{label}]" if label else ""))
    click.echo(f"report: {run_dir}/report.json" + (f"  plot: {report['plot']}" if report["plot"] else ""))
