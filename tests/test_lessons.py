"""The seven lessons: they run in quick mode, stay paired, import only ``course``.

The execution tests run every lesson top to bottom in a fresh kernel, on a
temporary copy of ``course/lessons/``, in quick (laptop) mode with the tests'
smallest subsets (``COURSE_TEST=1``: CPU, a few images a class). The other tests
read the sources and the committed notebooks.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "course" / "lessons"
SOURCES = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
REFRESH = "refresh the notebooks with: python scripts/execute_lessons.py"
QUICK_NOTE = "QUICK MODE (laptop)"
#: Lessons that measure a transfer effect: executed with a pretrained network.
MEASURING = (
    "04_inputs",
    "05_training_and_evaluating",
    "06_beyond_vgg16",
    "07_fine_tuning_like_a_practitioner",
)
#: How a sentence written by course.reporting.compare starts its verdict.
VERDICT = re.compile(
    r"(the higher|the same) mean .*(the difference is real|cannot tell the two "
    r"apart|no seed spread was measured)"
)
EXECUTION_KEYS = {"seconds", "machine", "torch", "weights", "data"}

# The lessons import the course's helper package and the libraries it is built on, nothing
# from the instructor side (solutions, autograder), which students do not have.
ALLOWED_IMPORTS = {"course", "torch", "torchvision", "matplotlib"}


COUNT_LINES = {
    "lecture": re.compile(r"trainable parameters, lecture's code:\s+([\d,]+)"),
    "correct": re.compile(r"trainable parameters, requires_grad_\(\):\s+([\d,]+)"),
}


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "execute_lessons", ROOT / "scripts" / "execute_lessons.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


execute_lessons = _load_script()


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ())))
        for cell in notebook.cells
    ]


def _text_outputs(notebook: nbformat.NotebookNode) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append("".join(output["text"]))
            elif "text/plain" in output.get("data", {}):
                texts.append("".join(output["data"]["text/plain"]))
    return "\n".join(texts)


def _printed_counts(notebook: nbformat.NotebookNode) -> dict[str, int]:
    text = _text_outputs(notebook)
    counts = {}
    for key, pattern in COUNT_LINES.items():
        found = pattern.findall(text)
        assert len(found) == 1, f"expected one line matching {pattern.pattern!r}, got {found}"
        counts[key] = int(found[0].replace(",", ""))
    return counts


@pytest.fixture(scope="module")
def reference_counts() -> dict[str, int]:
    """Trainable counts from solutions.transfer: the lecture's code, and the correct one."""
    transfer = pytest.importorskip("solutions.transfer")
    model = transfer.load_vgg16("random")
    buggy = transfer.lecture_unfreeze(copy.deepcopy(model))
    correct = transfer.unfreeze(transfer.replace_head(transfer.freeze_backbone(model), 10))

    def trainable(net) -> int:
        return sum(p.numel() for p in net.parameters() if p.requires_grad)

    return {"lecture": trainable(buggy), "correct": trainable(correct)}


# --- structure ---------------------------------------------------------------------------


def test_seven_numbered_lessons_listed_in_the_readme_the_site_and_the_doctor() -> None:
    from course.doctor import LESSONS as DOCTOR_LESSONS

    assert len(SOURCES) == 7, [s.name for s in SOURCES]
    readme = (LESSONS / "README.md").read_text()
    index = (ROOT / "docs" / "lessons" / "index.md").read_text()
    navs = [(ROOT / name).read_text() for name in ("mkdocs.yml", "mkdocs-instructor.yml")]
    for source in SOURCES:
        assert f"({source.stem}.ipynb)" in readme, f"README.md does not link {source.stem}.ipynb"
        assert f"({source.stem}.ipynb)" in index, f"docs/lessons/index.md misses {source.stem}"
        for nav in navs:
            assert f"lessons/{source.stem}.ipynb" in nav, f"a mkdocs nav misses {source.stem}"
        assert source.stem[:2] in DOCTOR_LESSONS, f"course.doctor.LESSONS misses {source.stem}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_first_cell_prints_the_doctors_summary_for_its_own_lesson(source: Path) -> None:
    code = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    # code[0] is the parameter cell; the setup cell after it is the first that runs anything.
    assert f'print_summary("{source.stem[:2]}")' in code[1], (
        f"{source.name}: its setup cell must call print_summary({source.stem[:2]!r}) (contract C4)"
    )


@pytest.mark.parametrize("stem", MEASURING)
def test_measuring_lessons_check_their_inputs_and_conclude_from_their_numbers(stem: str) -> None:
    source = (LESSONS / f"{stem}.py").read_text()
    assert "require_real(" in source, f"{stem}: measurement cells must call require_real first"
    assert "compare(" in source, f"{stem}: measurement cells must end with a computed sentence"
    notebook = nbformat.read(LESSONS / f"{stem}.ipynb", as_version=4)
    verdicts = VERDICT.findall(_text_outputs(notebook))
    assert verdicts, f"{stem}.ipynb prints no computed conclusion; {REFRESH}"


