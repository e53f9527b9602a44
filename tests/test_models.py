"""The model registry and Huang et al. 2018's networks: exact shapes, pooling variants, round trips."""

import numpy as np
import pytest

from emotrack.models import build_model, list_models
from emotrack.models.huang2018 import POOLING_VARIANTS, temporal_factor

TINY = dict(filters=(2, 2, 2, 2), dense_units=4, input_shape=(None, 16, 16, 1))


def test_registry_lists_and_rejects():
    assert {"huang2018-convlstm", "huang2018-3dconvnet", "tzirakis2017-audio", "tzirakis2017-visual",
            "tzirakis2017-audiovisual", "teixeira2021-2d", "teixeira2021-vgg16-lstm"} <= set(list_models())
    with pytest.raises(KeyError, match="unknown model"):
        build_model("no-such-model")


@pytest.mark.parametrize("name", ["huang2018-convlstm", "huang2018-3dconvnet"])
@pytest.mark.parametrize("pooling", sorted(POOLING_VARIANTS))
def test_per_frame_output_for_every_pooling_variant(name, pooling):
    model = build_model(name, pooling=pooling, **TINY)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 16, 1)).astype("float32")
    assert tuple(model(x).shape) == (2, 16, 2)


def test_layer_structure_follows_the_paper():
    convlstm = build_model("huang2018-convlstm", **TINY)
    kinds = [type(layer).__name__ for layer in convlstm.layers]
    assert kinds.count("Conv3D") == 3 and kinds.count("ConvLSTM2D") == 1
    assert kinds.count("MaxPooling3D") == 4 and kinds.count("Dense") == 2 and kinds.count("Dropout") == 1
    assert convlstm.get_layer("dropout").rate == 0.5
    convnet = build_model("huang2018-3dconvnet", **TINY)
    assert [type(layer).__name__ for layer in convnet.layers].count("Conv3D") == 4
    # Table 1: the spatial size is halved by every pooling layer: 16 -> 1.
    assert convlstm.get_layer("pool4").output.shape[2:4] == (1, 1)


def test_temporal_factor_from_table_1():
    assert temporal_factor("original") == 1 and temporal_factor("temporal") == 1
    assert temporal_factor("max") == 8 and temporal_factor("max_tp") == 4


def test_time_pooled_predictions_are_repeated_back():
    model = build_model("huang2018-convlstm", pooling="max", **TINY)
    x = np.random.default_rng(1).uniform(0, 255, (1, 16, 16, 16, 1)).astype("float32")
    y = np.asarray(model(x))
    # 16 frames pooled by 8 in time -> 2 predictions, each repeated 8 times.
    assert np.allclose(y[0, :8], y[0, :1]) and np.allclose(y[0, 8:], y[0, 8:9])


def test_keras_file_round_trip(tmp_path):
    import keras

    model = build_model("huang2018-convlstm", **TINY)
    x = np.random.default_rng(2).uniform(0, 255, (1, 6, 16, 16, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)


def test_frame_standardization_matches_numpy():
    from emotrack.models.huang2018 import FrameStandardization

    x = np.random.default_rng(3).uniform(0, 255, (2, 3, 5, 4, 1)).astype("float32")
    x[1, 2] = 77.0  # a blank frame maps to zeros, not noise
    expected = (x - x.mean(axis=(2, 3, 4), keepdims=True)) / (x.std(axis=(2, 3, 4), keepdims=True) + 1.0)
    out = np.asarray(FrameStandardization()(x))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert np.all(out[1, 2] == 0.0)


def test_saved_model_loads_in_a_fresh_process(tmp_path):
    """A run's .keras file holds emotrack's own layers; emotrack.models.load_model registers them."""
    import subprocess
    import sys

    model = build_model("huang2018-convlstm", **TINY)
    x = np.random.default_rng(4).uniform(0, 255, (1, 4, 16, 16, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(model(x)))
    code = ("import numpy as np; from emotrack.models import load_model; "
            f"m = load_model(r'{tmp_path / 'm.keras'}'); x = np.load(r'{tmp_path / 'x.npy'}'); "
            f"print(float(np.abs(np.asarray(m(x)) - np.load(r'{tmp_path / 'y.npy'}')).max()))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-6


def test_the_registry_carries_what_is_model_specific():
    """Crop set, time reduction, audio and target kind come from the registry, for every model."""
    from emotrack.faces.crop import CROP_SPECS
    from emotrack.models import list_models, model_info
    from emotrack.models.huang2018 import POOLING_VARIANTS, temporal_factor

    for name in list_models():
        info = model_info(name)
        assert info.needs_audio == ("audio" in info.inputs)
        assert (info.crops is None) == (info.inputs == ("audio",)), name
        assert info.crops is None or info.crops in CROP_SPECS, name
        if not name.startswith("huang2018"):
            assert info.reduction({}) == 1, name
    for pooling in POOLING_VARIANTS:
        for name in ("huang2018-convlstm", "huang2018-3dconvnet"):
            assert model_info(name).reduction({"pooling": pooling}) == temporal_factor(pooling)
    assert model_info("huang2018-convlstm").reduction({"pooling": "max"}) > 1  # a variant that shortens time


def test_no_module_outside_the_models_tests_a_model_family_by_name():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "emotrack"
    families = ("huang2018", "tzirakis2017", "astnet2017", "teixeira2021")
    found = []
    for path in root.rglob("*.py"):
        if path.parent.name == "models" or path.name == "experiments.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "startswith" and node.args \
                    and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith(families):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []
