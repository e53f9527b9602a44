"""What a paper's reproduction is made of, declared as data: the inputs it needs (corpora, weight
files), how each corpus is preprocessed, the training runs (named experiments, repeats, staged
initialisations) and the results tables whose every cell names the run, the metric, the partition
and the paper's own number. `emotrack.reproduce` runs a :class:`Paper` and fills its tables.

Each paper's declaration sits in ``emotrack/config/experiments/<paper>.py`` beside the experiments
its rows use, with the paper's words (section, table) next to every number.
"""

from __future__ import annotations

import dataclasses

#: How a table cell aggregates a partition's sessions: the metric of all sessions concatenated
#: (AVEC 2016/2017 CCC), or the mean / max / min of the per-session values (AST-Net, Table 1:
#: "Max CC, Min CC and Mean CC of the testing videos").
AGGREGATES = ("concatenated", "mean", "max", "min")
#: The metrics a cell can name: CCC (Lin's concordance), PCC (Pearson's r), MAPE (in percent,
#: Teixeira et al. 2021, Eq. 5), and the test accuracy in percent of a pre-training stage (Teixeira
#: et al. 2021, Table 1).
METRICS = ("CCC", "PCC", "MAPE", "accuracy")
#: Weights a backbone can start from by name (Keras downloads and caches them).
KERAS_WEIGHTS = ("imagenet",)


@dataclasses.dataclass(frozen=True)
class Input:
    """A corpus or file the reproduction needs.

    Attributes:
        variable: the Makefile variable and, lower-cased, the ``emotrack reproduce`` option (``SEWA``).
        kind: ``dir`` or ``file``.
        what: what it must point to (the release's top folder, a weight file).
        obtain: where a researcher gets it.
        check: a path inside the folder that a real release has (``dir``), or the file suffix.
    """
    variable: str
    kind: str
    what: str
    obtain: str
    check: str = ""

    @property
    def option(self) -> str:
        return "--" + self.variable.lower()


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """One corpus preprocessed for the paper: the input that holds it, its spec and the options of
    ``emotrack preprocess`` (crop sets, rate)."""
    name: str
    input: str
    spec: str
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Pretraining:
    """A pre-training stage: a 2D backbone trained on a labelled face-image set (``emotrack pretrain``)
    whose weights a later training loads.

    Attributes:
        name: the run folder below ``pretrain/`` (unique in the paper).
        images: the :class:`Input` holding the image set.
        layout: the image set's release layout (``fer2013``: one CSV; ``rafdb``: the basic set).
        options: keyword arguments of the pre-training (backbone, sizes, epochs, learning rate).
        weights: the :class:`Input` whose file the backbone starts from (e.g. VGG-Face), or a name
            Keras knows (``imagenet``), or None (random).
        unavailable: why emotrack cannot run this stage as published (e.g. its starting weights are
            not among those it loads); such a stage is not run and its cells say why.
    """
    name: str
    images: str
    layout: str
    options: dict = dataclasses.field(default_factory=dict)
    weights: str | None = None
    unavailable: str = ""


