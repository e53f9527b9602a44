"""The ``emotrack`` command line: thin Click commands, each calling one library function."""

from __future__ import annotations

import os

import click

# TensorFlow's C++ start-up chatter hides the command's own output; users can still set it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .. import __version__
from .compare import compare
from .evaluate import evaluate
from .experiments import experiments
from .export import export
from .inspect import inspect
from .models import models
from .predict import predict
from .pretrain import pretrain
from .preprocess import preprocess
from .specs import specs
from .synth import synth
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emotrack")
def main() -> None:
    """emotrack: continuous emotion recognition (arousal, valence) from face video.

    \b
    emotrack synth --out corpus                                   # a synthetic corpus
    emotrack preprocess --spec generic --root corpus --out tfr    # faces -> TFRecords
    emotrack train huang2018-convlstm --data tfr --out runs/a     # -> run folder
    emotrack evaluate runs/a                                      # CCC report + plot
    emotrack predict runs/a video.mp4 --out va.csv                # a new video
    emotrack models --params                                      # the model zoo
    """


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
