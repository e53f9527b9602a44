"""Experiment configs: a named, resolved, written-down description of one training run.

A config is a nested dict with the sections of :mod:`emotrack.config.schema`: ``model`` (registry
name and builder options), ``data`` (clip length, hop, batch size, annotator delay), ``train``
(optimiser, learning rate, epochs, loss, seed) and ``evaluate``. Named experiments give the
defaults, one module per paper (its tables' rows, and the paper's own numbers); a YAML file and
``section.key=value`` overrides change them; the resolved config is written to the run folder.
"""

from emotrack.config.experiments.base import (EXPERIMENTS, NO_WEIGHTS, declined_weights, experiment, list_experiments,
                                              parse_override, pretrained_weights, resolve_config)
# Each paper's module registers its experiments (and its reproduction protocol) on import.
from emotrack.config.experiments import astnet2017, huang2018, teixeira2021, tzirakis2017  # noqa: F401,E402
# The CPU-size runs of every family (`make bench-learn`), built from the papers' experiments above.
from emotrack.config.experiments import learn  # noqa: F401,E402

__all__ = ["EXPERIMENTS", "NO_WEIGHTS", "declined_weights", "experiment", "list_experiments", "parse_override", "pretrained_weights", "resolve_config"]
