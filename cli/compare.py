"""``emotrack compare``."""

from __future__ import annotations

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the table as CSV.")
def compare(runs, csv_path):
    """Print evaluated RUNS side by side: CCC on devel and test, raw and post-processed, next to
    the paper's reported CCC for each experiment.

    The columns of the partition the paper reports on stand beside the paper's numbers (test beside
    test); a post-processed figure on the partition its chain was fitted on (devel, unless the run held
    out data.validation) is labelled (in-sample).

    A folder made by `emotrack train --repeats N` counts as one row with the mean and standard
    deviation over its seeds.
    """
    from emotrack.evaluation.compare import compare_runs, format_comparison

    try:
        table = compare_runs(list(runs))
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_comparison(table))
    if csv_path:
        table.to_csv(csv_path, index=False, float_format="%.6f")
        click.echo(f"table written to {csv_path}")
