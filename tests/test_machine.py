"""``course.machine``: one description of the machine, the same wherever it is printed."""

from __future__ import annotations

import os

import pytest
import torch

from course import machine, quick


def test_machine_label_names_the_cpu_its_cores_and_torch() -> None:
    label = machine.machine_label()
    assert label.startswith(machine.cpu_label())
    assert f"{os.cpu_count()} cores" in label and label.endswith(f"torch {torch.__version__}")
    assert quick.machine_label is machine.machine_label  # lessons' import path, same function


def test_device_label_of_the_cpu_is_the_machine_labels_cpu_part() -> None:
    assert machine.device_label("cpu") == f"cpu: {machine.cpu_label()}"
    assert machine.machine_label().split(" | ")[0] == machine.cpu_label()


def test_load_average_reads_the_system_or_says_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 0.5, 0.0))
    assert machine.load_average_values() == (1.25, 0.5, 0.0)
    assert machine.load_average() == "1.2/0.5/0.0"

    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert machine.load_average_values() is None and machine.load_average() == "unknown"


def test_machine_record_is_json_ready_and_agrees_with_the_label() -> None:
    record = machine.machine_record()
    assert record["description"] == machine.machine_label()
    assert record["cpu"] == machine.cpu_model() and record["cpu_count"] == machine.cpu_cores()
    assert ("gpu" in record) == torch.cuda.is_available()