@dataclasses.dataclass(frozen=True)
class Training:
    """One row's training: a named experiment on one preprocessed corpus, ``repeats`` seeds.

    Attributes:
        name: the run folder below ``runs/`` (unique in the paper).
        experiment: the named experiment (`emotrack experiments`).
        data: the :class:`Preprocessing` it trains on.
        repeats: seeds 0 .. repeats-1 (the paper's repeats).
        overrides: ``--set`` overrides on top of the experiment (e.g. one target dimension).
        init_from: role -> name of another training of this paper whose best run initialises this one
            (staged training, e.g. Tzirakis 2017's multimodal network).
        weights: where the backbone's weights come from (``model.options.weights``): a
            :class:`Pretraining` of this paper, an :class:`Input` (a weight file), or a name Keras
            knows (``imagenet``).
        weights_option: the model option that takes them (``weights``; AST-Net: ``attribute_weights``).
        smoke: this row's own ``--set`` overrides of ``--smoke`` (on top of the paper's).
        unavailable: why emotrack cannot run this row as published; it is not run and its cells say why.
    """
    name: str
    experiment: str
    data: str
    repeats: int = 1
    overrides: tuple[str, ...] = ()
    init_from: dict = dataclasses.field(default_factory=dict)
    weights: str | None = None
    weights_option: str = "weights"
    smoke: tuple[str, ...] = ()
    unavailable: str = ""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One number of a results table: ours (from ``training``'s runs, or from the pre-training
    ``stage``'s report for an ``accuracy`` cell) beside the paper's. A cell that names neither is
    quoted from the paper."""
    row: str
    column: str
    training: str | None
    dimension: str
    paper: float | None
    metric: str = "CCC"
    partition: str = "devel"
    kind: str = "raw"
    aggregate: str = "concatenated"
    stage: str | None = None

    def __post_init__(self):
        if (self.metric == "accuracy") != (self.stage is not None):
            raise ValueError(f"cell {self.row}/{self.column}: an accuracy cell names a pre-training stage, "
                             f"and only an accuracy cell does")
        if self.metric not in METRICS:
            raise ValueError(f"cell {self.row}/{self.column}: metric {self.metric!r} is not one of {METRICS}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"cell {self.row}/{self.column}: aggregate {self.aggregate!r} is not one of "
                             f"{AGGREGATES}")


@dataclasses.dataclass(frozen=True)
class Table:
    """A results table laid out as in the paper: ``rows`` x ``columns``, one :class:`Cell` each
    (a cell whose ``training`` is None is quoted from the paper, e.g. a challenge baseline)."""
    name: str
    caption: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, row: str, column: str) -> Cell | None:
        for c in self.cells:
            if c.row == row and c.column == column:
                return c
        return None


@dataclasses.dataclass(frozen=True)
class Paper:
    """A paper's whole staged protocol and its tables.

    Attributes:
        deviations: what emotrack does differently from the paper, or assumes where the paper is
            silent; listed in the reproduction's README.
        smoke: ``--set`` overrides that make every training tiny (``--smoke``).
        pretraining: the pre-training stages, run before the trainings.
        smoke_pretraining: options that make every pre-training tiny (``--smoke``).
        smoke_preprocessing: preprocessing options of ``--smoke`` (e.g. smaller crops).
    """
    name: str
    title: str
    inputs: tuple[Input, ...]
    preprocessing: tuple[Preprocessing, ...]
    trainings: tuple[Training, ...]
    tables: tuple[Table, ...]
    deviations: tuple[str, ...] = ()
    smoke: tuple[str, ...] = ()
    pretraining: tuple[Pretraining, ...] = ()
    smoke_pretraining: dict = dataclasses.field(default_factory=dict)
    smoke_preprocessing: dict = dataclasses.field(default_factory=dict)

    def training(self, name: str) -> Training:
        for t in self.trainings:
            if t.name == name:
                return t
        raise KeyError(f"{self.name} has no training {name!r}")

    def stage(self, name: str) -> Pretraining:
        for p in self.pretraining:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no pre-training stage {name!r}")

    def unavailable(self) -> dict[str, str]:
        """Pre-training stage or training name -> why it is not run."""
        return {x.name: x.unavailable for x in (*self.pretraining, *self.trainings) if x.unavailable}

    def check(self) -> None:
        """Every name a stage or cell uses exists (raised as ValueError naming it)."""
        inputs = {i.variable for i in self.inputs}
        data = {p.name for p in self.preprocessing}
        names = [t.name for t in self.trainings]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: training names repeat: {sorted(n for n in names if names.count(n) > 1)}")
        for p in self.preprocessing:
            if p.input not in inputs:
                raise ValueError(f"{self.name}: preprocessing {p.name} reads unknown input {p.input}")
        stages = {p.name for p in self.pretraining}
        for p in self.pretraining:
            if p.images not in inputs:
                raise ValueError(f"{self.name}: pre-training {p.name} reads unknown input {p.images}")
            if p.weights not in (None, *KERAS_WEIGHTS) and p.weights not in inputs:
                raise ValueError(f"{self.name}: pre-training {p.name} starts from unknown input {p.weights}")
        for t in self.trainings:
            if t.data not in data:
                raise ValueError(f"{self.name}: training {t.name} uses unknown data {t.data}")
            if t.weights not in (None, *KERAS_WEIGHTS) and t.weights not in inputs | stages:
                raise ValueError(f"{self.name}: training {t.name} loads unknown weights {t.weights}")
            for other in t.init_from.values():
                if other not in names:
                    raise ValueError(f"{self.name}: training {t.name} starts from unknown training {other}")
            if not t.unavailable and t.weights in stages and self.stage(t.weights).unavailable:
                raise ValueError(f"{self.name}: training {t.name} loads pre-training stage {t.weights}, which "
                                 f"cannot run; mark the training unavailable too")
        for table in self.tables:
            for c in table.cells:
                if c.stage is not None and c.stage not in stages:
                    raise ValueError(f"{self.name} {table.name}: cell {c.row}/{c.column} names unknown "
                                     f"pre-training stage {c.stage}")
                if c.training is not None and c.training not in names:
                    raise ValueError(f"{self.name} {table.name}: cell {c.row}/{c.column} names unknown "
                                     f"training {c.training}")
                if c.row not in table.rows or c.column not in table.columns:
                    raise ValueError(f"{self.name} {table.name}: cell {c.row}/{c.column} is outside the table")


PAPERS: dict[str, Paper] = {}


def register_paper(paper: Paper) -> Paper:
    paper.check()
    if paper.name in PAPERS:
        raise ValueError(f"paper {paper.name!r} is registered twice")
    PAPERS[paper.name] = paper
    return paper
