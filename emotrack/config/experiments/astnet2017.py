"""Wang & Hsu 2017 (BMVC, AST-Net): the loss ablations of Table 1 on SEMAINE (AVEC 2012)."""

from __future__ import annotations

from typing import Any

from emotrack.config.experiments.base import EXPERIMENTS, experiment

# Wang & Hsu 2017 (AST-Net), Table 1: loss ablations (AVEC 2012 valence devel, mean Pearson CC
# over videos). Clips of N = 50 frames every 10 frames, Siamese pairs shifted by one frame. The
# optimiser, learning rate, batch size and epochs are not given: Adam 1e-4, 8 pairs, 20 epochs.
ASTNET2017_TABLE_1 = {"La": 0.4241, "T": 0.3965, "La+T": 0.4757, "La+S": 0.4282, "La+T+S": 0.4593,
                      "La+T+G": 0.4886, "La+T+Lo": 0.4968, "La+Lo+G": 0.3843, "La+T+Lo+G": 0.5047,
                      "La+T+Lo+G+S": 0.5874}
for _terms, _cc in ASTNET2017_TABLE_1.items():
    _name = "astnet2017-full-loss" if _terms == "La+T+Lo+G+S" else f"astnet2017-{_terms.lower().replace('+', '-')}"
    _siamese = "S" in _terms.split("+")
    EXPERIMENTS[_name] = experiment(
        f"AST-Net (VGG-16 fc6 + stacked LSTM 50/40) trained with the {_terms} loss",
        "Wang & Hsu 2017, Table 1 (AVEC 2012 valence devel, mean Pearson CC, not CCC)", {"valence": _cc},
        "astnet2017-siamese" if _siamese else "astnet2017", {},
        {"window": 50, "frame_step": 10, "hop": 50, "batch_size": 8},
        {"optimizer": "adam", "learning_rate": 1e-4, "epochs": 20, "loss": "astnet", "loss_terms": _terms},
        postprocessing="none")

