"""Evaluation outputs: per-frame predictions, the metrics table, plots, and runs compared side by side."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.config.experiments import EXPERIMENTS
from emotrack.data.pipeline import session_arrays
from emotrack.evaluation.report import evaluate
from emotrack.training.train import train

TINY = ["train.epochs=2", "data.window=8", "data.hop=4", "data.label_delay_s=0.5", "data.batch_size=4",
        "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4",
        # The tiny corpus has one training subject: no validation split; devel and test as before.
        "data.validation.subjects=0", "evaluate.partitions=[devel, test]", "evaluate.postprocessing=tzirakis2017"]


@pytest.fixture(scope="module")
def evaluated_run(tiny_tfr, tmp_path_factory):
    run = train("huang2018-convlstm", tiny_tfr, tmp_path_factory.mktemp("runs") / "a", overrides=TINY, verbose=0)
    return run, evaluate(run)


def _ccc(x, y):
    """Lin's CCC with population moments, written out."""
    return 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_predictions_csv_has_every_frame_and_reproduces_the_session_ccc(evaluated_run, tiny_tfr):
    run, report = evaluated_run
    table = pd.read_csv(run / "predictions.csv")
    for partition in ("devel", "test"):
        for s in session_arrays(tiny_tfr, partition):
            rows = table[(table.partition == partition) & (table.session == s["session"])]
            assert len(rows) == len(s["frames"])
            np.testing.assert_allclose(rows["gold_arousal"], s["ratings"][:, 0], atol=1e-6)
            mask = rows["face_present"].to_numpy().astype(bool)
            for dim in ("arousal", "valence"):
                expected = report["partitions"][partition]["sessions"][s["session"]][dim]
                got = _ccc(rows[f"gold_{dim}"].to_numpy()[mask], rows[f"pred_{dim}"].to_numpy()[mask])
                assert got == pytest.approx(expected, abs=2e-5)


def test_postprocessing_is_a_registered_chain_whose_fit_is_reported(evaluated_run):
    from emotrack.evaluation.postprocess import CHAINS, PostProcessingChain

    run, report = evaluated_run
    fitted = report["post_processing"]
    assert [s["name"] for s in fitted["fitted_steps"]] == list(CHAINS["tzirakis2017"])
    assert PostProcessingChain.load(run).to_dict() == fitted  # postprocessing.json holds what the report says
    with pytest.raises(ValueError, match="evaluate.postprocessing: unknown post-processing chain 'avec'"):
        evaluate(run, postprocessing="avec")
    result = CliRunner().invoke(main, ["evaluate", str(run), "--postprocessing", "avec"])
    assert result.exit_code != 0 and "'tzirakis2017', 'teixeira2021', 'none'" in result.output


def test_metrics_csv_equals_the_report_and_plots_exist(evaluated_run):
    run, report = evaluated_run
    table = pd.read_csv(run / "metrics.csv")
    for partition, entry in report["partitions"].items():
        for kind in ("raw", "post_processed"):
            for dim in ("arousal", "valence"):
                row = table[(table.partition == partition) & (table.kind == kind) & (table.session == "all")
                            & (table.dimension == dim)]
                assert len(row) == 1 and row["CCC"].iloc[0] == pytest.approx(entry[kind][dim]["CCC"], abs=1e-6)
    tests = report["partitions"]["test"]["sessions"]
    assert sorted(report["plots"]["sessions"]) == sorted(str(run / f"plot_{s}.png") for s in tests)
    import matplotlib.image

    for name in ("scatter_test.png", "scatter_devel.png", "training_curves.png"):
        image = matplotlib.image.imread(run / name)
        assert image.shape[0] > 300 and image.shape[1] > 300 and image[..., :3].std() > 0.01


