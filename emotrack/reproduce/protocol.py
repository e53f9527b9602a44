"""``emotrack reproduce PAPER``: a paper's staged protocol end to end, and its tables.

The stages, in order (each a folder below the reproduction's ``--out``):

1. ``inputs``: every corpus and weight file the paper needs is checked before any work; with
   ``--smoke`` a missing corpus is synthesised in its release layout (``inputs/<VARIABLE>``).
2. ``data/<name>``: each corpus preprocessed with the paper's crop set and rate.
3. ``runs/<training>/seed-<s>``: every row's training, with the paper's repeats, each evaluated.
4. ``tableN.csv``, ``tableN.md`` and ``README.md`` (the deviations from the paper).

Rerunning resumes: a run whose resolved config and data match what the protocol asks is kept when
it has finished (and evaluated again only if its report is missing), resumed from its checkpoint
when it was killed, and trained anew (with a message) when its config or data changed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from emotrack.config.experiments import resolve_config
from emotrack.config.papers import KERAS_WEIGHTS, PAPERS, Paper, Training
from emotrack.config.run import CONFIG_FILE, load_run_config
from emotrack.config.schema import WRITTEN_BY_TRAIN
from emotrack.files import atomic_path
from emotrack.records.manifest import manifest_hash
from emotrack.reproduce.cost import format_duration
from emotrack.reproduce.tables import write_tables

#: Sessions per partition of a synthetic corpus made for ``--smoke``, and their length.
SMOKE_CORPUS = {"sessions": 6, "seconds": 8.0, "seed": 0}
#: Video frame rates of smoke corpora where the release's own is higher than the protocol needs
#: (SEWA: 20-50 fps in the release, Huang 2018 keeps 10 fps; SEMAINE: 49.979 fps, AST-Net smoke clips need few).
SMOKE_FPS = {"sewa-avec2017": 20.0, "semaine-avec2012": 10.0}
README = "README.md"
#: Images per class of a synthetic image set made for ``--smoke``.
SMOKE_IMAGES = 6


class ReproductionError(ValueError):
    """A reproduction that cannot start: a missing input, an unknown paper."""


@dataclasses.dataclass
class Step:
    """One unit of work of the plan: preprocess a corpus, pre-train a backbone, or train and
    evaluate one repeat."""
    kind: str  # "preprocess", "pretrain" or "train"
    name: str
    seed: int | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f" (seed {self.seed})" if self.seed is not None else "")


def get_paper(name: str) -> Paper:
    if name not in PAPERS:
        raise ReproductionError(f"unknown paper {name!r}; known: {', '.join(sorted(PAPERS))}")
    return PAPERS[name]


def weight_inputs(paper: Paper) -> set[str]:
    """The inputs that are weight files a backbone starts from (as opposed to data)."""
    return ({t.weights for t in paper.trainings} | {p.weights for p in paper.pretraining}) & \
        {i.variable for i in paper.inputs}


def check_inputs(paper: Paper, given: dict[str, str | None], smoke: bool = False) -> dict[str, Path | None]:
    """Every input of ``paper`` resolved to a path, all problems reported at once.

    ``given`` maps an input's variable (``SEWA``) to a path, or to None where it was not given. A
    weight file may be given as ``none``: the backbone then starts from random weights, which the
    reproduction records as a deviation. With ``smoke`` a missing corpus or image set is allowed (it
    is synthesised) and a missing weight file means ``none``. Raises :class:`ReproductionError`
    naming each missing or wrong input, what it must point to and where to obtain it.
    """
    problems, resolved = [], {}
    weights = weight_inputs(paper)
    for item in paper.inputs:
        value = given.get(item.variable)
        if item.variable in weights and (value or "").lower() == "none":
            resolved[item.variable] = None
            continue
        if not value:
            if smoke:
                resolved[item.variable] = None
                continue
            problems.append(f"{item.variable} is not set (make ... {item.variable}=PATH, or "
                            f"emotrack reproduce {paper.name} {item.option} PATH): it must point to {item.what}; "
                            f"obtain it from {item.obtain}")
            continue
        path = Path(value).expanduser()
        if item.kind == "dir" and not path.is_dir():
            problems.append(f"{item.variable}={value} is not a folder; it must point to {item.what}")
        elif item.kind == "dir" and item.check and not (path / item.check).exists():
            problems.append(f"{item.variable}={value} holds no {item.check}/; it must point to {item.what}")
        elif item.kind == "file" and not path.is_file():
            problems.append(f"{item.variable}={value} is not a file; it must point to {item.what}")
        else:
            resolved[item.variable] = path
    if problems:
        raise ReproductionError(f"{paper.name}: cannot start:\n  - " + "\n  - ".join(problems))
    return resolved


def plan(paper: Paper, smoke: bool = False) -> list[Step]:
    """The steps of the protocol, in order: preprocessing, pre-training, then every repeat of every
    training (staged trainings after those they start from)."""
    steps = [Step("preprocess", p.name) for p in paper.preprocessing]
    steps += [Step("pretrain", p.name) for p in paper.pretraining if not p.unavailable]
    done: set[str] = set()
    pending = [t for t in paper.trainings if not t.unavailable]
    while pending:  # a training waits for those it is initialised from
        ready = [t for t in pending if set(t.init_from.values()) <= done]
        if not ready:
            raise ReproductionError(f"{paper.name}: the staged trainings {[t.name for t in pending]} wait on each other")
        for t in ready:
            steps.extend(Step("train", t.name, s) for s in range(1 if smoke else t.repeats))
            done.add(t.name)
            pending.remove(t)
    return steps


def training_overrides(paper: Paper, training: Training, out_dir: Path, seed: int, smoke: bool,
                       weights: dict[str, Path | None] | None = None) -> list[str]:
    """The ``--set`` overrides of one repeat: the row's own, its backbone's weights (a pre-training
    stage's file, a weight file given as input, or ``none``), the staged initialisations (the same
    seed's run of the earlier training), and the smoke sizes.

    Args:
        weights: pre-training stage or input name -> its weight file (None: ``none`` was given).
    """
    overrides = list(training.overrides)
    option = f"model.options.{training.weights_option}"
    if training.weights in KERAS_WEIGHTS:  # downloaded by Keras; a smoke run stays offline
        overrides.append(f"{option}={'none' if smoke else training.weights}")
    elif training.weights is not None:
        path = (weights or {}).get(training.weights)
        overrides.append(f"{option}={path if path is not None else 'none'}")
    for role, other in training.init_from.items():
        overrides.append(f"model.init_from.{role}={run_folder(out_dir, other, seed)}")
    if smoke:
        overrides.extend(paper.smoke)
        overrides.extend(training.smoke)
    return overrides


def run_folder(out_dir: Path, training: str, seed: int) -> Path:
    return out_dir / "runs" / training / f"seed-{seed}"


def _matches(stored: Any, wanted: Any, path: str = "") -> str | None:
    """Where ``stored`` (a run folder's config) differs from ``wanted`` (the resolved config), or
    None. Keys that training adds (data facts, model options adapted to the data) are not compared."""
    if isinstance(wanted, dict):
        if not isinstance(stored, dict):
            return path or "config"
        for key, value in wanted.items():
            if f"{path}{key}" in WRITTEN_BY_TRAIN:
                continue
            where = _matches(stored.get(key), value, f"{path}{key}.")
            if where:
                return where
        return None
    return None if stored == wanted else path.rstrip(".")


def run_state(run: Path, wanted: dict[str, Any], data_dir: Path) -> str:
    """``new`` (nothing there), ``done`` (finished, same config and data), ``killed`` (same config and
    data, not finished: resume) or ``changed: <key>`` (train anew)."""
    if not (run / CONFIG_FILE).is_file():
        return "new"
    stored = load_run_config(run)
    if stored.get("data", {}).get("manifest_sha256") != manifest_hash(data_dir):
        return "changed: the data"
    where = _matches(stored, wanted)
    if where:
        return f"changed: {where}"
    return "done" if (run / "last.keras").is_file() else "killed"


def estimate_preprocessing(paper: Paper, roots: dict[str, Path], frames_per_second: float = 200.0) -> float:
    """Seconds to preprocess the paper's corpora here: their video duration at the frame rate the
    face pipeline reaches on 2 cores (`make bench-preprocess`: about 200 frames/s at 640x360)."""
    import av

    from emotrack.corpora.layout import discover
    from emotrack.corpora.spec import load_spec

    total = 0.0
    for p in paper.preprocessing:
        spec = load_spec(p.spec)
        rate = p.options.get("fps")
        found = discover(spec, roots[p.input])
        for session in found.sessions + found.unlabelled:
            if session.video is None or not session.video.is_file():
                continue  # frame folders (AFEW-VA): counted by preprocessing itself
            try:
                with av.open(str(session.video)) as container:
                    stream = container.streams.video[0]
                    seconds = float(container.duration or 0) / 1e6
                    fps = float(rate or stream.average_rate or 25)
            except Exception:  # an unreadable video is reported by preprocessing itself
                continue
            total += seconds * fps / frames_per_second
    return total


def estimate_training(paper: Paper, steps: list[Step], data_dirs: dict[str, Path], out_dir: Path, smoke: bool,
                      weights: dict[str, Path | None] | None = None) -> dict[str, Any]:
    """Seconds of training the plan's trainings that are not done take here, from one measured step of each (random
    weights, the data's input size) times the steps of all its epochs and repeats; and on one GPU,
    from the GPU step times kept with emotrack where the experiment has one at this size.

    Returns:
        ``{"here": seconds, "gpu": seconds or None, "gpu_device", "missing_gpu": [experiments]}``.
    """
    from emotrack.data.clips import run_clip_hop
    from emotrack.data.pipeline import count_windows
    from emotrack.models.registry import model_info
    from emotrack.records.manifest import read_manifest
    from emotrack.records.split import held_out_subjects
    from emotrack.reproduce.cost import gpu_steps, measure_step
    from emotrack.training.train import data_facts

    gpu = gpu_steps()
    measured: dict[str, float] = {}
    here, on_gpu, missing = 0.0, 0.0, []
    for step in steps:
        if step.kind != "train":
            continue
        training = paper.training(step.name)
        config = resolve_config(training.experiment,
                                overrides=training_overrides(paper, training, out_dir, step.seed, smoke, weights))
        config["train"]["seed"] = step.seed
        data_dir, data = data_dirs[training.data], config["data"]
        if run_state(run_folder(out_dir, training.name, step.seed), config, data_dir) == "done":
            continue  # kept: costs nothing
        manifest = read_manifest(data_dir)
        held_out_subjects(manifest, data.get("validation"))  # a split that cannot be made stops here
        info = model_info(config["model"]["name"])
        clips = count_windows(data_dir, "train", data["window"], run_clip_hop(data), int(data["frame_step"]),
                              info.target, validation=data.get("validation"), faceless=data["faceless"],
                              gap_tolerance_s=data["gap_tolerance_s"])
        batches = -(-clips // int(data["batch_size"])) * int(config["train"]["epochs"])
        # Rows that train the same network on clips of the same shape share one measurement.
        key = json.dumps([config["model"]["name"], config["model"]["options"], config["targets"], data["window"],
                          data["batch_size"], data["temporal_pooling_s"], config["train"]["loss"]],
                         sort_keys=True, default=str)
        if key not in measured:
            facts = data_facts(manifest, config["targets"], data["window"], data["crops"])
            facts["fps"] = float(manifest["sessions"][0]["fps"]) if manifest["sessions"] else 10.0
            config["model"]["init_from"] = None  # the step of the network it builds, from scratch
            measured[key] = measure_step(config, facts, steps=2)["seconds_per_step"]
        here += batches * measured[key]
        gpu_step = gpu["steps"].get(training.experiment, {}).get("seconds_per_step")
        if gpu_step is None or smoke:
            missing.append(training.experiment)
        else:
            on_gpu += batches * gpu_step
    return {"here": here, "gpu": None if missing else on_gpu, "gpu_device": gpu.get("device"),
            "missing_gpu": sorted(set(missing))}


def log_estimate(paper: Paper, steps: list[Step], data_dirs: dict[str, Path], out_dir: Path, smoke: bool,
                 weights: dict[str, Path | None] | None, log) -> None:
    estimate = estimate_training(paper, steps, data_dirs, out_dir, smoke, weights)
    line = f"estimated training time here: {format_duration(estimate['here'])} (measured steps)"
    if estimate["gpu"] is not None:
        line += f"; on one {estimate['gpu_device']}: {format_duration(estimate['gpu'])} (steps measured there)"
    elif smoke:
        line += "; on a GPU: not estimated for the tiny smoke models"
    else:
        line += (f"; on a GPU: no step measured there for {', '.join(estimate['missing_gpu'])} "
                 f"(benchmarks/bench_steps.py measures them)")
    log(line)


def _preprocess(paper: Paper, name: str, roots: dict[str, Path], out_dir: Path, log, smoke: bool = False) -> Path:
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.preprocess.options import PreprocessOptions

    p = next(p for p in paper.preprocessing if p.name == name)
    target = out_dir / "data" / name
    options = {**p.options, **(paper.smoke_preprocessing if smoke else {})}
    report = preprocess_corpus(p.spec, roots[p.input], target, options=PreprocessOptions(**options),
                               progress=False, log=log)
    if not report.ok:
        raise ReproductionError(f"preprocessing {name} ({roots[p.input]}) failed for "
                                f"{len(report.failed)} session(s): {report.failed}; see {target}/manifest.json")
    return target


def _synthesise(paper: Paper, variable: str, out_dir: Path, log) -> Path:
    from emotrack.synth.layouts import synthesize_layout

    spec = next(p.spec for p in paper.preprocessing if p.input == variable)
    root = out_dir / "inputs" / variable
    if not root.is_dir():
        log(f"--smoke: writing a synthetic {spec} corpus to {root}")
        synthesize_layout(spec, root, fps=SMOKE_FPS.get(spec), **SMOKE_CORPUS)
    return root


def _synthesise_images(layout: str, variable: str, out_dir: Path, log) -> Path:
    """A small labelled face-image set in ``layout``'s release layout, for ``--smoke``: the folder
    (RAF-DB) or the CSV file (FER2013) that the input names."""
    from emotrack.synth.images import synthesize_images

    root = out_dir / "inputs" / variable
    if not root.is_dir():
        log(f"--smoke: writing a synthetic {layout} image set to {root}")
        synthesize_images(layout, root, count=SMOKE_IMAGES, seed=0)
    return root / "fer2013.csv" if layout == "fer2013" else root / "basic"


def _pretrain(paper: Paper, name: str, roots: dict[str, Path | None], out_dir: Path, smoke: bool, log) -> Path:
    """Run one pre-training stage (kept when it finished with the same options) and return the
    backbone weights file it writes."""
    import yaml

    from emotrack.training.pretrain import pretrain_2d, pretrain_attribute_cnn

    stage = next(p for p in paper.pretraining if p.name == name)
    target = out_dir / "pretrain" / name
    options = {**stage.options, **(paper.smoke_pretraining if smoke else {})}
    start = stage.weights if stage.weights in KERAS_WEIGHTS or stage.weights is None else roots.get(stage.weights)
    if smoke and start in KERAS_WEIGHTS:  # a smoke run stays offline
        start = None
    wanted = {"images": str(roots[stage.images]), "layout": stage.layout, "weights": None if start is None else str(start),
              **options}
    stamp = target / "reproduce.yaml"
    weights_file = target / "backbone.weights.h5"
    if stamp.is_file() and weights_file.is_file() and yaml.safe_load(stamp.read_text()) == wanted:
        log(f"pretrain {name}: kept (finished, same options)")
        return weights_file
    if stage.layout == "fer2013":
        report = pretrain_attribute_cnn(roots[stage.images], target, weights=start, overwrite=True, verbose=0,
                                        **options)
    else:
        report = pretrain_2d(roots[stage.images], target, weights=start, overwrite=True, verbose=0, **options)
    with atomic_path(stamp) as tmp:
        tmp.write_text(yaml.safe_dump(wanted, sort_keys=True))
    return Path(report["backbone_weights"])


def reproduce(paper_name: str, out_dir: str | Path, inputs: dict[str, str | None] | None = None,
              smoke: bool = False, dry_run: bool = False, log: Callable[[str], None] = print,
              progress: bool = True, verbose: int = 0) -> dict[str, Any]:
    """Run ``paper_name``'s protocol into ``out_dir`` (see the module docstring).

    Returns:
        ``{"paper", "out", "steps", "tables": {name: DataFrame}}``; with ``dry_run`` only the plan.
    """
    from tqdm import tqdm

    from emotrack.apps.submission import write_submissions
    from emotrack.evaluation.report import REPORT, evaluate
    from emotrack.training.train import train

    paper = get_paper(paper_name)
    out_dir = Path(out_dir)
    steps = plan(paper, smoke)
    trainings = [s for s in steps if s.kind == "train"]
    log(f"{paper.title}\n{len(paper.preprocessing)} corpus preprocessing stage(s), {len(trainings)} training(s) "
        f"({len(paper.trainings)} table rows x repeats), {len(paper.tables)} table(s)" + (" [smoke]" if smoke else ""))
    if dry_run:
        for step in steps:
            log(f"  {step}")
        try:
            check_inputs(paper, inputs or {}, smoke)
        except ReproductionError as err:
            log(str(err))
        return {"paper": paper.name, "out": str(out_dir), "steps": [str(s) for s in steps], "tables": {}}
    roots = check_inputs(paper, inputs or {}, smoke)
    out_dir.mkdir(parents=True, exist_ok=True)
    deviations = []
    image_sets = {p.images: p.layout for p in paper.pretraining}
    for variable, root in list(roots.items()):
        if root is not None:
            continue
        if variable in image_sets:
            roots[variable] = _synthesise_images(image_sets[variable], variable, out_dir, log)
        elif variable in weight_inputs(paper):
            deviations.append(f"{variable} was not given (or given as 'none'): the backbones that start from it "
                              f"start from random weights instead.")
        else:
            roots[variable] = _synthesise(paper, variable, out_dir, log)
    log(f"estimated preprocessing time here: {format_duration(estimate_preprocessing(paper, roots))}")
    data_dirs: dict[str, Path] = {}
    weights: dict[str, Path | None] = {v: roots[v] for v in weight_inputs(paper)}
    runs: dict[str, list[Path]] = {}
    stages: dict[str, Path] = {}
    for name, why in paper.unavailable().items():
        log(f"{name}: not run: {why}")
    started = time.perf_counter()
    bar = tqdm(total=len(steps), desc=paper.name, unit="step", disable=not progress)
    for step in steps:
        bar.set_postfix_str(str(step))
        if step.kind == "preprocess":
            data_dirs[step.name] = _preprocess(paper, step.name, roots, out_dir, log, smoke)
            if len(data_dirs) == len(paper.preprocessing):  # all data there: what will training cost?
                log_estimate(paper, steps, data_dirs, out_dir, smoke, weights, log)
        elif step.kind == "pretrain":
            weights[step.name] = _pretrain(paper, step.name, roots, out_dir, smoke, log)
            stages[step.name] = weights[step.name].parent
        else:
            training = paper.training(step.name)
            data_dir = data_dirs[training.data]
            overrides = training_overrides(paper, training, out_dir, step.seed, smoke, weights)
            wanted = resolve_config(training.experiment, overrides=overrides)
            wanted["train"]["seed"] = step.seed
            run = run_folder(out_dir, training.name, step.seed)
            state = run_state(run, wanted, data_dir)
            if state == "done":
                log(f"{step}: kept (finished, same config and data)")
            elif state == "killed":
                log(f"{step}: resuming from its checkpoint")
                train(training.experiment, data_dir, run, resume=True, verbose=verbose)
            else:
                if state != "new":
                    log(f"{step}: {state}; training anew")
                train(training.experiment, data_dir, run, overrides=overrides, seed=step.seed,
                      overwrite=state != "new", verbose=verbose)
            if state != "done" or not (run / REPORT).is_file():
                write_submissions(run, evaluate(run), log)
            runs.setdefault(training.name, []).append(run)
        _release_models()
        bar.update(1)
    bar.close()
    tables = write_tables(paper, runs, out_dir, stages)
    write_readme(paper, out_dir, tables, roots, smoke, time.perf_counter() - started, deviations)
    log(f"tables written to {out_dir}: " + ", ".join(f"{t}.md" for t in tables))
    return {"paper": paper.name, "out": str(out_dir), "steps": [str(s) for s in steps], "tables": tables}


def _release_models() -> None:
    """Free the models and graphs of the step just done, so that a protocol of many trainings in one
    process holds one at a time (each training seeds itself, so this changes no number)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def write_readme(paper: Paper, out_dir: Path, tables: dict, roots: dict[str, Path | None], smoke: bool,
                 seconds: float, deviations: list[str] = ()) -> Path:
    """The reproduction's ``README.md``: what was run, on what, every deviation from the paper, and
    the tables."""
    from emotrack.reproduce.tables import table_markdown

    lines = [f"# Reproduction: {paper.title}", "",
             f"Command: `emotrack reproduce {paper.name} --out {out_dir}"
             + "".join(f" {i.option} {roots.get(i.variable)}" for i in paper.inputs if roots.get(i.variable))
             + (" --smoke`" if smoke else "`"), f"Wall time of this run: {seconds / 60:.1f} min.", "",
             "## Inputs", ""]
    lines += [f"- {i.variable}: {roots.get(i.variable)} ({i.what})" for i in paper.inputs]
    lines += ["", "## Deviations from the paper, and what was assumed where it is silent", ""]
    if smoke:
        lines.append(f"- SMOKE RUN: synthetic corpora in the release layouts, one repeat, tiny models "
                     f"({' '.join(paper.smoke)}); the numbers only show that the protocol runs.")
    lines += [f"- {d}" for d in (*deviations, *paper.deviations)]
    if paper.unavailable():
        lines += ["", "## Rows not run", "", "The paper's numbers of these rows stand alone in the tables:", ""]
        lines += [f"- {name}: {why}" for name, why in paper.unavailable().items()]
    lines += ["", "## Tables", ""]
    for table in paper.tables:
        lines += [table_markdown(table, tables[table.name]), ""]
    path = out_dir / README
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path
