"""Videos of several people whose faces the tests know: the synthetic corpus' subjects, each on a tile that
moves along a path, composed frame by frame (`compose`); used by the tests of ``--faces all`` (predict and
preprocess) and of the left/right person of a shared video."""

import numpy as np

SIDE, WIDTH = 96, 320  # each subject's square tile; the frame's width (96 high)
FPS = 10.0


def compose(paths, frames, seed=3):
    """Frames of several subjects, each on its own tile moving along ``paths[i](k)`` (the tile's left edge
    in frame k, None while away); later subjects pass in front. Also, per frame, {subject: (x, y)} of
    each nose that is in view (not off the frame, not covered by a subject in front)."""
    from emotrack.synth.corpus import iter_session_frames

    renders = [list(iter_session_frames(seed, i, 1.0, 8.0, SIDE, SIDE))[:8] for i in range(len(paths))]
    images, noses = [], []
    for k in range(frames):
        canvas = np.full((SIDE, WIDTH, 3), 90, np.uint8)
        seen = {}
        for i, path in enumerate(paths):
            x = path(k)
            if x is None:
                continue
            tile = renders[i][k % len(renders[i])]
            lo, hi = max(0, x), min(WIDTH, x + SIDE)
            canvas[:, lo:hi] = tile.image[:, lo - x:hi - x]
            seen = {j: p for j, p in seen.items() if not lo - 8 <= p[0] < hi + 8}  # covered
            nose = (x + tile.keypoints["nose"][0], tile.keypoints["nose"][1])
            if lo + 8 <= nose[0] < hi - 8:
                seen[i] = nose
        images.append(canvas)
        noses.append(seen)
    return images, noses
