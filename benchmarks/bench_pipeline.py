"""Throughput of each stage on a small synthetic corpus; prints frames per second.

Run with `make bench`. Figures depend on the machine; nothing here is asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    import keras
    from emotrack.data import session_arrays, training_windows
    from emotrack.evaluate import predict_session
    from emotrack.losses import CCCLoss
    from emotrack.models import build_model
    from emotrack.preprocess import preprocess_corpus
    from emotrack.synth import synthesize_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root, tfr = Path(tmp) / "corpus", Path(tmp) / "tfr"
        start = time.perf_counter()
        summary = synthesize_corpus(root, sessions=4, seconds=15.0, progress=False)
        frames = sum(s["frames"] for s in summary["sessions"])
        print(f"synth       {frames / (time.perf_counter() - start):8.1f} frames/s  ({frames} frames, 160x128)")

        start = time.perf_counter()
        preprocess_corpus("generic", root, tfr, progress=False)
        print(f"preprocess  {frames / (time.perf_counter() - start):8.1f} frames/s  (decode + MTCNN batch 32 + "
              f"crop 112x112 gray + PNG + TFRecord)")

        ds = training_windows(tfr, "train", window=8, hop=8, batch_size=8, label_delay_s=2.0, cache=False)
        start, count = time.perf_counter(), 0
        for x, _, _ in ds:
            count += int(x.shape[0]) * int(x.shape[1])
        print(f"tf.data     {count / (time.perf_counter() - start):8.1f} frames/s  (windows of 8, from TFRecords)")

        model = build_model("huang2018-convlstm", filters=(8, 16, 16, 16), dense_units=64)
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss=CCCLoss())
        batches = list(training_windows(tfr, "train", window=8, hop=8, batch_size=8, label_delay_s=2.0)
                       .map(lambda x, y, w: (x, y[..., :2], w)))
        model.train_on_batch(*batches[0])
        start, count = time.perf_counter(), 0
        for x, y, w in batches:
            model.train_on_batch(x, y, sample_weight=w)
            count += int(x.shape[0]) * int(x.shape[1])
        print(f"train step  {count / (time.perf_counter() - start):8.1f} frames/s  (huang2018-convlstm, CPU demo "
              f"size, batch 8 x 8 frames)")

        session = session_arrays(tfr, "test")[0]
        predict_session(model, session["frames"][:8], chunk=600)
        start = time.perf_counter()
        predict_session(model, session["frames"], chunk=600)
        n = len(session["frames"])
        print(f"predict     {n / (time.perf_counter() - start):8.1f} frames/s  (whole session of {n} frames)")


if __name__ == "__main__":
    main()
