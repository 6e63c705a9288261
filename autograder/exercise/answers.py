"""The exercise's solution regions, generated from :mod:`solutions.exercise`.

Every answer is written once, as a function of ``solutions/exercise.py``. The answer cells of
``transfer_learning.py`` hold the same function: its ``def`` line and docstring (what students
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

from autograder.exercise import exercise_source
from solutions import exercise as answers_module

ANSWERS = Path(answers_module.__file__).resolve()
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


def main(argv: list[str] | None = None) -> int:
    """``--check`` (default): exit 1 when the source differs; ``--write``: regenerate it."""
    parser = argparse.ArgumentParser(prog="python -m autograder.exercise.answers")
    parser.add_argument("--write", action="store_true", help="rewrite the exercise source")
    args = parser.parse_args(argv)
    path = exercise_source("transfer_learning")
    source = path.read_text(encoding="utf-8")
    new = generated(source, ANSWERS.read_text(encoding="utf-8"))
    if args.write:
        path.write_text(new, encoding="utf-8")
        return 0
    if new != source:
        print(f"{path} differs from {ANSWERS}: run with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