def test_lesson_5_lists_every_recorded_run() -> None:
    recorded = sorted((ROOT / "results").glob("**/results.json"))
    notebook = nbformat.read(LESSONS / "05_training_and_evaluating.ipynb", as_version=4)
    text = _text_outputs(notebook)
    if recorded:
        assert f"{len(recorded)} run(s) recorded in results/" in text, REFRESH
    for path in recorded:
        name = json.loads(path.read_text()).get("protocol", {})
        name = name.get("name") if isinstance(name, dict) else name
        assert f"{name or path.parent.name} (" in text, f"lesson 5 does not list {path}; {REFRESH}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_in_sync(source: Path) -> None:
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing; {REFRESH}"
    from_py, from_ipynb = _cells(jupytext.read(source)), _cells(jupytext.read(paired))
    assert len(from_py) == len(from_ipynb), (
        f"{paired.name} has {len(from_ipynb)} cells, {source.name} has {len(from_py)}; {REFRESH}"
    )
    for number, (a, b) in enumerate(zip(from_py, from_ipynb, strict=True)):
        assert a == b, f"cell {number} differs between {source.name} and {paired.name}; {REFRESH}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_lesson_starts_with_a_title_and_a_parameter_cell(source: Path) -> None:
    cells = jupytext.read(source).cells
    assert cells[0].cell_type == "markdown" and re.match(r"# \S", cells[0].source), (
        f"{source.name} must start with a level-1 markdown title (the site uses it)"
    )
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", ())]
    assert len(tagged) == 1 and "QUICK = None" in tagged[0].source, (
        f"{source.name} needs one cell tagged 'parameters' that sets QUICK = None"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_lesson_imports_only_course_and_its_libraries(source: Path) -> None:
    tree = ast.parse(source.read_text(), filename=str(source))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"solutions", "autograder"}, f"{source.name} imports {imported}"
    unexpected = imported - ALLOWED_IMPORTS - set(sys.stdlib_module_names)
    assert not unexpected, f"{source.name} imports {sorted(unexpected)}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_in_quick_mode(source: Path) -> None:
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{source.stem} is not executed; {REFRESH}"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{source.stem} holds an error output; {REFRESH}"
    # The note must sit on the output near the top, where a reader of the page sees it first.
    top = _text_outputs(nbformat.from_dict({"cells": code[:3]}))
    assert QUICK_NOTE in top, f"{source.stem}: no quick-mode note at the top"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_records_its_execution(source: Path) -> None:
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    record = notebook.metadata.get("course", {}).get("execution")
    assert isinstance(record, dict), f"{source.stem}: no metadata.course.execution; {REFRESH}"
    assert set(record) == EXECUTION_KEYS, f"{source.stem}: execution record {record}"
    assert isinstance(record["seconds"], float) and record["seconds"] > 0
    for key in EXECUTION_KEYS - {"seconds"}:
        assert record[key] and record[key] != "unknown", f"{source.stem}: {key} is {record[key]!r}"


@pytest.mark.parametrize("stem", MEASURING)
def test_measuring_lessons_were_executed_with_pretrained_weights_on_real_data(stem: str) -> None:
    notebook = nbformat.read(LESSONS / f"{stem}.ipynb", as_version=4)
    record = notebook.metadata["course"]["execution"]
    assert record["weights"].startswith("imagenet"), (
        f"{stem}.ipynb was executed with {record['weights']!r}; its figures must show a "
        f"pretrained network (../shared/data/mobilenet-v2-imagenet); {REFRESH}"
    )
    assert record["data"].startswith("CIFAR-10"), f"{stem}.ipynb data: {record['data']!r}"
    assert "(train/valid/test 20/" not in record["data"], (
        f"{stem}.ipynb holds the tests' tiny subsets (--test); {REFRESH}"
    )


def test_committed_plots_are_inline_pngs() -> None:
    for stem in MEASURING:
        notebook = nbformat.read(LESSONS / f"{stem}.ipynb", as_version=4)
        images = [
            o
            for c in notebook.cells
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        assert images, f"{stem}.ipynb holds no PNG figure; {REFRESH}"


def test_committed_freezing_counts_match_solutions(reference_counts: dict[str, int]) -> None:
    notebook = nbformat.read(LESSONS / "02_freezing.ipynb", as_version=4)
    assert _printed_counts(notebook) == reference_counts
    assert reference_counts == {"lecture": 40_970, "correct": 119_586_826}


# --- execution ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lesson_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway copy of the lessons folder, so execution never touches the real one."""
    folder = tmp_path_factory.mktemp("lessons")
    for path in [*SOURCES, LESSONS / "jupytext.toml"]:
        shutil.copy2(path, folder / path.name)
    shutil.copytree(LESSONS / "assets", folder / "assets")  # lesson 7's own image
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_lesson_runs_in_quick_mode(
    source: Path,
    lesson_copy: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nbclient.exceptions import CellExecutionError

    from course.doctor import diagnose

    monkeypatch.setenv("COURSE_QUICK", "1")
    found = diagnose(source.stem[:2])
    if source.stem in MEASURING and (
        found.data_kind == "synthetic" or found.weights_kind == "random"
    ):
        # No real CIFAR-10 or no pretrained weights here: the lesson must stop at its first
        # measurement with the doctor's remedy, not print meaningless figures.
        with pytest.raises(CellExecutionError, match="this cell stops here"):
            execute_lessons.execute_lesson(
                lesson_copy / source.name, quick=True, test=True, cell_timeout=300
            )
        return
    executed = execute_lessons.execute_lesson(
        lesson_copy / source.name, quick=True, test=True, cell_timeout=300
    )
    text = _text_outputs(executed.notebook)
    assert QUICK_NOTE in text
    assert set(executed.execution) == EXECUTION_KEYS
    assert not execute_lessons.stderr_outputs(executed.notebook), (
        f"{source.stem} wrote to stderr (warnings or progress bars show on the site): "
        f"{execute_lessons.stderr_outputs(executed.notebook)}"
    )
    if source.stem == "02_freezing":
        assert _printed_counts(executed.notebook) == request.getfixturevalue("reference_counts")
