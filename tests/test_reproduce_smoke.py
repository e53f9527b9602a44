"""`emotrack reproduce huang2018 --smoke` end to end: a synthetic SEWA in its AVEC 2017 layout, real
MTCNN preprocessing, every row of Tables 2-4 trained (tiny, one epoch) and evaluated, the tables and
the README; then a rerun that keeps finished runs, resumes a killed one and retrains a changed one."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from emotrack.cli import main
from emotrack.config.papers import PAPERS


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproductions") / "huang2018"
    result = CliRunner().invoke(main, ["reproduce", "huang2018", "--smoke", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_table_is_laid_out_as_the_papers_with_ours_beside_theirs(reproduction):
    out, output = reproduction
    paper = PAPERS["huang2018"]
    assert "12 training(s)" in output and "estimated training time here" in output
    for table in paper.tables:
        frame = pd.read_csv(out / f"{table.name}.csv")
        assert list(zip(frame["row"], frame["column"])) == [(c.row, c.column) for c in table.cells]
        assert list(frame["paper"]) == [c.paper for c in table.cells]
        assert set(frame["metric"]) == {"CCC"} and set(frame["partition"]) == {"devel"}
        ran = frame[frame["training"] != "(quoted from the paper)"]
        assert len(ran) and all(math.isfinite(v) for v in ran["ours_mean"]) and set(ran["repeats"]) == {1}
        text = (out / f"{table.name}.md").read_text()
        assert table.caption in text and all(f"| {row} |" in text for row in table.rows)
    readme = (out / "README.md").read_text()
    assert "SMOKE RUN" in readme and all(d in readme for d in paper.deviations)


def test_runs_follow_the_protocol_validation_split_and_per_dimension_pooling(reproduction):
    out, _ = reproduction
    config = yaml.safe_load((out / "runs" / "huang2018-convlstm-tp-arousal" / "seed-0" / "config.yaml").read_text())
    assert config["targets"] == ["arousal"] and config["data"]["temporal_pooling_s"] == 0.8
    # The last training subject in natural order is held out for model choice (smoke: one subject).
    assert config["data"]["validation"]["held_out"] == ["Train_04"]
    report = yaml.safe_load((out / "runs" / "huang2018-convlstm-tp-arousal" / "seed-0" / "report.json").read_text())
    assert list(report["partitions"]) == ["devel"] and report["postprocessing"] == "none"


def test_a_rerun_keeps_finished_runs_resumes_a_killed_one_and_retrains_a_changed_one(reproduction):
    out, _ = reproduction
    killed = out / "runs" / "huang2018-convlstm" / "seed-0"
    (killed / "last.keras").unlink()  # killed after its last checkpoint, before the end
    changed = out / "runs" / "huang2018-3dconvnet" / "seed-0"
    config = yaml.safe_load((changed / "config.yaml").read_text())
    config["train"]["learning_rate"] = 0.5
    (changed / "config.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["reproduce", "huang2018", "--smoke", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "train huang2018-convlstm (seed 0): resuming from its checkpoint" in result.output
    assert "train huang2018-3dconvnet (seed 0): changed: train.learning_rate; training anew" in result.output
    assert result.output.count("kept (finished, same config and data)") == 10
    assert (killed / "last.keras").is_file()
    assert yaml.safe_load((changed / "config.yaml").read_text())["train"]["learning_rate"] == 0.001


def test_missing_corpus_stops_before_any_work(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "huang2018", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "SEWA is not set" in result.output and "--sewa PATH" in result.output and "db.sewaproject.eu" in result.output
    assert not (tmp_path / "r").exists()


def test_evaluate_writes_the_unlabelled_test_partition_as_an_avec_2017_submission(reproduction):
    import json

    out, _ = reproduction
    run = out / "runs" / "huang2018-3dconvnet-max" / "seed-0"
    result = CliRunner().invoke(main, ["evaluate", str(run), "--partition", "devel", "--partition", "test"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "report.json").read_text())
    manifest = json.loads((out / "data" / "sewa" / "manifest.json").read_text())
    tests = sorted(u["session"] for u in manifest["unlabelled"] if u["partition"] == "test")
    assert tests and list(report["partitions"]) == ["devel"] and report["unlabelled_partitions"] == ["test"]
    submission = report["submissions"]["test"]
    assert sorted(submission["sessions"]) == tests and submission["not_predicted"] == ["liking"]
    for session in tests:
        table = pd.read_csv(run / "submission" / "test" / "labels" / f"{session}.csv", sep=";", header=None,
                            names=["name", "time", "arousal", "valence", "liking"])
        assert set(table["name"]) == {f"'{session}'"} and table["liking"].isna().all()
        assert table[["arousal", "valence"]].notna().all().all()
        # A row every 0.1 s over the video (8 s synthetic sessions).
        assert abs(table["time"].diff().dropna() - 0.1).max() < 1e-6 and 7.0 <= table["time"].iloc[-1] <= 8.0
