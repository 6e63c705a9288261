"""What ``python -m course.check`` prints: whole failure messages, no kernel transport noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from course.check import Report, failure_lines, render, run_notebook

HINT = "Use the method instead: model.classifier[3].requires_grad_(True)"


def test_a_failure_shows_every_line_of_its_message_hint_included() -> None:
    report = Report(failed={"task2-test": f"AssertionError: fc7 is still frozen\n{HINT}"})
    text = render(report, "transfer_learning.ipynb", ran=True)
    assert "FAIL  'task2-test': AssertionError: fc7 is still frozen" in text
    assert HINT in text


def test_a_very_long_message_is_cut_and_says_so() -> None:
    lines = failure_lines("t", "x" * 5000)
    assert len("".join(lines)) < 2200 and "cut" in lines[-1]


@pytest.mark.slow
def test_running_a_notebook_prints_no_transport_warning(tmp_path: Path, capfd) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    cell = nbformat.v4.new_code_cell(
        f"assert 1 == 2, 'fc7 is still frozen\\n{HINT}'",
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "t-test"}},
    )
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    report = Report()
    run_notebook(nb, tmp_path / "n.ipynb", 60, report)
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err
    assert HINT in render(report, "n.ipynb", ran=True)
    assert not list(tmp_path.glob("kernel*")), "ipc sockets must not land beside the notebook"
