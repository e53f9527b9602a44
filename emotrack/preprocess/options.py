"""What preprocessing does to every frame (`PreprocessOptions`, written to the manifest as ``options``)
and what a run did (`PreprocessReport`).

Crop sets: ``crops`` names one or more sets (`emotrack.faces.crop.CROP_SPECS`: ``huang2018`` 112x112 gray,
``tzirakis2017`` 96x96 RGB, ``teixeira2021`` 100x80 RGB, ``astnet`` 224x224 RGB; or ``HxW[gray|rgb]``, see
`emotrack.faces.crop.parse_crops`), all cut from one face box in one pass (`emotrack.faces.crop.crop_faces`).
The first set is the record's ``frames``, so everything that reads ``frames`` works unchanged; every other
set ``<name>`` is stored as ``frames_<name>``, and `emotrack.data.pipeline.load_sessions` returns it as
``frames`` on request. Without ``crops``, one set of ``size`` and ``gray``. The manifest lists the sets
under ``crops`` and names the default one in ``frame``.

Image format: ``jpeg`` (quality 95, no chroma subsampling) by default, ``png`` on request. JPEG is lossy:
a stored crop differs from the crop cut by about one grey level on average (at most some 20 at sharp
edges; PSNR above 40 dB), while `emotrack.apps.predict` feeds its crops to the model unencoded. In return,
on the benchmark video (``make bench-preprocess``) JPEG writes a 112x112 gray crop in 0.09 ms against
PNG's 0.6 ms, and the four model families' crops of a frame in 1.2 ms against 7.6 ms, which makes PNG the
slowest stage of the pipeline with several crop sets (about 150 against 85 frames/s end to end on two
cores); the records are 1.6 to 3 times smaller, and tf.data decodes JPEG crops three times faster, at
every epoch. Use ``png`` for crops that must read back exactly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from emotrack.faces.crop import CropSpec, crop_set, crop_sets, parse_crops
from emotrack.faces.detect import SELECT, FaceDetector
from emotrack.faces.finder import FaceFinder, make_face_finder
from emotrack.faces.track import DEFAULT_EVERY
from emotrack.preprocess.align import RESAMPLE
from emotrack.records.tfrecord import IMAGE_FORMATS

#: ``faces``: one face per video (``select``'s), or every person, each a session of their own.
FACES = ("one", "all")


class PreprocessError(ValueError):
    """A run that cannot go on: nothing to preprocess, or an output that cannot be written."""


@dataclasses.dataclass
class PreprocessOptions:
    """What preprocessing does to every frame; written to the manifest as ``options``.

    ``crops``: crop sets (see `crop_set`), the first stored as ``frames``; with them, ``size`` and ``gray``
    are set to the first set's. ``min_face``: the smallest face the tracker (and `people_detector`) finds,
    as a fraction of the frame's shorter side; smaller faces are missed. 0.1 (36 px at 360p, 72 px at 720p) finds the faces of
    lab recordings (RECOLA, SEWA, SEMAINE: 0.3 of the frame and more), of the synthetic corpus (0.3-0.55)
    and of most in-the-wild footage (Aff-Wild2, AFEW-VA: two people side by side, a face in a wide shot).
    0.2 halves the time of the proposal stages but saves only about a tenth end to end (O-Net, which runs
    on every frame at any ``min_face``, dominates); None looks down to MTCNN's 20 pixels.
    ``faces``: ``one`` (the face ``select`` names, or the person on the spec's side) or ``all`` (every person a
    session of their own, `emotrack.preprocess.people`); ``min_track_s``: people seen for less are not
    written (``all``) or chosen (a side, unless nobody else is).
    """

    size: tuple[int, int] = (112, 112)      # (height, width) of the face crop, without crops
    gray: bool = True
    crops: tuple[str, ...] | None = None    # crop sets by name; the first is the default one
    margin: float = 0.2                     # fraction of the face box added around it
    align: bool = False                     # rotate each crop so that the eyes are level
    min_confidence: float = 0.9
    batch_size: int = 32                    # frames per MTCNN call
    select: str = "largest"
    tracker: bool = True                    # FaceTracker; False: MTCNN on every frame
    detect_every: int = DEFAULT_EVERY       # tracker: MTCNN's proposal stages every N frames
    min_face: float | None = 0.1            # tracker: smallest face, fraction of the shorter frame side
    image_format: str = "jpeg"
    max_length_mismatch_s: float = 1.0      # video vs ratings (and audio) duration tolerance
    rater: str | None = None                # one rater of a multi-rater corpus instead of their mean
    video_path: str | None = None           # replaces the spec's video path template
    video_fps: float | None = None          # replaces the spec's video frame rate
    audio: bool | None = None               # store audio; None: where the corpus has it
    fps: float | None = None                # keep this many frames per second (see `at_rate`); None: all
    resample: str = "linear"                # ratings at the frames' times: "linear" or "hold" (last step)
    faces: str = "one"                      # "all": one session per person (see emotrack.preprocess.people)
    min_track_s: float = 1.0                # faces all, left/right: people seen for less are left out

    def __post_init__(self):
        if self.crops is not None:
            self.crops = parse_crops(self.crops) if isinstance(self.crops, str) else \
                parse_crops(",".join(self.crops))
            first = crop_set(self.crops[0])[1]
            self.size, self.gray = (first.height, first.width), first.gray
        self.size = tuple(int(v) for v in self.size)
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {', '.join(SELECT)}, not {self.select!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, not {self.image_format!r}")
        if int(self.detect_every) < 1:
            raise ValueError(f"detect_every must be at least 1, not {self.detect_every}")
        if self.min_face is not None and not 0 < self.min_face <= 1:
            raise ValueError(f"min_face is a fraction of the frame's shorter side in (0, 1], not {self.min_face!r}")
        if self.fps is not None and not float(self.fps) > 0:
            raise ValueError(f"fps must be a positive frame rate, not {self.fps!r}")
        if self.resample not in RESAMPLE:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLE)}, not {self.resample!r}")
        if self.faces not in FACES:
            raise ValueError(f"faces must be one of {', '.join(FACES)}, not {self.faces!r}")
        if not float(self.min_track_s) >= 0:
            raise ValueError(f"min_track_s is a duration in seconds, 0 or more, not {self.min_track_s!r}")

    def crop_sets(self) -> dict[str, CropSpec]:
        """This run's crop sets by name, the default first (see `crop_sets`)."""
        return crop_sets(self.crops, self.size, self.gray)

    def face_finder(self) -> FaceFinder:
        """The face finder these options ask for (`emotrack.faces.finder.make_face_finder`)."""
        return make_face_finder(tracker=self.tracker, every=self.detect_every, min_face=self.min_face,
                                min_confidence=self.min_confidence, select=self.select,
                                batch_size=self.batch_size)

    def people_detector(self) -> FaceDetector:
        """MTCNN on every frame, every face kept, for `emotrack.faces.people.PeopleTracker` (``faces="all"``
        and the ``left`` / ``right`` sides), with ``min_face`` whatever ``tracker`` says: as ``emotrack
        predict --faces all`` finds people, so that a person has the id there that names their session."""
        return FaceDetector(min_confidence=self.min_confidence, batch_size=self.batch_size, min_face=self.min_face)

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values, as the manifest's ``options`` and a run's config hold them."""
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["crops"] = list(self.crops) if self.crops is not None else None
        return d


@dataclasses.dataclass
class PreprocessReport:
    """What a run did: ``done`` (manifest entries of the sessions in its manifest, ``skipped`` among them:
    those kept from an earlier run after their checksum was verified), ``failed``, ``unlabelled``;
    ``manifest`` the file written and ``merged`` whether the shard parts were merged into ``manifest.json``."""

    out_dir: Path
    done: list[dict[str, Any]]
    failed: list[dict[str, str]]
    unlabelled: list[dict[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    manifest: Path | None = None
    merged: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed
