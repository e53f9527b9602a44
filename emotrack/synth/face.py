"""Face frames for the synthetic corpus (`emotrack.synth.corpus`): one real portrait, made into many subjects.

MTCNN learned faces from photographs, so every frame is built from one: the public-domain US Navy
portrait of Grace Hopper that matplotlib ships as sample data. Per subject the head
and shoulders are cut out of it, mirrored or not, recoloured (skin tone, clothes and hair), sheared and
stretched, scaled and placed on a background of its own, under a lighting of its own. Per frame the face is
warped by smooth displacement fields around its landmarks so that it shows an expression:

- valence moves the mouth corners up (positive) or down (negative) and the middle of the lips the other
  way, so the mouth curves; negative valence lowers the brows and draws them together;
- arousal opens the eyes wide (the eye region stretched vertically) or narrows them (squashed, with the
  upper lids lowered), raises the brows a little, and sets how much and how fast the head moves
  (`emotrack.synth.corpus.head_motion`).

All of it is one backward mapping per frame (frame pixel -> template pixel, then one bilinear lookup), so a
160x128 frame costs one to two milliseconds.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

# Measured once with `mtcnn.MTCNN().detect_faces` (mtcnn 1.0.0) on the full 512x600 photograph
# (confidence 0.989). Pixel coordinates (x, y) in the photograph; "left" is the left of the image, as MTCNN
# names it.
PHOTO_BOX = (178.0, 110.0, 173.0, 220.0)  # x, y, width, height
PHOTO_KEYPOINTS = {
    "left_eye": (220.0, 190.0),
    "right_eye": (308.0, 186.0),
    "nose": (268.0, 237.0),
    "mouth_left": (232.0, 277.0),
    "mouth_right": (304.0, 273.0),
}

# Where the expression warps act, read off a 4x enlargement of the face with a 10-pixel grid (photograph
# coordinates). The brows sit just under the dark upper rim of the glasses, so the rim moves with them.
_PUPILS = np.array([[222.0, 189.0], [305.0, 186.0]])
_BROWS_OUTER = np.array([[203.0, 178.0], [326.0, 173.0]])
_BROWS_INNER = np.array([[247.0, 181.0], [285.0, 179.0]])
_MOUTH_CORNERS = np.array([[232.0, 277.0], [306.0, 274.0]])
_UPPER_LIP = np.array([268.0, 272.0])
_LOWER_LIP = np.array([268.0, 289.0])

# Strength of the expression, in photograph pixels (the face box is 173 pixels wide) at |affect| = 1. The
# values are large on purpose: a face 40-60 pixels wide in the frame, cropped and resized to 112x112 gray,
# must still show the change clearly to a small network.
_MOUTH_CORNER_LIFT = 15.0
_MOUTH_CORNER_SPREAD = 5.0
_LIP_COUNTER = 5.0
_BROW_LOWER = 9.0
_BROW_CONTRACT = 6.0
_BROW_RAISE = 8.0
_EYE_MAGNIFY = 0.6  # eye region is stretched vertically by exp(0.6 * arousal): x0.55 .. x1.82
_LID_DROP = 7.0

# The cut-out of head and shoulders: a polygon traced by hand on a 2x enlargement of the photograph with a
# 10-pixel grid (photograph coordinates). The photo is padded sideways by repeating its edge columns, which
# are dark uniform from y = 380 (left) and 420 (right) down, where the silhouette runs; so the shoulders
# reach the frame borders wherever the face is placed.
_CROP_X = (30, 500)
_PAD_X = 260
_SILHOUETTE = np.array(
    [[265.0, 20.0], [310.0, 28.0], [345.0, 55.0], [362.0, 80.0], [372.0, 100.0], [374.0, 150.0],
     [376.0, 210.0], [368.0, 265.0], [352.0, 300.0], [338.0, 325.0], [400.0, 352.0], [450.0, 372.0],
     [500.0, 425.0], [500.0 + _PAD_X, 500.0], [500.0 + _PAD_X, 600.0], [30.0 - _PAD_X, 600.0],
     [30.0 - _PAD_X, 480.0], [30.0, 400.0], [100.0, 372.0], [160.0, 350.0], [195.0, 330.0],
     [178.0, 290.0], [162.0, 250.0], [155.0, 205.0], [150.0, 150.0], [152.0, 110.0], [168.0, 75.0],
     [200.0, 45.0], [230.0, 28.0]]
)
# Skin is what is reddish (red minus blue) inside the face-and-ears ellipse or the neck box; that leaves
# the white collar, the gray hair and the cap to the other colourings. Below _CLOTHES_Y is the uniform.
_SKIN_ELLIPSE = ((266.0, 230.0), (93.0, 112.0))
_NECK_BOX = ((200.0, 290.0), (335.0, 420.0))  # top-left, bottom-right
_CLOTHES_Y = 345.0
# The eagle-and-shield badge and the gold leaves on the cap: MTCNN took the badge for a small second face
# in some frames (and a blurred badge in more), so both are painted over in the cap's dark colour, taken
# from the band below them. Ellipses (centre, radii) and a box (top-left, bottom-right).
_CAP_BADGE = ((258.0, 55.0), (42.0, 32.0))
_CAP_LEAVES = ((268.0, 89.0), (76.0, 18.0))
_CAP_BAND = ((185.0, 112.0), (340.0, 138.0))
# Hair colours as RGB gains on the gray hair: gray, dark brown, black, blond, auburn.
_HAIR_TINTS = np.array([[1.0, 1.0, 1.0], [0.5, 0.38, 0.3], [0.28, 0.27, 0.3], [1.05, 0.88, 0.6],
                        [0.8, 0.48, 0.32]])


@dataclasses.dataclass(frozen=True)
class SubjectLook:
    """What makes one synthetic subject look different from another (all drawn from the corpus seed).

    Sizes are fractions of the frame so that a look can be drawn once and rendered at any frame size.
    """

    flip: bool  # mirror the portrait left-right
    face_width: float  # width of the face box, fraction of the frame height (before `stretch`)
    centre: tuple[float, float]  # centre of the face box, fractions of frame width and height
    stretch: tuple[float, float]  # anisotropic scale of the head, x and y
    shear: float  # horizontal shear of the head (x += shear * y)
    skin_gain: tuple[float, float, float]  # RGB gains applied to the skin
    skin_gamma: float
    hair_tint: tuple[float, float, float]  # RGB gains on the gray hair (and cap)
    clothes_hue: float  # hue rotation of the uniform, radians
    clothes_gain: float
    background: tuple  # (colour_a, colour_b, angle, texture_amplitude, texture_scale, stripe_period,
    #                     stripe_amplitude, texture_seed)
    light_gain: float
    light_gamma: float
    shade: tuple[float, float]  # strength and direction (radians) of a directional shading gradient
    motion_gain: float  # this subject's head-movement temperament, multiplies the arousal-driven amount
    voice_pitch: float  # multiplies the fundamental frequency of the voice


def sample_subject_look(rng: np.random.Generator) -> SubjectLook:
    """Draw one subject's look from `rng` (a fixed number of draws, in a fixed order)."""
    # Skin: from the portrait's own tone (gains 1) to a dark brown, with some warmth jitter.
    darkness = rng.uniform(0.0, 1.0)
    light, dark = np.array([1.05, 1.0, 1.0]), np.array([0.58, 0.43, 0.33])
    gain = (1 - darkness) * light + darkness * dark
    warmth = rng.uniform(-0.08, 0.08)
    gain = gain * np.array([1 + warmth, 1.0, 1 - warmth])
    # Background colours: random, pulled a third of the way to their gray so they look like rooms.
    colour_a, colour_b = rng.uniform(0.1, 0.9, size=(2, 3))
    colour_a, colour_b = (c + (c.mean() - c) / 3 for c in (colour_a, colour_b))
    background = (
        tuple(colour_a), tuple(colour_b), float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.03, 0.12)),
        float(rng.uniform(0.04, 0.12)), float(rng.uniform(0.08, 0.3)), float(rng.uniform(0.0, 0.08)),
        int(rng.integers(2**31)),
    )
    return SubjectLook(
        flip=bool(rng.integers(2)),
        face_width=float(rng.uniform(0.34, 0.47)),
        centre=(float(rng.uniform(0.36, 0.64)), float(rng.uniform(0.45, 0.55))),
        stretch=(float(np.exp(rng.uniform(-0.12, 0.12))), float(np.exp(rng.uniform(-0.12, 0.12)))),
        shear=float(rng.uniform(-0.1, 0.1)),
        skin_gain=tuple(float(g) for g in gain),
        skin_gamma=float(rng.uniform(0.85, 1.2)),
        hair_tint=tuple(float(g) for g in _HAIR_TINTS[rng.integers(len(_HAIR_TINTS))]),
        clothes_hue=float(rng.uniform(0, 2 * np.pi)),
        clothes_gain=float(rng.uniform(0.6, 1.4)),
        background=background,
        light_gain=float(rng.uniform(0.85, 1.15)),
        light_gamma=float(rng.uniform(0.85, 1.2)),
        shade=(float(rng.uniform(0.05, 0.3)), float(rng.uniform(0, 2 * np.pi))),
        motion_gain=float(rng.uniform(0.7, 1.3)),
        voice_pitch=float(rng.uniform(0.8, 1.7)),
    )


