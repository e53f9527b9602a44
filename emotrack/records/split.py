"""Partitions as a run sees them: the corpus's own (train, devel, test) and, where a run asks for a
validation split (``data.validation``), the training subjects it holds out as ``validation``.

Papers that report on a challenge's development set choose their model on subjects taken from the
training set (Huang et al. 2018, Sec. 4.1: "the first 26 subjects are used to train model and the
left 8 subjects are used to adjust the parameters"); the split is by subject, so no subject is on
both sides, and it is recorded in the run's config.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

VALIDATION = "validation"
ORDERS = ("last", "random")


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def held_out_subjects(manifest: dict[str, Any], validation: dict[str, Any] | None) -> list[str]:
    """The training subjects that ``validation`` (``{"subjects": n, "order": "last"|"random",
    "seed": s}``) holds out, sorted; [] when it holds out none.

    ``last`` takes the last n subjects in natural order (Train_27 .. Train_34 of 34); ``random``
    draws n with the seed.

    Raises:
        ValueError: an unknown order, or a split that leaves no training subject.
    """
    validation = validation or {}
    n = int(validation.get("subjects", 0) or 0)
    if n <= 0:
        return []
    order = validation.get("order", "last")
    if order not in ORDERS:
        raise ValueError(f"data.validation.order must be one of {', '.join(ORDERS)}, not {order!r}")
    subjects = sorted({s["subject"] for s in manifest["sessions"] if s["partition"] == "train"}, key=_natural)
    if n >= len(subjects):
        raise ValueError(f"data.validation.subjects={n} would hold out all {len(subjects)} training subjects; "
                         f"hold out fewer")
    if order == "last":
        return subjects[-n:]
    rng = np.random.default_rng(int(validation.get("seed", 0)))
    return sorted((subjects[i] for i in rng.choice(len(subjects), size=n, replace=False)), key=_natural)


def session_partition(session: dict[str, Any], held_out: list[str]) -> str:
    """A manifest session's partition as the run sees it."""
    if session["partition"] == "train" and session["subject"] in held_out:
        return VALIDATION
    return session["partition"]


def select_sessions(manifest: dict[str, Any], partitions: str | list[str] | None,
                    validation: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The manifest's sessions of ``partitions`` (None: all) as the run sees them, in manifest order."""
    if isinstance(partitions, str):
        partitions = [partitions]
    held_out = held_out_subjects(manifest, validation)
    return [s for s in manifest["sessions"] if partitions is None or session_partition(s, held_out) in partitions]


def selection_partition(validation: dict[str, Any] | None) -> str:
    """The partition that picks the checkpoint and fits post-processing: ``validation`` where the
    run holds subjects out, else ``devel``."""
    return VALIDATION if int((validation or {}).get("subjects", 0) or 0) > 0 else "devel"
