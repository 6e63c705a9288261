"""The machine a measurement ran on, described once: CPU, cores, GPU, torch, load.

Every printed timing and every recorded run names its machine with these functions, so that
the descriptions agree word for word (``machine_label`` in lessons, runs and the demo;
``machine_record`` in ``results.json`` and the benchmarks' JSON).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` is empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_cores() -> int:
    """Logical CPUs of the machine (``os.cpu_count()``; 1 when unknown)."""
    return os.cpu_count() or 1


def usable_cores() -> int:
    """CPUs this process may use (its affinity mask where the system has one; else
    :func:`cpu_cores`)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return cpu_cores()


def cpu_label() -> str:
    """``"<CPU model>, N cores"``: the CPU part of :func:`machine_label`."""
    return f"{cpu_model()}, {cpu_cores()} cores"


def gpu_name() -> str | None:
    """The first CUDA GPU's name, or ``None`` without one."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def hardware_label() -> str:
    """The hardware part of :func:`machine_label`: CPU model, cores, and the GPU if any."""
    gpu = gpu_name()
    return cpu_label() + (f" | GPU {gpu}" if gpu else "")


def machine_label() -> str:
    """One line naming the machine: CPU model, cores, GPU if any, and the torch version."""
    import torch

    return f"{hardware_label()} | torch {torch.__version__}"


def device_label(device: Any) -> str:
    """A human name for a torch device: the GPU's model, or the CPU's model and its cores."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {cpu_label()}"


def load_average_values() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load average, or ``None`` where the system has none."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return one, five, fifteen


def load_average() -> str:
    """The load average as ``"1.2/0.9/0.7"`` (``"unknown"`` where there is none)."""
    values = load_average_values()
    return "unknown" if values is None else "/".join(f"{x:.1f}" for x in values)


def machine_record() -> dict[str, Any]:
    """The machine as JSON-ready fields, for records of runs and benchmarks."""
    record: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": cpu_cores(),
        "description": machine_label(),
    }
    gpu = gpu_name()
    if gpu:
        record["gpu"] = gpu
    return record
