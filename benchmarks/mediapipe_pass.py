"""The peer of ``make bench-preprocess``: MediaPipe's short-range face detector, one frame at a time with
decoding, the largest face cropped to 112x112 gray and JPEG-encoded (what emotrack's default crop set
stores). Runs in an environment of its own (``make bench-preprocess`` makes ``.venv-mediapipe``), never in
emotrack's: MediaPipe 0.10.21 needs numpy < 2, emotrack pins numpy 2.

    .venv-mediapipe/bin/python benchmarks/mediapipe_pass.py VIDEO

Prints one JSON line: frames, seconds (decoding included, model loading not), cpu_seconds (the process's
CPU time over the same span, every thread), the MediaPipe version and each frame's box of the largest face
([x, y, w, h] in pixels, or null).
"""

import json
import sys
import time


def main(video: str) -> None:
    import cv2
    import mediapipe as mp

    detector = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
    capture = cv2.VideoCapture(video)
    boxes, start, cpu = [], None, None
    while True:
        ok, bgr = capture.read()
        if start is None:
            start, cpu = time.perf_counter(), time.process_time()  # after opening the file and the model
        if not ok:
            break
        h, w = bgr.shape[:2]
        found = detector.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).detections or []
        box = None
        if found:
            r = max((d.location_data.relative_bounding_box for d in found), key=lambda b: b.width * b.height)
            box = [r.xmin * w, r.ymin * h, r.width * w, r.height * h]
            x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
            x1, y1 = min(w, int(box[0] + box[2])), min(h, int(box[1] + box[3]))
            if x1 > x0 and y1 > y0:
                gray = cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
                cv2.imencode(".jpg", cv2.resize(gray, (112, 112), interpolation=cv2.INTER_AREA),
                             [cv2.IMWRITE_JPEG_QUALITY, 95])
        boxes.append(box)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"frames": len(boxes), "seconds": seconds, "cpu_seconds": cpu_seconds, "version": mp.__version__,
                      "boxes": boxes}))


if __name__ == "__main__":
    main(sys.argv[1])
