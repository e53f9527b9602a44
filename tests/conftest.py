"""Shared fixtures: one tiny synthetic corpus and its preprocessed TFRecords per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As the command line does (emotrack/cli/__init__.py): oneDNN's AMX bfloat16 kernels crash TensorFlow 2.21.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_FP16")

import pytest  # noqa: E402

TINY_CORPUS = dict(sessions=3, seconds=4.0, fps=10.0, seed=7)

#: Test files that take minutes: collected first, so that with `make test`'s two workers (one file per
#: worker at a time) the longest starts at once rather than after the others.
LONGEST_FIRST = ("test_reproduce_smoke.py",)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A 3-session, 4-second synthetic corpus in the generic layout (train, devel, test)."""
    from emotrack.synth.corpus import synthesize_corpus

    root = tmp_path_factory.mktemp("corpus")
    synthesize_corpus(root, progress=False, **TINY_CORPUS)
    return root


@pytest.fixture(scope="session")
def tiny_tfr(tiny_corpus, tmp_path_factory):
    """The tiny corpus preprocessed (real MTCNN, 112x112 gray crops) into TFRecords."""
    from emotrack.preprocess.corpus import preprocess_corpus

    out = tmp_path_factory.mktemp("tfr")
    report = preprocess_corpus("generic", tiny_corpus, out, progress=False)
    assert report.ok, report.failed
    return out


@pytest.fixture(scope="session")
def tiny_rgb_tfr(tiny_corpus, tmp_path_factory):
    """The tiny corpus as 32x32 RGB crops, for the models that take color faces."""
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.preprocess.options import PreprocessOptions

    out = tmp_path_factory.mktemp("tfr_rgb")
    report = preprocess_corpus("generic", tiny_corpus, out, PreprocessOptions(size=(32, 32), gray=False),
                               progress=False)
    assert report.ok, report.failed
    return out


# tests/test_train.py's tiny ConvLSTM, one epoch; prediction pieces of 8 frames, so that a 40-frame video
# is predicted in several blocks.
TINY_RUN = ["train.epochs=1", "data.window=8", "data.hop=4", "data.label_delay_s=0.5", "data.batch_size=4",
            "model.options.filters=[2, 2, 2, 2]", "model.options.dense_units=4", "evaluate.chunk=8",
            # The tiny corpus has one training subject: no validation split; devel and test as before.
            "data.validation.subjects=0", "evaluate.partitions=[devel, test]",
            "evaluate.postprocessing=tzirakis2017"]


@pytest.fixture(scope="session")
def tiny_run(tiny_tfr, tmp_path_factory):
    """A run of the tiny ConvLSTM on the tiny corpus, evaluated (its ``postprocessing.json`` fitted), for
    the tests of ``emotrack predict``."""
    from emotrack.evaluation.report import evaluate
    from emotrack.training.train import train

    out = tmp_path_factory.mktemp("predict") / "run"
    train("huang2018-convlstm", tiny_tfr, out, overrides=TINY_RUN, verbose=0)
    evaluate(out)
    return out
