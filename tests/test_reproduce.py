"""emotrack reproduce: the papers' declarations, the validation split, the tables' numbers and the
input checks (the smoke reproduction end to end is in test_reproduce_smoke.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from emotrack.config.experiments import EXPERIMENTS, resolve_config
from emotrack.config.papers import PAPERS, Cell, Input, Paper, Preprocessing, Table, Training
from emotrack.records.split import VALIDATION, held_out_subjects, select_sessions, selection_partition
from emotrack.reproduce.protocol import ReproductionError, check_inputs, plan, training_overrides
from emotrack.reproduce.tables import cell_value, fill_table, summarise, table_markdown

PAPERS_TEXT = Path(__file__).resolve().parents[2] / "shared" / "papers"
PAPER_FILES = {"huang2018": "huang2018_3d_convlstm_avec2017.md", "tzirakis2017": "tzirakis2017_end2end_multimodal_recola.txt",
               "astnet2017": "wang2017_astnet_siamese_avec2012.md", "teixeira2021": "teixeira2021_cnnlstm_i3d_sewa.txt"}


def _manifest(subjects):
    return {"sessions": [{"session": f"{p}_{s}", "subject": s, "partition": p, "file": f"sessions/{p}_{s}.tfrecord"}
                         for p, names in subjects.items() for s in names]}


def test_validation_split_holds_out_the_last_subjects_in_natural_order():
    manifest = _manifest({"train": ["Train_10", "Train_2", "Train_1", "Train_9"], "devel": ["Devel_1"]})
    # Natural order: 1, 2, 9, 10, so the last two are 9 and 10 (a plain string sort would give 2 and 9).
    assert held_out_subjects(manifest, {"subjects": 2, "order": "last"}) == ["Train_9", "Train_10"]
    chosen = select_sessions(manifest, VALIDATION, {"subjects": 2})
    train = select_sessions(manifest, "train", {"subjects": 2})
    assert {s["subject"] for s in chosen} == {"Train_9", "Train_10"}
    assert {s["subject"] for s in train} == {"Train_1", "Train_2"}
    assert select_sessions(manifest, "devel", {"subjects": 2})[0]["subject"] == "Devel_1"
    assert held_out_subjects(manifest, None) == [] and selection_partition(None) == "devel"
    assert selection_partition({"subjects": 2}) == VALIDATION


def test_random_validation_split_is_seeded_and_refuses_to_empty_the_training_set():
    manifest = _manifest({"train": [f"S{i:02d}" for i in range(12)]})
    a = held_out_subjects(manifest, {"subjects": 4, "order": "random", "seed": 1})
    assert a == held_out_subjects(manifest, {"subjects": 4, "order": "random", "seed": 1})
    draws = {tuple(held_out_subjects(manifest, {"subjects": 4, "order": "random", "seed": s})) for s in range(5)}
    assert len(a) == 4 and len(draws) > 1
    with pytest.raises(ValueError, match="all 12 training subjects"):
        held_out_subjects(manifest, {"subjects": 12})
    with pytest.raises(ValueError, match="data.validation.order"):
        held_out_subjects(manifest, {"subjects": 2, "order": "first"})


def _predictions():
    rng = np.random.default_rng(0)
    rows = []
    for name, n in (("S1", 40), ("S2", 25), ("S3", 30)):
        gold = rng.normal(size=n)
        pred = 0.6 * gold + rng.normal(scale=0.8, size=n) + 0.3
        mask = np.ones(n, dtype=int)
        mask[:3] = 0  # frames without a face do not count
        rows.append(pd.DataFrame({"partition": "devel", "session": name, "time": np.arange(n) / 10,
                                  "gold_valence": gold, "pred_valence": pred, "face_present": mask}))
    return pd.concat(rows, ignore_index=True)


def _ccc(x, y):
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_cell_values_use_the_cells_metric_and_aggregation():
    table = _predictions()
    kept = table[table["face_present"] == 1]
    concat = cell_value(table, Cell("r", "c", "t", "valence", None))
    assert concat == pytest.approx(_ccc(kept["pred_valence"].to_numpy(), kept["gold_valence"].to_numpy()), abs=1e-9)
    per_session = [stats.pearsonr(g["gold_valence"], g["pred_valence"])[0] for _, g in kept.groupby("session")]
    for aggregate, expected in (("mean", np.mean(per_session)), ("max", max(per_session)), ("min", min(per_session))):
        got = cell_value(table, Cell("r", "c", "t", "valence", None, metric="PCC", aggregate=aggregate))
        assert got == pytest.approx(expected, abs=1e-9)
    both = table.assign(gold_arousal=-table["gold_valence"], pred_arousal=table["pred_valence"] ** 2)
    average = cell_value(both, Cell("r", "c", "t", "average:arousal,valence", None, metric="PCC", aggregate="mean"))
    arousal = cell_value(both, Cell("r", "c", "t", "arousal", None, metric="PCC", aggregate="mean"))
    assert average == pytest.approx((arousal + np.mean(per_session)) / 2, abs=1e-9)
    with pytest.raises(ValueError, match="no raw arousal"):
        cell_value(table, Cell("r", "c", "t", "arousal", None))
    assert summarise([0.2, 0.4, None]) == {"mean": pytest.approx(0.3), "sd": pytest.approx(0.1), "n": 2}


def test_a_table_lays_out_ours_beside_the_papers_numbers(tmp_path):
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    for run, noise in ((run_a, 0.1), (run_b, 0.5)):
        run.mkdir()
        t = _predictions()
        t["pred_valence"] = t["gold_valence"] + np.random.default_rng(1).normal(scale=noise, size=len(t))
        t.to_csv(run / "predictions.csv", index=False)
    table = Table("table9", "Table 9: a test", ("Ours", "Baseline"), ("Valence",),
                  (Cell("Ours", "Valence", "t", "valence", 0.5),
                   Cell("Baseline", "Valence", None, "valence", 0.4)))
    filled = fill_table(table, {"t": [run_a, run_b]})
    values = [cell_value(pd.read_csv(r / "predictions.csv"), table.cells[0]) for r in (run_a, run_b)]
    ours = filled.iloc[0]
    assert ours["ours_mean"] == pytest.approx(np.mean(values)) and ours["ours_sd"] == pytest.approx(np.std(values))
    assert ours["repeats"] == 2 and ours["paper"] == 0.5 and ours["metric"] == "CCC"
    text = table_markdown(table, filled)
    assert f"{np.mean(values):.3f} +- {np.std(values):.3f} (paper: 0.500)" in text
    assert "(paper: 0.400, quoted)" in text and "| Ours |" in text and "Metric: CCC" in text


def test_a_post_processed_cell_on_the_partition_its_chain_was_fitted_on_is_labelled_in_sample(tmp_path):
    import json

    table = Table("table9", "Table 9: a test", ("Ours",), ("Raw", "Post"),
                  (Cell("Ours", "Raw", "t", "valence", 0.4), Cell("Ours", "Post", "t", "valence", 0.5,
                                                                  kind="post_processed")))
    marked = {}
    for fitted in ("devel", "validation"):  # evaluate's report says which partition the chain was fitted on
        run = tmp_path / fitted
        run.mkdir()
        t = _predictions()
        t["post_valence"] = t["pred_valence"] * 0.5
        t.to_csv(run / "predictions.csv", index=False)
        (run / "report.json").write_text(json.dumps({"post_processing": {"fitted_steps": []},
                                                     "postprocessing_fitted_on": fitted}))
        filled = fill_table(table, {"t": [run]})
        marked[fitted] = list(filled["in_sample"])
        text = table_markdown(table, filled)
        assert ("[in-sample: post-processing fitted on this partition]" in text) == (fitted == "devel")
    # Only the post-processed devel cell of a chain fitted on devel; never a raw cell.
    assert marked == {"devel": [False, True], "validation": [False, False]}


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_every_papers_number_is_in_the_papers_text_and_every_name_resolves(name):
    paper = PAPERS[name]
    paper.check()
    for training in paper.trainings:
        resolve_config(training.experiment, overrides=list(training.overrides) + list(paper.smoke) + list(training.smoke))
    cells = [c for t in paper.tables for c in t.cells]
    assert cells and all(c.paper is not None for c in cells)
    path = PAPERS_TEXT / PAPER_FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    numbers = [float(n) for n in re.findall(r"\d*\.\d+", path.read_text())]
    missing = [f"{c.row}/{c.column}: {c.paper}" for c in cells if not any(abs(c.paper - n) < 1e-9 for n in numbers)]
    assert not missing


def test_huang2018_protocol_follows_section_4_1():
    paper = PAPERS["huang2018"]
    assert all(t.repeats == 5 for t in paper.trainings)
    for t in paper.trainings:
        config = resolve_config(t.experiment)
        assert config["train"]["epochs"] == 100 and config["train"]["optimizer"] == "rmsprop"
        assert config["data"]["validation"] == {"subjects": 8, "order": "last", "seed": 0, "held_out": None}
        assert config["evaluate"]["partitions"] == ["devel"] and config["evaluate"]["postprocessing"] == "none"
        assert config["data"]["label_delay_s"] == 0.0
    pooled = {t.experiment: resolve_config(t.experiment) for t in paper.trainings if "-tp-" in t.experiment}
    assert pooled["huang2018-convlstm-tp-arousal"]["data"]["temporal_pooling_s"] == 0.8
    assert pooled["huang2018-convlstm-tp-valence"]["data"]["temporal_pooling_s"] == 0.6
    assert pooled["huang2018-3dconvnet-max-tp-arousal"]["data"]["temporal_pooling_s"] == 0.4
    assert pooled["huang2018-3dconvnet-max-tp-valence"]["targets"] == ["valence"]
    # Table 2's garbled last row, settled by the text: 0.527 / 0.595.
    assert EXPERIMENTS["huang2018-3dconvnet-max-tp"]["paper"]["reported"] == {"arousal": 0.527, "valence": 0.595}


def _toy_paper():
    return Paper("toy", "a toy", (Input("CORPUS", "dir", "a corpus", "somewhere", check="labels"),
                                  Input("WEIGHTS", "file", "a weights file", "a lab's site")),
                 (Preprocessing("c", "CORPUS", "generic"),),
                 (Training("second", "demo", "c", repeats=2, init_from={"visual": "first"}, weights="WEIGHTS"),
                  Training("first", "demo", "c", repeats=3)),
                 (Table("table1", "t", ("r",), ("c",), (Cell("r", "c", "second", "valence", 0.1),)),))


def test_missing_inputs_are_all_named_with_where_to_get_them(tmp_path):
    paper = _toy_paper()
    with pytest.raises(ReproductionError) as err:
        check_inputs(paper, {"CORPUS": str(tmp_path)})
    text = str(err.value)
    assert "CORPUS=" in text and "holds no labels/" in text
    assert "WEIGHTS is not set" in text and "--weights PATH" in text and "a lab's site" in text
    (tmp_path / "labels").mkdir()
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"x")
    assert check_inputs(paper, {"CORPUS": str(tmp_path), "WEIGHTS": str(weights)})["WEIGHTS"] == weights
    # A weight file may be declined with 'none' (a deviation the README lists); a corpus may not.
    assert check_inputs(paper, {"CORPUS": str(tmp_path), "WEIGHTS": "none"})["WEIGHTS"] is None
    with pytest.raises(ReproductionError, match="CORPUS=none is not a folder"):
        check_inputs(paper, {"CORPUS": "none", "WEIGHTS": "none"})
    assert check_inputs(paper, {}, smoke=True) == {"CORPUS": None, "WEIGHTS": None}


def test_a_training_loads_its_weights_from_the_named_stage_or_declines_them(tmp_path):
    paper = _toy_paper()
    second = paper.training("second")
    with_file = training_overrides(paper, second, tmp_path, 1, False, {"WEIGHTS": tmp_path / "w.h5"})
    assert f"model.options.weights={tmp_path / 'w.h5'}" in with_file
    assert f"model.init_from.visual={tmp_path / 'runs' / 'first' / 'seed-1'}" in with_file
    assert "model.options.weights=none" in training_overrides(paper, second, tmp_path, 0, False, {"WEIGHTS": None})


def test_plan_runs_staged_trainings_after_those_they_start_from():
    steps = [str(s) for s in plan(_toy_paper())]
    assert steps[0] == "preprocess c"
    assert steps[1:] == [f"train first (seed {s})" for s in range(3)] + [f"train second (seed {s})" for s in range(2)]
    assert len(plan(_toy_paper(), smoke=True)) == 3


def test_an_experiment_that_starts_from_pretrained_weights_refuses_random_ones_unless_declined():
    from emotrack.config.experiments import pretrained_weights
    from emotrack.config.schema import ConfigError

    config = resolve_config("astnet2017-full-loss")
    with pytest.raises(ConfigError, match=r"model.options.attribute_weights is not set: pass --set "
                                          r"model.options.attribute_weights=PATH, or .*=none"):
        pretrained_weights(config)
    declined = resolve_config("astnet2017-full-loss", overrides=["model.options.attribute_weights=none"])
    deviations = pretrained_weights(declined)
    assert declined["model"]["options"]["attribute_weights"] is None
    assert deviations == ["model.options.attribute_weights=none: the backbone starts from random weights, not "
                          "the pretrained ones the paper starts from"]
    given = resolve_config("astnet2017-full-loss", overrides=["model.options.attribute_weights=a.weights.h5"])
    assert pretrained_weights(given) == [] and given["model"]["options"]["attribute_weights"] == "a.weights.h5"


def test_teixeira2021_protocol_follows_sections_3_and_4():
    from emotrack.config.experiments.teixeira2021 import BEST_RAFDB_STAGE
    from emotrack.config.schema import ConfigError
    from emotrack.config.experiments import pretrained_weights

    paper = PAPERS["teixeira2021"]
    ran = [t for t in paper.trainings if not t.unavailable]
    for t in ran:
        config = resolve_config(t.experiment, overrides=list(t.overrides))
        data = config["data"]
        # Sec. 4.5: batches of 8; Sec. 3.2: faceless frames dropped; Sec. 4.1: 6 of the training videos validate.
        assert data["batch_size"] == 8 and data["faceless"] == "drop" and data["gap_tolerance_s"] > 0
        assert data["validation"] == {"subjects": 6, "order": "random", "seed": 0, "held_out": None}
        assert config["evaluate"]["partitions"] == ["devel"] and config["train"]["loss"] == "mse"
        assert len(config["targets"]) == 1  # each row reports one dimension
        if "-i3d-" in t.experiment:  # Sec. 4.5: "sequence length of 64 frames, overlapping ratio of 0.8, ... 10 fps"
            assert (data["window"], data["overlap"], data["frame_step"]) == (64, 0.8, 5)
        # No row starts from random weights without a word: the weights are required (the reproduction
        # gives them: below).
        with pytest.raises(ConfigError, match="model.options.weights"):
            pretrained_weights(resolve_config(t.experiment))
    lstm = {t.name: t for t in ran if "-lstm-" in t.name}
    assert len(lstm) == 8 and {t.weights for n, t in lstm.items() if n.endswith("-vggface")} == {"VGGFACE"}
    assert {t.weights for n, t in lstm.items() if not n.endswith("-vggface")} == {BEST_RAFDB_STAGE}
    i3d = {t.name: t.weights for t in ran if "-i3d-" in t.name}
    assert i3d == {"teixeira2021-i3d-vgg16-vggface-valence": "VGGFACE", "teixeira2021-i3d-vgg16-vggface-arousal": "VGGFACE",
                   "teixeira2021-i3d-vgg16-rafdb-valence": BEST_RAFDB_STAGE,
                   "teixeira2021-i3d-vgg16-rafdb-arousal": BEST_RAFDB_STAGE,
                   "teixeira2021-i3d-vgg16-imagenet-valence": "imagenet", "teixeira2021-i3d-vgg16-imagenet-arousal": "imagenet",
                   "teixeira2021-i3d-resnet50-imagenet-valence": "imagenet",
                   "teixeira2021-i3d-resnet50-imagenet-arousal": "imagenet"}
    # Table 4 / 5 configurations: VGG-16 from RAF-DB, arousal: copied, masking, x100.
    options = resolve_config("teixeira2021-i3d-vgg16-rafdb-arousal")["model"]["options"]
    assert (options["inflation"], options["masking"], options["multiplier"], options["dilation"]) == \
        ("copied", True, 100, [1, 1, 1, 1])
    # Table 1: every stage that runs fine-tunes VGG-16 from VGG-Face on RAF-DB at 100x80 with Adam 1e-5, batch 16.
    stages = [p for p in paper.pretraining if not p.unavailable]
    assert [p.options["fine_tune_from"] for p in stages] == ["all", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert all(p.weights == "VGGFACE" and p.options["backbone"] == "vgg16" and p.options["input_shape"] == [100, 80, 3]
               and p.options["learning_rate"] == 1e-5 and p.options["batch_size"] == 16 for p in stages)
    # What emotrack cannot start from is not run, says why, and is not planned.
    planned = {s.name for s in plan(paper)}
    assert all(name not in planned and why for name, why in paper.unavailable().items())
    assert len(paper.unavailable()) == 10 + 14
