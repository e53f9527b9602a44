"""Teixeira, Granger, Koerich 2021, "Continuous emotion recognition with spatiotemporal convolutional
neural networks" (Applied Sciences): RAF-DB pre-training (Table 1), the VGG-16-LSTM (Table 2) and the
i3D-CNNs (Tables 3-6) on SEWA, Table 7, and the paper's staged protocol
(shared/papers/teixeira2021_cnnlstm_i3d_sewa.txt).

The protocol, in the paper's words:
- Sec. 4.3, pre-training: "fine-tuning the pre-trained 2D-CNNs on RAF-DB, video frames have been
  resized to 100x80x3 ... Learning rate has been fixed to 1e-5 and batches of size 16. Optimization
  has been performed with Adam optimizer." Table 1 gives, per backbone, the dataset it was
  pre-trained on and the convolution block fine-tuning starts from -> one pre-training stage per
  row of Table 1 (``emotrack pretrain``), test accuracy on RAF-DB's test images.
- Sec. 3.3.1: "(i) VGG-16 pre-trained on the VGG-Face dataset; (ii) VGG-16 pre-trained on the
  VGG-Face dataset and fine-tuned on the RAF-DB dataset"; Sec. 4.4: "one based on the VGG-16
  architecture pre-trained on VGG-Face and fine-tuned on RAF-DB because such an architecture
  achieved the best results on RAF-DB test set" -> the RAF-DB rows load the best VGG-16 stage of
  Table 1 (VGG-Face, from Conv 4_1: 79.9 %).
- Sec. 4.4: "the mean squared error (MSE) was used as cost function"; Sec. 4.5: "batch of size 8,
  sequence length of 64 frames, overlapping ratio of 0.8, and frame rate of 10 fps" (the i3D-CNNs,
  "the best configuration found for the 2D-CNN-LSTM", so the LSTM also trains on batches of 8).
- Sec. 3.2.1: SEWA video is 50 fps and "it is necessary to replicate annotations for non-labeled
  frames when using 50 fps" -> ratings held (``--resample hold``), 10 fps by taking every 5th frame
  (``data.frame_step=5``). "Only frames showing whole faces are kept, while other frames are
  discarded" and "we applied a tolerance (a temporal difference between close frames) to select
  clips" -> ``data.faceless=drop`` with ``data.gap_tolerance_s`` (value not given: 0.5 s assumed).
- Sec. 4.1 (Table 7's note and the text): "we used the validation set as the test set and split the
  training set into a new training set (28 videos) and validation set (6 videos)" -> the SEWA devel
  partition is reported; 6 training subjects drawn with a seed (``data.validation``) choose the
  checkpoint and fit the post-processing.
- Sec. 4.4: "the best performance has been obtained with post-processing steps" -> the tables
  report the post-processed predictions (the ``teixeira2021`` chain, fitted on the validation
  subjects, so devel stays out of sample).
"""

from __future__ import annotations

from emotrack.config.experiments.base import EXPERIMENTS, experiment
from emotrack.config.papers import Cell, Input, Paper, Preprocessing, Pretraining, Table, Training, register_paper

GAP_TOLERANCE_S = 0.5  # Sec. 3.2.2 names a tolerance but no value (assumed)
VALIDATION = {"subjects": 6, "order": "random", "seed": 0}  # Sec. 4.1: 28 + 6 of SEWA's 34 training videos
_TRAIN = {"optimizer": "adam", "learning_rate": 1e-5, "epochs": 20, "loss": "mse"}  # epochs not given: 20
_DATA = {"batch_size": 8, "faceless": "drop", "gap_tolerance_s": GAP_TOLERANCE_S, "validation": VALIDATION}