@functools.lru_cache(maxsize=1)
def _portrait() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The padded portrait crop with its cut-out, skin and clothes masks.

    Returns:
        rgb: (600, W, 3) float32 in [0, 1]; alpha, skin, clothes: (600, W) float32 in [0, 1] (skin and
        clothes do not overlap; what is neither is hair and cap). Column 0 is photograph
        x = _CROP_X[0] - _PAD_X.
    """
    import matplotlib.cbook
    from PIL import Image
    from scipy import ndimage

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0
    crop = photo[:, _CROP_X[0]:_CROP_X[1]]
    rgb = np.pad(crop, ((0, 0), (_PAD_X, _PAD_X), (0, 0)), mode="edge")
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs += _CROP_X[0] - _PAD_X  # photograph coordinates

    def ellipse(spec):
        (cx, cy), (rx, ry) = spec
        return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0

    (bx0, by0), (bx1, by1) = _CAP_BAND
    band = (xs >= bx0) & (xs <= bx1) & (ys >= by0) & (ys <= by1)
    badge = ndimage.gaussian_filter((ellipse(_CAP_BADGE) | ellipse(_CAP_LEAVES)).astype(np.float32), 2.0)
    rgb = (1 - badge[..., None]) * rgb + badge[..., None] * np.median(rgb[band], axis=0)
    alpha = ndimage.gaussian_filter(_inside_polygon(xs, ys, _SILHOUETTE).astype(np.float32), 2.5)
    (nx0, ny0), (nx1, ny1) = _NECK_BOX
    region = ellipse(_SKIN_ELLIPSE) | ((xs >= nx0) & (xs <= nx1) & (ys >= ny0) & (ys <= ny1))
    reddish = np.clip((rgb[..., 0] - rgb[..., 2] - 0.06) / 0.12, 0.0, 1.0)
    skin = ndimage.gaussian_filter(region * reddish, 3.0)
    clothes = ndimage.gaussian_filter((ys > _CLOTHES_Y).astype(np.float32), 3.0) * (1 - skin)
    return rgb, alpha, skin, clothes


def _inside_polygon(xs: np.ndarray, ys: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon test for arrays of points; poly is (K, 2)."""
    inside = np.zeros(xs.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > ys) != (y1 > ys)
        x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0 + 1e-12)
        inside ^= crosses & (xs < x_at)
    return inside


