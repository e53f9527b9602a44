"""A live source for ``emotrack predict RUN -``: a video file re-encoded frame by frame into an MPEG-TS
stream on standard output (H.264, tuned for zero latency), optionally at the pace of real time.

    python benchmarks/live_source.py VIDEO [--pace] [--log sent.txt] [--tee copy.ts] | emotrack predict RUN - --out -

``--log`` writes one line per frame: its index and the moment (``time.monotonic()``, the system-wide clock
other processes read too) its packets were written; ``--tee`` keeps a copy of the exact bytes streamed.
``--go FILE``: after the first second of frames (enough for the reader to open the stream), wait until
FILE exists (the reader is ready: ``emotrack predict`` has loaded its model) and pace from then on, so that
the frames that follow measure the steady state, not the reader's start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


class _Tee:
    def __init__(self, *files):
        self.files = files

    def write(self, data):
        for f in self.files:
            f.write(data)
            f.flush()
        return len(data)


def stream(video: str, pace: bool, log: str | None, tee: str | None, seconds: float | None,
           go: str | None = None) -> int:
    import av

    sink = sys.stdout.buffer
    copy = open(tee, "wb") if tee else None
    target = _Tee(sink, copy) if copy else _Tee(sink)
    sent = open(log, "w") if log else None
    count = 0
    with av.open(video) as source:
        vin = source.streams.video[0]
        rate = vin.average_rate
        with av.open(target, "w", format="mpegts", container_options={"flush_packets": "1"}) as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
            vout.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "18"}
            start = time.monotonic()
            for frame in source.decode(vin):
                if seconds is not None and count >= seconds * float(rate):
                    break
                if go is not None and count == int(round(float(rate))):
                    while not os.path.exists(go):
                        time.sleep(0.01)
                    start = time.monotonic() - count / float(rate)  # frame `count` is due now
                if pace:
                    time.sleep(max(0.0, start + count / float(rate) - time.monotonic()))
                image = frame.to_ndarray(format="rgb24")
                new = av.VideoFrame.from_ndarray(image, format="rgb24")
                new.pts, new.time_base = count, 1 / rate
                out.mux(vout.encode(new))
                if sent:
                    sent.write(f"{count} {time.monotonic():.6f}\n")
                    sent.flush()
                count += 1
            out.mux(vout.encode(None))
    for f in (sent, copy):
        if f:
            f.close()
    return count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--pace", action="store_true", help="write each frame at its time, as a camera would")
    parser.add_argument("--log", help="file of (frame, time sent) lines")
    parser.add_argument("--tee", help="file to keep a copy of the stream in")
    parser.add_argument("--seconds", type=float, help="stop after this much video")
    parser.add_argument("--go", help="after the first second, wait for this file to exist (see above)")
    args = parser.parse_args(argv)
    try:
        stream(args.video, args.pace, args.log, args.tee, args.seconds, args.go)
    except BrokenPipeError:  # the reader stopped (Ctrl-C): not an error of the source
        pass


if __name__ == "__main__":
    main()
