"""The layering contract: each stage package imports only from the stages before it in the data flow
(and from the shared ``emotrack.files``), and no modules import each other in a circle. Every import is
read from the source, the lazy ones inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1]

#: The stages in the order of the data flow; a package may import from itself and from those above it.
LAYERS = ("emotrack.files", "emotrack.corpora", "emotrack.media", "emotrack.synth", "emotrack.faces",
          "emotrack.records", "emotrack.preprocess", "emotrack.data", "emotrack.models", "emotrack.config",
          "emotrack.training", "emotrack.inference", "emotrack.evaluation", "emotrack.apps", "emotrack.reproduce",
          "emotrack.cli")


def module_name(path: Path, root: Path = SOURCE) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "cli":
        parts = ["emotrack", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_sources(root: Path = SOURCE) -> dict[str, Path]:
    files = [*(root / "emotrack").rglob("*.py"), *(root / "cli").rglob("*.py")]
    return {module_name(p, root): p for p in files}


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    sources = package_sources(root)
    return {name: imports_of(name, path, set(sources)) for name, path in sources.items()}


def against_the_flow(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {i}" for m, targets in graph.items() for i in targets if layer_of(i) > layer_of(m))


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The emotrack modules that ``name`` imports (``from a import b`` counts as ``a.b`` when that is
    a module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module)
    return {m for m in found if m in known and m != name}


def layer_of(module: str) -> int:
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return i
    return -1  # the top-level package: its version only


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_belongs_to_a_stage(graph):
    assert "emotrack.training.train" in graph and "emotrack.cli" in graph
    assert [m for m in graph if layer_of(m) < 0 and m != "emotrack"] == []


def test_no_import_runs_against_the_data_flow(graph):
    against = against_the_flow(graph)
    assert against == [], "imports against the flow:\n" + "\n".join(against)


def test_no_import_cycles(graph):
    cycles = import_cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_contract_finds_a_lazy_import_against_the_flow_and_a_cycle(tmp_path):
    """The checker on a made-up tree: a lazy import of an application from the input pipeline, and two
    modules of one stage that import each other (one of them relatively)."""
    for folder in ("emotrack/data", "emotrack/apps", "cli"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "emotrack" / "__init__.py").write_text("")
    (tmp_path / "emotrack/data/pipeline.py").write_text(
        "import numpy\n\ndef f():\n    from emotrack.apps.predict import x\n    from .clips import y\n")
    (tmp_path / "emotrack/data/clips.py").write_text("from emotrack.data import pipeline\n")
    (tmp_path / "emotrack/apps/predict.py").write_text("from emotrack.data.pipeline import f\nx = 1\n")
    graph = import_graph(tmp_path)
    assert graph["emotrack.data.pipeline"] == {"emotrack.apps.predict", "emotrack.data.clips"}
    assert against_the_flow(graph) == ["emotrack.data.pipeline -> emotrack.apps.predict"]
    circles = {frozenset(c.split(" -> ")) for c in import_cycles(graph)}
    assert circles == {frozenset({"emotrack.data.pipeline", "emotrack.apps.predict"}),
                       frozenset({"emotrack.data.pipeline", "emotrack.data.clips"})}