def test_compare_puts_runs_next_to_the_paper(evaluated_run, tmp_path):
    from emotrack.evaluation.compare import compare_runs

    run, report = evaluated_run
    table = compare_runs([run])
    row = table.iloc[0]
    assert row["experiment"] == "huang2018-convlstm"
    assert row["test_raw_arousal"] == pytest.approx(report["partitions"]["test"]["raw"]["arousal"]["CCC"])
    assert row["paper_arousal"] == EXPERIMENTS["huang2018-convlstm"]["paper"]["reported"]["arousal"]
    result = CliRunner().invoke(main, ["compare", str(run), "--csv", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert f"{report['partitions']['devel']['raw']['valence']['CCC']:.3f}" in result.output
    assert "0.441" in result.output  # the paper's arousal CCC (Table 3)
    assert len(pd.read_csv(tmp_path / "t.csv")) == 1


def test_compare_names_an_unevaluated_run(tiny_tfr, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text("experiment: huang2018-convlstm\n")
    result = CliRunner().invoke(main, ["compare", str(run)])
    assert result.exit_code != 0 and "emotrack evaluate" in result.output and "report.json" in result.output


def test_repeats_folder_is_one_row_with_mean_and_std(tmp_path, evaluated_run):
    from emotrack.evaluation.compare import compare_runs

    run, _ = evaluated_run
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "seed-0").symlink_to(run)
    summary = {"experiment": "huang2018-convlstm", "seeds": [0, 1],
               "summary": {"test": {"raw": {"arousal": {"mean": 0.5, "std": 0.1, "n": 2}}}}}
    (folder / "repeats.json").write_text(json.dumps(summary))
    row = compare_runs([folder]).iloc[0]
    assert row["runs"] == 2 and row["test_raw_arousal"] == 0.5 and row["test_raw_arousal_std"] == 0.1


def test_a_run_whose_resize_crop_is_a_side_in_pixels_is_refused_naming_its_config(evaluated_run, tmp_path):
    import shutil

    import yaml

    run, _ = evaluated_run
    old = tmp_path / "old"
    shutil.copytree(run, old)
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["data"]["augment"] = {"resize_crop": 110}  # what the option once meant: a side in pixels
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    before = (old / "report.json").read_bytes()
    result = CliRunner().invoke(main, ["evaluate", str(old)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(old / "config.yaml") in result.output and "data.augment.resize_crop=110" in result.output
    assert "relative to the crop" in result.output and "1.1458" in result.output
    assert (old / "report.json").read_bytes() == before  # the report it had is left as it was


def test_post_processed_devel_is_marked_in_sample_in_every_output(evaluated_run):
    run, report = evaluated_run
    # No validation split: the chain was fitted on devel, so its devel figures are in-sample; test's are not.
    assert report["postprocessing_fitted_on"] == "devel"
    devel, test = report["partitions"]["devel"], report["partitions"]["test"]
    assert devel["post_processed_in_sample"] is True and test["post_processed_in_sample"] is False
    assert devel["post_processed_fitted_on"] == test["post_processed_fitted_on"] == "devel"
    assert json.loads((run / "report.json").read_text())["partitions"]["devel"]["post_processed_in_sample"] is True
    table = pd.read_csv(run / "metrics.csv")
    post = table[table.kind == "post_processed"]
    assert set(post[post.partition == "devel"]["in_sample"]) == {True}
    assert set(post[post.partition == "test"]["in_sample"]) == {False}
    assert set(post["fitted_on"]) == {"devel"} and set(table[table.kind == "raw"]["in_sample"]) == {False}
    result = CliRunner().invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    lines = {tuple(line.split()[:2]): line for line in result.output.splitlines() if "sessions)" in line}
    assert "[in-sample: post-processing fitted on devel]" in lines[("devel", "post_processed")]
    assert "in-sample" not in lines[("test", "post_processed")] + lines[("devel", "raw")]


def test_compare_places_like_beside_like_and_labels_in_sample_figures(evaluated_run, tmp_path):
    run, report = evaluated_run
    result = CliRunner().invoke(main, ["compare", str(run), "--csv", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    columns = header.split()
    # Huang et al. report devel: the devel columns stand last, beside the paper's numbers.
    assert columns.index("test_post_valence") < columns.index("devel_raw_arousal") < columns.index("paper")
    assert row.split()[-1] == "devel"  # the partition the paper's numbers are on
    devel_post = report["partitions"]["devel"]["post_processed"]["arousal"]["CCC"]
    test_post = report["partitions"]["test"]["post_processed"]["arousal"]["CCC"]
    assert f"{devel_post:.3f} (in-sample)" in row and f"{test_post:.3f} (in-sample)" not in row
    assert "(in-sample): post-processed on the partition its chain was fitted on" in result.output
    assert "test beside test" in result.output
    saved = pd.read_csv(tmp_path / "t.csv").iloc[0]
    assert bool(saved["devel_post_in_sample"]) and not bool(saved["test_post_in_sample"])
    assert saved["post_fitted_on"] == "devel" and saved["paper_partition"] == "devel"


@pytest.mark.slow
def test_with_a_validation_split_devel_is_out_of_sample_and_not_marked(tmp_path):
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.synth.corpus import synthesize_corpus

    root, tfr = tmp_path / "corpus", tmp_path / "tfr"
    synthesize_corpus(root, sessions=6, seconds=4.0, fps=10.0, seed=7, progress=False)
    assert preprocess_corpus("generic", root, tfr, progress=False).ok
    overrides = [o for o in TINY if not o.startswith("data.validation")] + ["data.validation.subjects=1"]
    run = train("huang2018-convlstm", tfr, tmp_path / "run", overrides=overrides, verbose=0)
    result = CliRunner().invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "report.json").read_text())
    # The chain was fitted on the training subject held out: devel and test are both out of sample.
    assert report["postprocessing_fitted_on"] == "validation"
    assert not report["partitions"]["devel"]["post_processed_in_sample"]
    assert "in-sample" not in result.output
    assert not pd.read_csv(run / "metrics.csv")["in_sample"].any()
    compared = CliRunner().invoke(main, ["compare", str(run)])
    assert compared.exit_code == 0 and "(in-sample)" not in compared.output


def test_a_repeats_row_labels_its_in_sample_mean_too(tmp_path, evaluated_run):
    from emotrack.evaluation.compare import compare_runs, format_comparison

    run, _ = evaluated_run
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "seed-0").symlink_to(run)  # its report says the chain was fitted on devel
    summary = {"experiment": "huang2018-convlstm", "seeds": [0, 1],
               "summary": {"devel": {"post_processed": {"arousal": {"mean": 0.7, "std": 0.05, "n": 2}}},
                           "test": {"post_processed": {"arousal": {"mean": 0.5, "std": 0.1, "n": 2}}}}}
    (folder / "repeats.json").write_text(json.dumps(summary))
    table = compare_runs([folder])
    assert table.iloc[0]["devel_post_in_sample"] and not table.iloc[0]["test_post_in_sample"]
    text = format_comparison(table)
    assert "0.700 +-0.050 (in-sample)" in text and "0.500 +-0.100 (in-sample)" not in text
