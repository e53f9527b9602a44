"""``emotrack reproduce``."""

from __future__ import annotations

import click

from emotrack.config.experiments import EXPERIMENTS  # noqa: F401  (registers every paper)
from emotrack.config.papers import PAPERS

_INPUTS = {i.variable: i for p in PAPERS.values() for i in p.inputs}


def _input_options(command):
    for variable in sorted(_INPUTS, reverse=True):
        item = _INPUTS[variable]
        command = click.option(item.option, variable.lower(), metavar="PATH", envvar=variable,
                               help=f"{item.what} (environment: {variable}).")(command)
    return command


@click.command()
@click.argument("paper", type=click.Choice(sorted(PAPERS)))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Reproduction folder [reproductions/PAPER].")
@click.option("--smoke", is_flag=True,
              help="The same staged protocol with tiny models, one epoch, one repeat, on synthetic corpora in the "
                   "release layouts where a corpus is not given: minutes on a CPU; the numbers mean nothing.")
@click.option("--dry-run", is_flag=True, help="Print the plan and stop.")
@_input_options
def reproduce(paper, out_dir, smoke, dry_run, **inputs):
    """Reproduce PAPER's results tables: preprocessing with the paper's crop set and rate, every
    pre-training stage, every row of every table with the paper's repeats, evaluation with the
    paper's metric and partitions; writes tableN.md / tableN.csv (ours beside the paper's) and a
    README.md listing every deviation. Rerunning resumes.
    """
    from emotrack.reproduce.protocol import ReproductionError, reproduce as run

    try:
        run(paper, out_dir or f"reproductions/{paper}", {k.upper(): v for k, v in inputs.items()},
            smoke=smoke, dry_run=dry_run, log=click.echo)
    except (ReproductionError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
