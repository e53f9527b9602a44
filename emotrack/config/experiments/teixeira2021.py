"""Teixeira et al. 2021: the VGG-16-LSTM and i3D rows on SEWA."""

from __future__ import annotations

from typing import Any

from emotrack.config.experiments.base import EXPERIMENTS, experiment

# Teixeira et al. 2021, Table 2 (SEWA devel CCC): VGG-16-LSTM by frame rate (SEWA video is 50 fps;
# 10 fps takes every 5th frame), sequence length, overlap ratio and label fusion, for the dimension
# each row reports. MSE loss (Sec. 4.4); Adam with 1e-5 and batches of 16 as in Sec. 4.3 (the LSTM
# stage's own values are not given), 20 epochs assumed. Rows initialised from VGG-Face carry a
# -vggface suffix; the others start from the RAF-DB fine-tuned backbone (a weights file: set
# model.options.weights).
TEIXEIRA2021_TABLE_2 = [
    ("vggface", 10, 16, 0.2, "extremum", "valence", 0.560), ("vggface", 10, 16, 0.2, "mean", "arousal", 0.542),
    ("vggface", 50, 64, 0.2, "mean", "valence", 0.511), ("vggface", 50, 64, 0.2, "extremum", "arousal", 0.492),
    ("rafdb", 10, 64, 0.8, "mean", "valence", 0.625), ("rafdb", 10, 64, 0.8, "extremum", "arousal", 0.557),
    ("rafdb", 50, 64, 0.2, "mean", "valence", 0.568), ("rafdb", 50, 64, 0.2, "extremum", "arousal", 0.517),
]
for _init, _fps, _length, _overlap, _fusion, _dim, _ccc in TEIXEIRA2021_TABLE_2:
    _name = f"teixeira2021-vgg16-lstm-{_length}-{_overlap}-{_fusion}-{_fps}fps" + ("-vggface" if _init == "vggface" else "")
    EXPERIMENTS[_name] = experiment(
        f"Teixeira 2021 VGG-16-LSTM, {_length} frames at {_fps} fps, overlap {_overlap}, {_fusion} label fusion, "
        f"{'VGG-Face' if _init == 'vggface' else 'RAF-DB'} initialisation",
        "Teixeira et al. 2021, Table 2 (SEWA devel, CCC)", {_dim: _ccc}, "teixeira2021-vgg16-lstm", {},
        {"window": _length, "overlap": _overlap, "frame_step": 50 // _fps, "label_fusion": _fusion,
         "batch_size": 16},
        {"optimizer": "adam", "learning_rate": 1e-5, "epochs": 20, "loss": "mse"}, postprocessing="teixeira2021")

# Teixeira et al. 2021, Table 3's two i3D configurations for every backbone (SEWA devel; Tables 4-6
# report the best configuration per backbone, CCC 0.31 to 0.41 at best, not per row here).
TEIXEIRA2021_I3D = {"c1": {"inflation": "centered", "fill": "random", "masking": False,
                           "dilation": [1, 1, 1, 1], "multiplier": 1},
                    "c2": {"inflation": "copied", "fill": "zero", "masking": True,
                           "dilation": [1, 2, 4, 8], "multiplier": 100}}
for _backbone in ("vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet50"):
    for _cname, _options in TEIXEIRA2021_I3D.items():
        EXPERIMENTS[f"teixeira2021-i3d-{_backbone.replace('_', '')}-{_cname}"] = experiment(
            f"Teixeira 2021 i3D-CNN inflated from {_backbone}, Table 3 configuration {_cname.upper()}",
            "Teixeira et al. 2021, Tables 3-6 (SEWA devel)", {}, "teixeira2021-i3d",
            {"backbone": _backbone, **_options},
            {"window": 16, "overlap": 0.5, "frame_step": 5, "label_fusion": "mean", "batch_size": 16},
            {"optimizer": "adam", "learning_rate": 1e-5, "epochs": 20, "loss": "mse"}, postprocessing="teixeira2021")
