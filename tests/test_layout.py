"""Data flows one way: files -> Event -> vectors -> index -> candidates -> features -> ranker -> suggestions ->
CLI / API / suggest / eval. No module imports from a room further down that flow, and every module says its job."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "recommender"
# Each room, in the order data flows through them; a module may import only from its own room or earlier ones.
FLOW = [
    (
        "recommender.atomic",
        "recommender.wording",
        "recommender.locking",
        "recommender.names",
        "recommender.onnx_export",
        "recommender.embed",
        "recommender.eventfile",
        "recommender.archive",
        "recommender.reading",
    ),
    ("recommender.index",),
    ("recommender.rank", "recommender.lifecycle"),  # the lifecycle builds an index with the lists its ranker makes
    ("recommender.truth", "recommender.judgments"),
    ("recommender.evaluate", "recommender.tune", "recommender.finetune", "recommender.suggest"),
    (
        "recommender.api",
        "recommender.review",
        "recommender.cli",
        "recommender.__main__",
        "recommender.environment",  # the serve settings name the query threads' variable
        "recommender.testing",
        "recommender.webguard",
    ),
]


def room(module: str) -> int:
    for level, rooms in enumerate(FLOW):
        if any(module == r or module.startswith(r + ".") for r in rooms):
            return level
    raise AssertionError(f"{module} is in no room of FLOW: add it where it belongs")


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text())
    return found


def test_no_module_imports_from_further_down_the_flow():
    backwards = []
    for name, tree in modules().items():
        if name == "recommender":
            continue  # the facade re-exports the rooms
        for node in ast.walk(tree):
            targets = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target.startswith("recommender.") and room(target) > room(name):
                    backwards.append(f"{name} imports {target}")
    assert not backwards, backwards


def test_every_module_says_its_job_in_its_docstring():
    missing = [name for name, tree in modules().items() if not (ast.get_docstring(tree) or "").strip()]
    assert not missing, missing
