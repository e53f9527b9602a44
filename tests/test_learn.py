"""Every model family learns the synthetic corpus at a CPU size (`make bench-learn`): trained through
the library on real records and evaluated on held-out test subjects, each reaches test CCC (raw)
>= 0.5 on every dimension its input carries (the speech network: arousal), the Huang 2018 networks
>= 0.8. Each family trains for up to 5 minutes on 2 cores: slow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from emotrack.config.experiments.learn import DEFAULT_GOAL, GOALS, LEARN

pytestmark = pytest.mark.slow

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learn.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_learn", _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def work(tmp_path_factory, bench):
    work = tmp_path_factory.mktemp("learn")
    bench.prepare_data(work)
    return work


@pytest.mark.parametrize("family", list(LEARN))
def test_family_learns_on_held_out_subjects(bench, work, family):
    result = bench.learn_family(family, work / "records", work)
    goal = GOALS.get(family, DEFAULT_GOAL)
    for dim in LEARN[family][2]:
        assert result["test"][dim] >= goal, f"{family}: test CCC of {dim} {result['test'][dim]:.3f} < {goal}"
    assert result["reached"]
