"""The ``emotrack`` command line: thin Click commands, each calling one library function."""

from __future__ import annotations

import os

import click

# TensorFlow 2.21's oneDNN bfloat16 kernels crash the process (a segmentation fault in the first
# training step of train.mixed_precision=mixed_bfloat16) on CPUs with AMX; capping oneDNN at the
# AVX-512 FP16 instruction set keeps float32 unchanged (AMX serves 16- and 8-bit types only). Set
# ONEDNN_MAX_CPU_ISA yourself to choose otherwise.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_FP16")

from emotrack import __version__
from emotrack.cli.compare import compare
from emotrack.cli.evaluate import evaluate
from emotrack.cli.experiments import experiments
from emotrack.cli.export import export
from emotrack.cli.inspect import inspect
from emotrack.cli.models import models
from emotrack.cli.predict import predict
from emotrack.cli.preprocess import preprocess
from emotrack.cli.pretrain import pretrain
from emotrack.cli.reproduce import reproduce
from emotrack.cli.specs import specs
from emotrack.cli.synth import synth
from emotrack.cli.errors import EmotrackGroup, quiet_tensorflow
from emotrack.cli.train import train


@click.group(cls=EmotrackGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emotrack")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's start-up messages, and the traceback of an unexpected error.")
def main(verbose: bool) -> None:
    """emotrack: continuous emotion recognition (arousal, valence) from face video.

    \b
    emotrack synth --out corpus                                   # a synthetic corpus
    emotrack preprocess --spec generic --root corpus --out tfr    # faces -> TFRecords
    emotrack train huang2018-convlstm --data tfr --out runs/a     # -> run folder
    emotrack evaluate runs/a                                      # CCC report + plot
    emotrack predict runs/a video.mp4 --out va.csv                # a new video
    emotrack models --params                                      # the model zoo

    An error in the input is one line naming the file or option and the fix. An unexpected error is
    one line too, with the file its traceback was written to (--verbose shows it instead).
    """
    if not verbose:
        quiet_tensorflow()


main.add_command(synth)
main.add_command(preprocess)
main.add_command(inspect)
main.add_command(train)
main.add_command(evaluate)
main.add_command(predict)
main.add_command(specs)
main.add_command(models)
main.add_command(experiments)
main.add_command(compare)
main.add_command(pretrain)
main.add_command(export)
main.add_command(reproduce)