# Table 1: RAF-DB test accuracy (%) by backbone, pre-training set and the block fine-tuning starts
# from ("Full": every layer).
TEIXEIRA2021_TABLE_1 = {
    ("vgg11", "imagenet"): {"all": 75.6, "conv2_1": 75.9, "conv3_1": 75.9, "conv4_1": 75.9, "conv5_1": 70.3},
    ("vgg11_bn", "imagenet"): {"all": 77.8},
    ("vgg16", "vggface"): {"all": 78.5, "conv2_1": 78.5, "conv3_1": 79.1, "conv4_1": 79.9, "conv5_1": 74.4},
    ("vgg16_bn", "vggface"): {"all": 78.4},
    ("resnet50", "vggface"): {"all": 79.7, "conv4_1": 78.0, "conv5_1": 65.1},
}
BEST_RAFDB_STAGE = "rafdb-vgg16-vggface-conv4_1"  # Sec. 4.4: the best of Table 1 (79.9 %)
BACKBONE_NAMES = {"vgg11": "VGG-11", "vgg11_bn": "VGG-11-BN", "vgg16": "VGG-16", "vgg16_bn": "VGG-16-BN",
                  "resnet50": "ResNet50"}
INIT_NAMES = {"vggface": "VGG-Face", "rafdb": "RAF-DB", "imagenet": "ImageNet"}
_NO_VGG11 = ("Keras ships no ImageNet VGG-11 (keras.applications has VGG-16 and VGG-19) and emotrack reads a VGG-11 "
             "only from a weights file saved from its own vgg11 backbone")
_NO_VGG16_BN = ("no published VGG-16 with batch normalisation is among the weights emotrack loads (VGG-Face and "
                "Keras' ImageNet VGG-16 have none, and the paper does not say how its BN layers were initialised)")
_NO_RESNET_VGGFACE = ("emotrack does not read the VGG-Face ResNet-50 (VGGFace2) weights; it maps VGG-Face files "
                      "onto VGG-16 only")
UNAVAILABLE = {("vgg11", "imagenet"): _NO_VGG11, ("vgg11_bn", "imagenet"): _NO_VGG11,
               ("vgg16_bn", "vggface"): _NO_VGG16_BN, ("vgg16_bn", "imagenet"): _NO_VGG16_BN,
               ("resnet50", "vggface"): _NO_RESNET_VGGFACE}


def stage_name(backbone: str, init: str, block: str) -> str:
    return f"rafdb-{backbone.replace('_', '')}-{init}-{block}"


# Teixeira et al. 2021, Table 2 (SEWA devel, PCC, CCC and MAPE in %): VGG-16-LSTM by initialisation,
# frame rate, sequence length, overlap ratio and label fusion, for the dimension each row reports.
TEIXEIRA2021_TABLE_2 = [
    ("vggface", 10, 16, 0.2, "extremum", "valence", 0.590, 0.560, 3.8),
    ("vggface", 10, 16, 0.2, "mean", "arousal", 0.549, 0.542, 8.7),
    ("vggface", 50, 64, 0.2, "mean", "valence", 0.541, 0.511, 6.8),
    ("vggface", 50, 64, 0.2, "extremum", "arousal", 0.495, 0.492, 3.4),
    ("rafdb", 10, 64, 0.8, "mean", "valence", 0.631, 0.625, 3.7),
    ("rafdb", 10, 64, 0.8, "extremum", "arousal", 0.558, 0.557, 9.4),
    ("rafdb", 50, 64, 0.2, "mean", "valence", 0.582, 0.568, 8.2),
    ("rafdb", 50, 64, 0.2, "extremum", "arousal", 0.517, 0.517, 4.4),
]


def lstm_name(init: str, fps: int, length: int, overlap: float, fusion: str) -> str:
    return f"teixeira2021-vgg16-lstm-{length}-{overlap}-{fusion}-{fps}fps" + ("-vggface" if init == "vggface" else "")


