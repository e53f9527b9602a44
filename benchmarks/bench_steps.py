"""Seconds per training step of every table row of the papers' reproductions, at the paper's size.

For each training of `emotrack reproduce PAPER` the model is built from its experiment's resolved
config with the paper's input size (the crop set of its registry entry, 16 kHz audio at the paper's
frame rate), fed random clips of the experiment's batch shape, and trained for a few steps with its
loss; the median step after warm-up is printed and written as JSON. It uses only Keras and runs on
any Keras 3 backend: on TensorFlow here, and with ``KERAS_BACKEND=jax`` on a GPU machine, whose
figures ``emotrack reproduce`` keeps in ``emotrack/reproduce/gpu_steps.json`` for its time estimate.

    python benchmarks/bench_steps.py [--papers huang2018,...] [--steps 5] [--out steps.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys


def measure(experiment: str, overrides: list[str], steps: int) -> dict:
    """One experiment at the paper's input size: its registry's crop set, 640 audio samples per frame."""
    from emotrack.config.experiments import resolve_config
    from emotrack.faces.crop import CROP_SPECS
    from emotrack.models.registry import model_info
    from emotrack.reproduce.cost import measure_step

    config = resolve_config(experiment, overrides=overrides)
    crop = CROP_SPECS[model_info(config["model"]["name"]).crops or "huang2018"]
    facts = {"height": crop.height, "width": crop.width, "channels": 1 if crop.gray else 3, "audio_samples": 640,
             "targets": config.get("targets", ["arousal", "valence"]), "window": config["data"]["window"], "fps": 10.0}
    return measure_step(config, facts, steps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", default="", help="comma-separated papers (default: all)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--match", default="", help="only experiments whose name contains this")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)

    import keras

    from emotrack.config.experiments import EXPERIMENTS  # noqa: F401  (registers the papers)
    from emotrack.config.papers import PAPERS

    wanted = [p for p in args.papers.split(",") if p] or sorted(PAPERS)
    device = os.environ.get("EMOTRACK_DEVICE_NAME") or platform.processor() or platform.machine()
    results = {"backend": keras.backend.backend(), "device": device, "keras": keras.__version__, "steps": {}}
    print(f"backend {results['backend']} on {device}")
    for name in wanted:
        paper = PAPERS[name]
        for training in paper.trainings:
            if training.experiment in results["steps"] or args.match not in training.experiment:
                continue
            try:
                r = measure(training.experiment, list(training.overrides), args.steps)
            except Exception as err:  # a model that cannot be measured is named, the others go on
                print(f"{training.experiment:45s} failed: {type(err).__name__}: {err}", file=sys.stderr)
                continue
            results["steps"][training.experiment] = r
            if args.out:  # after every experiment, so that a run stopped early keeps what it measured
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=2)
            print(f"{training.experiment:45s} {r['seconds_per_step'] * 1000:9.1f} ms/step  batch {r['batch_size']:3d} "
                  f"x {r['window']:3d} frames  {r['parameters']:>11,d} parameters", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