def _hue_rotation(angle: float) -> np.ndarray:
    """3x3 RGB matrix rotating hue by `angle` about the gray axis (keeps gray gray)."""
    k = np.ones(3) / np.sqrt(3.0)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.cos(angle) * np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * np.outer(k, k)


def _background(look: SubjectLook, width: int, height: int) -> np.ndarray:
    """(height, width, 3) float32 background: a two-colour gradient, a soft texture and faint stripes."""
    from scipy import ndimage

    colour_a, colour_b, angle, tex_amp, tex_scale, stripe_period, stripe_amp, tex_seed = look.background
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5)) + 0.5
    u = np.clip(u, 0, 1)[..., None]
    bg = (1 - u) * np.asarray(colour_a, np.float32) + u * np.asarray(colour_b, np.float32)
    # Blurred noise gives an uneven wall; blurring keeps it free of the small dark blobs MTCNN could
    # mistake for eyes.
    tex_rng = np.random.default_rng(tex_seed)
    noise = ndimage.gaussian_filter(tex_rng.standard_normal((height, width, 3)).astype(np.float32),
                                    (tex_scale * height, tex_scale * height, 0))
    noise /= noise.std() + 1e-8
    stripes = np.sin(2 * np.pi * xs / (stripe_period * width))[..., None]
    return np.clip(bg + tex_amp * noise + stripe_amp * stripes, 0.0, 1.0).astype(np.float32)


