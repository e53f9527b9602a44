"""Throughput of each stage on a small synthetic corpus; prints frames per second (and clips per
second where the stage works on clips), so that the input pipeline can be seen not to limit training.

Run with `make bench` (which then runs `bench_predict.py`, prediction end to end, and `bench_memory.py`,
training memory). Figures depend on the machine; nothing here is asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    import keras

    from emotrack.data.pipeline import session_arrays, training_windows
    from emotrack.inference.session import predict_session
    from emotrack.models import build_model
    from emotrack.models.losses import CCCLoss
    from emotrack.preprocess.corpus import preprocess_corpus
    from emotrack.synth.corpus import synthesize_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root, tfr = Path(tmp) / "corpus", Path(tmp) / "tfr"
        start = time.perf_counter()
        summary = synthesize_corpus(root, sessions=4, seconds=15.0, progress=False)
        frames = sum(s["frames"] for s in summary["sessions"])
        print(f"synth       {frames / (time.perf_counter() - start):8.1f} frames/s  ({frames} frames, 160x128)")

        start = time.perf_counter()
        preprocess_corpus("generic", root, tfr, progress=False)
        print(f"preprocess  {frames / (time.perf_counter() - start):8.1f} frames/s  (decode + face tracker + "
              f"crop 112x112 gray + JPEG + audio + TFRecord)")

        ds = training_windows(tfr, "train", window=8, hop=8, batch_size=8, label_delay_s=2.0)
        start, count, clips = time.perf_counter(), 0, 0
        for x, _, _ in ds:
            count += int(x.shape[0]) * int(x.shape[1])
            clips += int(x.shape[0])
        seconds = time.perf_counter() - start
        print(f"tf.data     {count / seconds:8.1f} frames/s  {clips / seconds:7.1f} clips/s  (clips of 8 frames, "
              f"batches of 8, decoded from the encoded records as taken)")

        model = build_model("huang2018-convlstm", filters=(8, 16, 16, 16), dense_units=64)
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss=CCCLoss())
        batches = list(training_windows(tfr, "train", window=8, hop=8, batch_size=8, label_delay_s=2.0)
                       .map(lambda x, y, w: (x, y[..., :2], w)))
        model.train_on_batch(*batches[0])
        start, count, clips = time.perf_counter(), 0, 0
        for x, y, w in batches:
            model.train_on_batch(x, y, sample_weight=w)
            count += int(x.shape[0]) * int(x.shape[1])
            clips += int(x.shape[0])
        seconds = time.perf_counter() - start
        print(f"train step  {count / seconds:8.1f} frames/s  {clips / seconds:7.1f} clips/s  (huang2018-convlstm, "
              f"CPU demo size, batch 8 x 8 frames)")

        session = session_arrays(tfr, "test")[0]
        predict_session(model, session["frames"][:8], chunk=600)
        start = time.perf_counter()
        predict_session(model, session["frames"], chunk=600)
        n = len(session["frames"])
        print(f"predict     {n / (time.perf_counter() - start):8.1f} frames/s  (the model alone, on the stored crops "
              f"of a whole session of {n} frames)")


if __name__ == "__main__":
    main()
