"""Synthetic corpora in the release layouts: emotrack's own spec readers find every session with its
partition and read back the ratings the generator made."""

from __future__ import annotations

import numpy as np
import pytest

from emotrack.corpora.layout import discover
from emotrack.corpora.ratings import read_ratings
from emotrack.corpora.spec import load_spec
from emotrack.synth.corpus import session_ratings
from emotrack.synth.layouts import LAYOUTS, synthesize_layout


@pytest.mark.parametrize("spec", sorted(LAYOUTS))
def test_the_specs_reader_finds_every_session_and_its_ratings(spec, tmp_path):
    made = synthesize_layout(spec, tmp_path, sessions=5, seconds=2.0, seed=3, width=96, height=96)
    found = discover(load_spec(spec), tmp_path)
    assert not found.problems
    sessions = {s.session: s for s in found.sessions + found.unlabelled}
    assert set(sessions) == {s["session"] for s in made["sessions"]}
    rate = load_spec(spec).rating_rate_hz
    for s in made["sessions"]:
        got = sessions[s["session"]]
        assert got.partition == s["partition"]
        if got in found.unlabelled:  # the release ships no test labels
            assert s["partition"] == "test" and spec == "sewa-avec2017"
            continue
        track = read_ratings(load_spec(spec), got.ratings, video_fps=made["fps"])
        times, values = session_ratings(3, s["index"], 2.0, rate, 2.0)
        np.testing.assert_allclose(track.times, times, atol=1e-6)
        # RECOLA's gold standard is the mean of six raters, each the truth plus noise of sd 0.02.
        atol = 0.03 if spec == "recola" else 1e-6
        np.testing.assert_allclose(track.values[:, :2], values[:, :2], atol=atol)


def test_an_unknown_layout_names_those_there_are(tmp_path):
    with pytest.raises(ValueError, match="there are: recola, sewa-avec2017"):
        synthesize_layout("semaine-avec2012x", tmp_path)