class FaceRenderer:
    """Renders frames of one subject at a given affect and head pose.

    Args:
        look: the subject's `SubjectLook`.
        width, height: frame size in pixels.
    """

    def __init__(self, look: SubjectLook, width: int, height: int):
        from PIL import Image

        self.look, self.width, self.height = look, width, height
        rgb, alpha, skin, clothes = _portrait()
        if look.flip:
            rgb, alpha, skin, clothes = (a[:, ::-1] for a in (rgb, alpha, skin, clothes))
        # Skin, clothes, and hair with the cap each get their own colour transform.
        skin_rgb = rgb ** look.skin_gamma * np.asarray(look.skin_gain, np.float32)
        hue = _hue_rotation(look.clothes_hue).T.astype(np.float32)
        clothes_rgb = np.clip(rgb @ hue, 0, 1) * look.clothes_gain
        hair_rgb = rgb * np.asarray(look.hair_tint, np.float32)
        skin, clothes = skin[..., None], clothes[..., None]
        rgb = skin * skin_rgb + clothes * clothes_rgb + (1 - skin - clothes) * hair_rgb
        # The lighting gamma is applied here and to the background rather than to every frame (pow is
        # the costliest step otherwise); it differs from gamma-after-blending only in the blended seam.
        rgb = np.clip(rgb, 0, 1) ** look.light_gamma
        rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1)

        # Template: the portrait at the subject's face size, so that per-frame warps stay near scale 1 and
        # a bilinear lookup does not alias.
        self.scale = look.face_width * height / PHOTO_BOX[2]
        th, tw = (int(round(n * self.scale)) for n in rgba.shape[:2])
        channels = [np.asarray(Image.fromarray(np.ascontiguousarray(rgba[..., c], np.float32)).resize(
            (tw, th), Image.Resampling.LANCZOS)) for c in range(4)]
        # A one-pixel transparent border: lookups outside the template clamp onto it.
        template = np.pad(np.clip(np.stack(channels), 0, 1), ((0, 0), (1, 1), (1, 1)))
        self._template_size = template.shape[1:]  # (rows, columns)
        self._template = np.ascontiguousarray(template.reshape(4, -1), np.float32)  # (4, rows * columns)
        self._origin_x = _CROP_X[0] - _PAD_X  # photograph x of template column 0 (before padding)
        self._photo_width = rgb.shape[1]

        background = _background(look, width, height) ** look.light_gamma
        self._background = np.ascontiguousarray(background.reshape(-1, 3).T)  # (3, H * W)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._px, self._py = xs.ravel(), ys.ravel()  # frame coordinates of every pixel, (H * W,)
        strength, direction = look.shade
        along = np.cos(direction) * (xs / width - 0.5) + np.sin(direction) * (ys / height - 0.5)
        shade = 1 + strength * along
        self._light = (look.light_gain * shade).ravel().astype(np.float32)

        box_x, box_y, box_w, box_h = PHOTO_BOX
        self._anchor = self.to_template(np.array([[box_x + box_w / 2, box_y + box_h / 2]]))[0]
        self._frame_centre = np.array([look.centre[0] * width, look.centre[1] * height], np.float32)
        sx, sy = look.stretch
        self._shape = np.array([[sx, look.shear], [0.0, sy]], np.float32)
        # Expression sites in template coordinates. Mirroring swaps image-left and image-right, so sort
        # each pair by x again: index 0 is always the image-left one.
        self._pupils = self._pair(_PUPILS)
        self._brows_outer = self._pair(_BROWS_OUTER)
        self._brows_inner = self._pair(_BROWS_INNER)
        self._corners = self._pair(_MOUTH_CORNERS)
        self._upper_lip = self.to_template(_UPPER_LIP[None])[0]
        self._lower_lip = self.to_template(_LOWER_LIP[None])[0]
        # Beyond this box every footprint has fallen below a hundredth of a pixel.
        corners = self.to_template(np.array([[box_x - 10, box_y], [box_x + box_w + 10, box_y + box_h + 15]]))
        self._face_region = (corners.min(0), corners.max(0))

    def to_template(self, points: np.ndarray) -> np.ndarray:
        """Photograph (x, y) points, shape (K, 2), to template coordinates of this subject."""
        points = np.asarray(points, np.float64).copy()
        points[:, 0] -= self._origin_x
        if self.look.flip:
            points[:, 0] = self._photo_width - 1 - points[:, 0]
        return (points * self.scale + 1.0).astype(np.float32)  # +1: the transparent border

    def _pair(self, points: np.ndarray) -> np.ndarray:
        t = self.to_template(points)
        return t[np.argsort(t[:, 0])]

    def _affine(self, pose) -> tuple[np.ndarray, np.ndarray]:
        """Forward map template -> frame for a pose (dx, dy, rotation, zoom): p = M @ t + c."""
        dx, dy, rotation, zoom = (float(v) for v in pose)
        c, s = np.cos(rotation), np.sin(rotation)
        m = zoom * np.array([[c, -s], [s, c]], np.float32) @ self._shape
        offset = self._frame_centre + np.array([dx, dy], np.float32) - m @ self._anchor
        return m, offset

    def keypoints(self, pose=(0.0, 0.0, 0.0, 1.0)) -> dict[str, tuple[float, float]]:
        """The neutral (expressionless) landmarks in frame coordinates for `pose`, MTCNN's names."""
        m, offset = self._affine(pose)
        names = list(PHOTO_KEYPOINTS)
        pts = self.to_template(np.array([PHOTO_KEYPOINTS[n] for n in names])) @ m.T + offset
        out = dict(zip(names, map(tuple, pts.tolist())))
        if self.look.flip:
            out["left_eye"], out["right_eye"] = out["right_eye"], out["left_eye"]
            out["mouth_left"], out["mouth_right"] = out["mouth_right"], out["mouth_left"]
        return out

    def _expression(self, qx: np.ndarray, qy: np.ndarray, arousal: float, valence: float):
        """Backward displacement (dx, dy), each (N,), to add to template points (qx, qy) for an affect.

        Each site moves by a forward displacement d with a Gaussian footprint; evaluating the footprint
        around the moved site (c + d) makes "sample from q - d" an almost exact inverse of that move.
        """
        k = self.scale
        pos, neg = max(valence, 0.0), max(-valence, 0.0)
        sites, moves, sigmas = [], [], []
        lift = -_MOUTH_CORNER_LIFT * valence * k  # image y grows downwards
        spread = (_MOUTH_CORNER_SPREAD * pos - 0.4 * _MOUTH_CORNER_SPREAD * neg) * k
        sites += list(self._corners)
        moves += [(-spread, lift), (spread, lift)]
        sigmas += [13 * k, 13 * k]
        sites += [self._upper_lip, self._lower_lip]
        moves += [(0.0, 0.6 * _LIP_COUNTER * valence * k), (0.0, _LIP_COUNTER * valence * k)]
        sigmas += [10 * k, 10 * k]
        raise_ = _BROW_RAISE * max(arousal, 0.0) * k
        lower = _BROW_LOWER * neg * k
        contract = _BROW_CONTRACT * neg * k
        (lo, ro), (li, ri) = self._brows_outer, self._brows_inner
        sites += [lo, ro, li, ri]
        moves += [(0.0, 0.6 * lower - raise_), (0.0, 0.6 * lower - raise_),
                  (contract, lower - raise_), (-contract, lower - raise_)]
        sigmas += [10 * k] * 4
        # Low arousal: the upper lids drop over the eyes.
        drop = _LID_DROP * max(-arousal, 0.0) * k
        for p in self._pupils:
            sites.append(p + np.array([0.0, -7 * k], np.float32))
            moves.append((0.0, drop))
            sigmas.append(7 * k)
        moves = np.asarray(moves, np.float32)  # (J, 2)
        centres = np.asarray(sites, np.float32) + moves
        scale = (-0.5 / np.asarray(sigmas, np.float32) ** 2)[:, None]
        # (J, N) layouts keep numpy's inner loops long.
        weight = np.exp(((qx - centres[:, :1]) ** 2 + (qy - centres[:, 1:]) ** 2) * scale)
        dx, dy = -(moves[:, 0] @ weight), -(moves[:, 1] @ weight)
        # Eyes: vertical magnification about each pupil with an elliptic Gaussian footprint.
        shrink = 1.0 - np.exp(-_EYE_MAGNIFY * arousal)  # sample (1 - shrink) times as far from the pupil
        for px, py in self._pupils:
            ex, ey = qx - px, qy - py
            dy -= shrink * ey * np.exp(-0.5 * ((ex / (18 * k)) ** 2 + (ey / (12 * k)) ** 2))
        return dx, dy

    def render(self, arousal: float, valence: float, pose=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
        """One frame.

        Args:
            arousal, valence: affect in [-1, 1] shown by the face.
            pose: head pose (dx, dy in frame pixels, rotation in radians, zoom factor).

        Returns:
            (height, width, 3) uint8 RGB frame.
        """
        m, offset = self._affine(pose)
        inv = np.linalg.inv(m)
        x, y = self._px - offset[0], self._py - offset[1]
        qx, qy = inv[0, 0] * x + inv[0, 1] * y, inv[1, 0] * x + inv[1, 1] * y  # template coordinates
        (x0, y0), (x1, y1) = self._face_region
        near = np.flatnonzero((qx >= x0) & (qx <= x1) & (qy >= y0) & (qy <= y1))
        dx, dy = self._expression(qx[near], qy[near], float(arousal), float(valence))
        qx[near] += dx
        qy[near] += dy
        rgba = self._bilinear(qx, qy)
        out = (rgba[:3] + (1 - rgba[3]) * self._background) * self._light
        out = np.clip(out, 0, 1) * 255 + 0.5
        return out.astype(np.uint8).T.reshape(self.height, self.width, 3)

    def _bilinear(self, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        """Bilinear lookup of the premultiplied RGBA template at template points (qx, qy) -> (4, N)."""
        rows, cols = self._template_size
        x = np.clip(qx, 0, cols - 1.001)
        y = np.clip(qy, 0, rows - 1.001)
        x0, y0 = x.astype(np.int32), y.astype(np.int32)
        fx, fy = x - x0, y - y0
        i = y0 * cols + x0
        t = self._template
        a, b = np.take(t, i, axis=1), np.take(t, i + 1, axis=1)
        c, d = np.take(t, i + cols, axis=1), np.take(t, i + cols + 1, axis=1)
        top = a + (b - a) * fx
        bottom = c + (d - c) * fx
        return top + (bottom - top) * fy