_INIT_TEXT = {"vggface": "VGG-16 pre-trained on VGG-Face (Sec. 3.3.1 (i))",
              "rafdb": "VGG-16 pre-trained on VGG-Face and fine-tuned on RAF-DB (Sec. 3.3.1 (ii); "
                       "`emotrack reproduce teixeira2021` makes it)",
              "imagenet": "the backbone's ImageNet weights (Table 6)"}
for _init, _fps, _length, _overlap, _fusion, _dim, _pcc, _ccc, _mape in TEIXEIRA2021_TABLE_2:
    _name = lstm_name(_init, _fps, _length, _overlap, _fusion)
    EXPERIMENTS[_name] = experiment(
        f"Teixeira 2021 VGG-16-LSTM, {_length} frames at {_fps} fps, overlap {_overlap}, {_fusion} label fusion, "
        f"{INIT_NAMES[_init]} initialisation",
        "Teixeira et al. 2021, Table 2 (SEWA devel, CCC)", {_dim: _ccc}, "teixeira2021-vgg16-lstm", {},
        {"window": _length, "overlap": _overlap, "frame_step": 50 // _fps, "label_fusion": _fusion, **_DATA},
        _TRAIN, postprocessing="teixeira2021")
    EXPERIMENTS[_name]["model"]["pretrained"] = {"weights": _INIT_TEXT[_init]}
    EXPERIMENTS[_name]["evaluate"]["partitions"] = ["devel"]

# Sec. 4.5: the i3D-CNNs train on the best 2D-CNN-LSTM configuration.
_I3D_DATA = {"window": 64, "overlap": 0.8, "frame_step": 5, "label_fusion": "mean", **_DATA}


def _i3d(name: str, description: str, source: str, options: dict, reported: dict, pretrained: str) -> None:
    EXPERIMENTS[name] = experiment(description, source, reported, "teixeira2021-i3d", options, dict(_I3D_DATA),
                                   _TRAIN, postprocessing="teixeira2021")
    EXPERIMENTS[name]["model"]["pretrained"] = {"weights": pretrained}
    EXPERIMENTS[name]["evaluate"]["partitions"] = ["devel"]


# Table 3's two i3D configurations for every backbone.
TEIXEIRA2021_I3D = {"c1": {"inflation": "centered", "fill": "random", "masking": False,
                           "dilation": [1, 1, 1, 1], "multiplier": 1},
                    "c2": {"inflation": "copied", "fill": "zero", "masking": True,
                           "dilation": [1, 2, 4, 8], "multiplier": 100}}
for _backbone in BACKBONE_NAMES:
    for _cname, _options in TEIXEIRA2021_I3D.items():
        _i3d(f"teixeira2021-i3d-{_backbone.replace('_', '')}-{_cname}",
             f"Teixeira 2021 i3D-CNN inflated from {_backbone}, Table 3 configuration {_cname.upper()}",
             "Teixeira et al. 2021, Table 3 (SEWA devel)", {"backbone": _backbone, **_options}, {},
             "a 2D backbone pre-trained on VGG-Face, ImageNet or RAF-DB (Tables 4-6)")

# Tables 4 (valence) and 5 (arousal): the best configuration of each backbone and initialisation,
# (inflation, dilation, masking, centred weights, multiplier). Dilation "I" is Table 3's 1-1-1-1 and
# "VIII" its 1-2-4-8 (read as the largest level of the four blocks).
_DILATION = {"I": [1, 1, 1, 1], "VIII": [1, 2, 4, 8]}
TEIXEIRA2021_TABLES_4_5 = {
    ("vgg11_bn", "rafdb"): {"valence": ("centered", "I", False, "zero", 1), "arousal": ("centered", "I", False, "random", 1)},
    ("vgg11_bn", "imagenet"): {"valence": ("copied", "I", False, "zero", 100), "arousal": ("centered", "VIII", False, "zero", 1)},
    ("vgg16", "vggface"): {"valence": ("centered", "I", False, "random", 1), "arousal": ("centered", "I", False, "random", 1)},
    ("vgg16", "rafdb"): {"valence": ("copied", "I", False, "random", 1), "arousal": ("copied", "I", True, "random", 100)},
    ("vgg16", "imagenet"): {"valence": ("centered", "I", False, "random", 1), "arousal": ("centered", "I", False, "random", 1)},
    ("vgg16_bn", "vggface"): {"valence": ("centered", "I", False, "random", 1), "arousal": ("centered", "I", True, "random", 1)},
    ("vgg16_bn", "rafdb"): {"valence": ("copied", "I", True, "random", 1), "arousal": ("copied", "I", False, "random", 1)},
    ("vgg16_bn", "imagenet"): {"valence": ("copied", "I", False, "random", 1), "arousal": ("centered", "I", False, "zero", 1)},
    ("resnet50", "vggface"): {"valence": ("centered", "I", True, "zero", 100), "arousal": ("copied", "I", True, "zero", 100)},
    ("resnet50", "rafdb"): {"valence": ("copied", "VIII", False, "zero", 1), "arousal": ("centered", "VIII", True, "zero", 1)},
    ("resnet50", "imagenet"): {"valence": ("centered", "VIII", True, "zero", 1), "arousal": ("centered", "I", False, "zero", 1)},
}
# Table 6: the best i3D-CNN of each backbone and initialisation (SEWA devel): valence PCC, CCC,
# MAPE (%), arousal PCC, CCC, MAPE (%).
TEIXEIRA2021_TABLE_6 = {
    ("vgg11_bn", "rafdb"): (0.035, 0.018, 2.9, 0.359, 0.348, 8.1),
    ("vgg11_bn", "imagenet"): (0.040, 0.025, 4.2, 0.342, 0.203, 3.0),
    ("vgg16", "vggface"): (0.119, 0.071, 3.0, 0.220, 0.166, 5.2),
    ("vgg16", "rafdb"): (0.036, 0.028, 3.5, 0.242, 0.119, 4.6),
    ("vgg16", "imagenet"): (0.209, 0.190, 2.4, 0.391, 0.189, 3.8),
    ("vgg16_bn", "vggface"): (0.203, 0.105, 3.6, 0.347, 0.304, 5.3),
    ("vgg16_bn", "rafdb"): (0.123, 0.101, 3.2, 0.284, 0.165, 3.3),
    ("vgg16_bn", "imagenet"): (0.346, 0.304, 5.6, 0.382, 0.326, 5.3),
    ("resnet50", "vggface"): (0.313, 0.253, 3.5, 0.406, 0.273, 4.9),
    ("resnet50", "rafdb"): (0.113, 0.063, 2.9, 0.262, 0.207, 4.9),
    ("resnet50", "imagenet"): (0.183, 0.164, 6.0, 0.323, 0.256, 4.7),
}


def i3d_name(backbone: str, init: str, dimension: str) -> str:
    return f"teixeira2021-i3d-{backbone.replace('_', '')}-{init}-{dimension}"


for (_backbone, _init), _configs in TEIXEIRA2021_TABLES_4_5.items():
    _values = dict(zip(("valence", "arousal"), (TEIXEIRA2021_TABLE_6[(_backbone, _init)][1],
                                                 TEIXEIRA2021_TABLE_6[(_backbone, _init)][4])))
    for _dim, (_inflation, _dilation, _masking, _fill, _mult) in _configs.items():
        _i3d(i3d_name(_backbone, _init, _dim),
             f"Teixeira 2021 i3D-CNN from {BACKBONE_NAMES[_backbone]} ({INIT_NAMES[_init]}), the best {_dim} "
             f"configuration (Table {4 if _dim == 'valence' else 5})",
             f"Teixeira et al. 2021, Tables {4 if _dim == 'valence' else 5} and 6 (SEWA devel, CCC)",
             # Tables 4-5 fill the "centred weights" column for copied rows too, where it changes nothing.
             {"backbone": _backbone, "inflation": _inflation, "fill": _fill if _inflation == "centered" else "zero",
              "masking": _masking,
              "dilation": _DILATION[_dilation], "multiplier": _mult}, {_dim: _values[_dim]}, _INIT_TEXT[_init])
        EXPERIMENTS[i3d_name(_backbone, _init, _dim)]["targets"] = [_dim]


def _row_unavailable(backbone: str, init: str) -> str:
    """Why an i3D row cannot start from its weights ("" when it can)."""
    if init == "rafdb":
        why = UNAVAILABLE.get((backbone, "imagenet" if backbone == "vgg11_bn" else "vggface"), "")
        return f"its RAF-DB backbone cannot be pre-trained: {why}" if why else ""
    return UNAVAILABLE.get((backbone, init), "")


# The weights of the i3D rows that run: only VGG-16 has a RAF-DB stage that runs (the best of Table 1).
_WEIGHTS = {"vggface": "VGGFACE", "imagenet": "imagenet", "rafdb": BEST_RAFDB_STAGE}


_PRETRAINING = tuple(
    Pretraining(stage_name(backbone, init, block), "RAFDB", "rafdb",
                {"backbone": backbone, "fine_tune_from": block, "input_shape": [100, 80, 3], "epochs": 20,
                 "batch_size": 16, "learning_rate": 1e-5},
                weights="VGGFACE" if init == "vggface" else init, unavailable=UNAVAILABLE.get((backbone, init), ""))
    for (backbone, init), blocks in TEIXEIRA2021_TABLE_1.items() for block in blocks)

_TRAININGS = (
    *(Training(lstm_name(init, fps, length, overlap, fusion), lstm_name(init, fps, length, overlap, fusion), "sewa",
               overrides=(f"targets=[{dim}]",), weights=BEST_RAFDB_STAGE if init == "rafdb" else "VGGFACE",
               smoke=("model.options.lstm_units=4",))
      for init, fps, length, overlap, fusion, dim, _, _, _ in TEIXEIRA2021_TABLE_2),
    *(Training(i3d_name(backbone, init, dim), i3d_name(backbone, init, dim), "sewa",
               weights=None if _row_unavailable(backbone, init) else _WEIGHTS[init],
               unavailable=_row_unavailable(backbone, init))
      for (backbone, init), configs in TEIXEIRA2021_TABLES_4_5.items() for dim in configs),
)

_BLOCK_NAMES = {"all": "Full", "conv2_1": "Conv 2_1", "conv3_1": "Conv 3_1", "conv4_1": "Conv 4_1",
                "conv5_1": "Conv 5_1"}
_TABLE_1_ROWS = {f"{BACKBONE_NAMES[b]} ({INIT_NAMES[i]}), {_BLOCK_NAMES[k]}": (b, i, k, v)
                 for (b, i), blocks in TEIXEIRA2021_TABLE_1.items() for k, v in blocks.items()}
_TABLE_2_ROWS = {f"{INIT_NAMES[init]}, {fps} fps, {dim} ({length}, {overlap}, {fusion})":
                 (lstm_name(init, fps, length, overlap, fusion), dim, (pcc, ccc, mape))
                 for init, fps, length, overlap, fusion, dim, pcc, ccc, mape in TEIXEIRA2021_TABLE_2}
_TABLE_6_ROWS = {f"{BACKBONE_NAMES[b]} ({INIT_NAMES[i]})": (b, i, v) for (b, i), v in TEIXEIRA2021_TABLE_6.items()}
_COLUMNS_6 = ("Valence PCC", "Valence CCC", "Valence MAPE", "Arousal PCC", "Arousal CCC", "Arousal MAPE")
_COLUMNS_7 = ("Valence PCC", "Valence CCC", "Arousal PCC", "Arousal CCC")
# Table 7: the proposed networks beside Kossaifi et al. (2019), Chen et al. (2019) and Zhao et al. (2019).
TEIXEIRA2021_TABLE_7_QUOTED = {
    "SVR (Kossaifi et al. 2019)": (0.321, 0.312, 0.182, 0.202), "RF (Kossaifi et al. 2019)": (0.268, 0.207, 0.181, 0.123),
    "LSTM (Kossaifi et al. 2019)": (0.322, 0.281, 0.173, 0.115),
    "ResNet18, RMSE (Kossaifi et al. 2019)": (0.290, 0.270, 0.130, 0.110),
    "ResNet18, CCC (Kossaifi et al. 2019)": (0.350, 0.350, 0.350, 0.290),
    "ST-GCN (Chen et al. 2019)": (None, 0.540, None, 0.581), "DenseNet-style CNN (Zhao et al. 2019)": (None, 0.580, None, 0.594),
}
_TABLE_7_OURS = {
    "2D-CNN-LSTM (VGG-16, RAF-DB)": ((lstm_name("rafdb", 10, 64, 0.8, "mean"), lstm_name("rafdb", 10, 64, 0.8, "extremum")),
                                     (0.631, 0.625, 0.558, 0.557)),
    "i3D-CNN (VGG-16-BN, ImageNet)": ((i3d_name("vgg16_bn", "imagenet", "valence"), i3d_name("vgg16_bn", "imagenet", "arousal")),
                                      tuple(TEIXEIRA2021_TABLE_6[("vgg16_bn", "imagenet")][k] for k in (0, 1, 3, 4))),
}


def _cells(row: str, trainings: tuple[str, str] | None, values, columns=_COLUMNS_6) -> list[Cell]:
    """One row of Table 6 or 7, ``columns`` "<Dimension> <metric>" (post-processed, SEWA devel)."""
    cells = []
    for column, value in zip(columns, values):
        if value is None:  # "NA: Not Available" in Table 7
            continue
        dim, metric = column.split()
        training = None if trainings is None else trainings[dim == "Arousal"]
        cells.append(Cell(row, column, training, dim.lower(), value, metric=metric, kind="post_processed"))
    return cells


PAPER = register_paper(Paper(
    name="teixeira2021",
    title="Teixeira, Granger, Koerich: Continuous emotion recognition with spatiotemporal convolutional neural "
          "networks (Applied Sciences 2021)",
    inputs=(
        Input("SEWA", "dir", "the SEWA corpus as released for AVEC 2017 (video/, audio/, labels/)",
              "the AVEC 2017 organisers / SEWA project (https://db.sewaproject.eu), under its EULA", check="labels"),
        Input("RAFDB", "dir", "RAF-DB's basic-emotion set as released (the folder holding EmoLabel/ and Image/)",
              "the RAF-DB authors (http://www.whdeng.cn/raf/model1.html), on request for research",
              check="EmoLabel"),
        Input("VGGFACE", "file", "the VGG-Face VGG-16 weights as a Keras HDF5 file (layers conv1_1 ... fc8), e.g. "
              "rcmalli_vggface_tf_vgg16.h5, or deepface's vgg_face_weights.h5",
              "the keras-vggface releases (github.com/rcmalli/keras-vggface) or deepface's model releases, "
              "converted from Oxford VGG's VGG-Face (https://www.robots.ox.ac.uk/~vgg/software/vgg_face/)"),
    ),
    preprocessing=(Preprocessing("sewa", "SEWA", "sewa-avec2017", {"crops": ["teixeira2021"], "resample": "hold"}),),
    pretraining=_PRETRAINING,
    trainings=_TRAININGS,
    tables=(
        Table("table1", "Table 1: Results of the fine-tuning of VGG and ResNet50 models on RAF-DB (test accuracy, %)",
              tuple(_TABLE_1_ROWS), ("Accuracy",),
              tuple(Cell(row, "Accuracy", None, "emotion", value, metric="accuracy", partition="test",
                         stage=stage_name(b, i, k)) for row, (b, i, k, value) in _TABLE_1_ROWS.items())),
        Table("table2", "Table 2: Performance of the 2D-CNN-LSTM based on the VGG-16 architecture on the SEWA-DB "
              "dataset (devel, post-processed)", tuple(_TABLE_2_ROWS), ("PCC", "CCC", "MAPE"),
              tuple(Cell(row, metric, name, dim, value, metric=metric, kind="post_processed")
                    for row, (name, dim, values) in _TABLE_2_ROWS.items()
                    for metric, value in zip(("PCC", "CCC", "MAPE"), values))),
        Table("table6", "Table 6: Best performances of i3D-CNNs for predicting valence and arousal (SEWA devel, "
              "post-processed; each dimension from its own Table 4 / Table 5 configuration)", tuple(_TABLE_6_ROWS),
              _COLUMNS_6, tuple(c for row, (b, i, v) in _TABLE_6_ROWS.items()
                                for c in _cells(row, (i3d_name(b, i, "valence"), i3d_name(b, i, "arousal")), v))),
        Table("table7", "Table 7: Comparison of the best results achieved by the proposed models and the "
              "state-of-the-art for SEWA-DB (devel; other rows quoted)",
              (*_TABLE_7_OURS, *TEIXEIRA2021_TABLE_7_QUOTED), _COLUMNS_7,
              tuple(c for row, (names, v) in _TABLE_7_OURS.items() for c in _cells(row, names, v, _COLUMNS_7))
              + tuple(c for row, v in TEIXEIRA2021_TABLE_7_QUOTED.items() for c in _cells(row, None, v, _COLUMNS_7))),
    ),
    deviations=(
        "Epochs: not given for any stage; 20 for the RAF-DB pre-training, the VGG-16-LSTM and the i3D-CNNs.",
        "LSTM stage: Adam with 1e-5 (Sec. 4.3's fine-tuning values; Sec. 4.4 gives none of its own) and batches of 8 "
        "(Sec. 4.5: 'the best configuration found for the 2D-CNN-LSTM ... uses batch of size 8').",
        f"Gap tolerance: Sec. 3.2.2 applies one without a value; clips may span gaps of at most {GAP_TOLERANCE_S} s "
        f"between kept frames.",
        "Validation split: the paper does not say which 6 of the 34 training videos; 6 training subjects drawn with "
        "seed 0, recorded in each run's config (data.validation.held_out).",
        "MAPE (Eq. 5) is read as 100/n sum |y' - y| / |y|, frames whose rating is exactly 0 left out "
        "(emotrack/evaluation/metrics.py); the overall MAE quoted in Sec. 4.4 is not a table cell.",
        "The RAF-DB rows of Tables 2 and 6 start from the best VGG-16 of Table 1 (VGG-Face, fine-tuned from "
        "Conv 4_1), as Sec. 4.4 says for the LSTM; for the i3D rows the paper does not say which RAF-DB model.",
        "Dilation 'I' / 'VIII' of Tables 4 and 5 is read as Table 3's 1-1-1-1 / 1-2-4-8.",
        "Tables 3-5 are configurations, not results; their rows are the trainings of Table 6.",
        "Faces: MTCNN as in the paper (Sec. 3.2.1); evaluation cuts clips over every frame and leaves the frames "
        "without a face out of the metrics, where training drops them before cutting clips.",
        "Repeats: the paper does not say it repeats its trainings; one run per row.",
    ),
    smoke=("model.options.dense_units=[4, 4]", "data.window=4", "data.batch_size=2",
           "train.epochs=1", "data.validation.subjects=1"),
    smoke_pretraining={"epochs": 1, "batch_size": 8, "input_shape": [32, 32, 3]},
    smoke_preprocessing={"crops": ["32x32rgb"]},
))
