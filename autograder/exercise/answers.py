"""The exercises' solution regions, generated from their answers in ``solutions/``.

Every answer is written once, as a function of ``solutions/exercise.py`` (the exercise
``transfer_learning``) or ``solutions/staged.py`` (``fine_tuning_in_stages``). The answer cells
of the exercise source hold the same function: its ``def`` line and docstring (what students
see around the stub) and, between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, its body.
``python -m autograder.exercise.answers --write`` rewrites those regions from the functions;
``--check`` (and ``tests/test_exercise_source.py``) fails when they differ.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from types import ModuleType

from autograder.exercise import exercise_source
from solutions import exercise as answers_module
from solutions import staged as staged_module

ANSWERS = Path(answers_module.__file__).resolve()
#: Assignment -> the module its answer cells are generated from.
MODULES: dict[str, ModuleType] = {
    "transfer_learning": answers_module,
    "fine_tuning_in_stages": staged_module,
}
#: An answer cell of the Jupytext source: its header line, then the function with its region.
CELL = re.compile(
    r"(?P<head># %% nbgrader=\{[^\n]*\"solution\": true[^\n]*\}\n)"
    r"(?P<body>def (?P<name>\w+)\(.*?### END SOLUTION\n)",
    re.S,
)


def answer_cells(answers: str) -> dict[str, str]:
    """Function name -> the answer cell's code: def, docstring, and the body as a region."""
    lines = answers.splitlines()
    cells = {}
    for node in ast.parse(answers).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        first = node.body[1] if ast.get_docstring(node) is not None else node.body[0]
        head = lines[node.lineno - 1 : first.lineno - 1]
        body = lines[first.lineno - 1 : node.end_lineno]
        cells[node.name] = "\n".join(
            [*head, "    ### BEGIN SOLUTION", *body, "    ### END SOLUTION", ""]
        )
    return cells


def generated(source: str, answers: str) -> str:
    """``source`` with every answer cell's function taken from ``answers``.

    Raises:
        KeyError: an answer cell defines a function that ``answers`` lacks.
    """
    cells = answer_cells(answers)
    return CELL.sub(lambda m: m.group("head") + cells[m.group("name")], source)


def answers_file(assignment: str) -> Path:
    """The file of ``solutions/`` that holds ``assignment``'s answers."""
    return Path(MODULES[assignment].__file__).resolve()


def main(argv: list[str] | None = None) -> int:
    """``--check`` (default): exit 1 when a source differs; ``--write``: regenerate them."""
    parser = argparse.ArgumentParser(prog="python -m autograder.exercise.answers")
    parser.add_argument("--write", action="store_true", help="rewrite the exercise sources")
    parser.add_argument(
        "--assignment", choices=sorted(MODULES), action="append", help="default: every one"
    )
    args = parser.parse_args(argv)
    status = 0
    for assignment in args.assignment or sorted(MODULES):
        path, answers = exercise_source(assignment), answers_file(assignment)
        source = path.read_text(encoding="utf-8")
        new = generated(source, answers.read_text(encoding="utf-8"))
        if args.write:
            path.write_text(new, encoding="utf-8")
        elif new != source:
            print(f"{path} differs from {answers}: run with --write", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
