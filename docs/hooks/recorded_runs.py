"""The "Recorded runs" section of the Results page, from ``results/*/results.json``.

Each run folder is written by the reference runs (``python -m solutions run``): a
``results.json`` and its plots. The file is read by the class that writes it,
``solutions.run_record.RunRecord`` (a file of another schema version stops the build with
the command that migrates it). One summary table, then one section per run with the
machine, weights, data and protocol it used. Build-machine paths never reach the page:
a reader needs the file's name, not where it sat on the machine that made the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_table import fmt, lookup, table

from solutions.run_record import RunRecord, input_description  # noqa: F401 (results_page)

#: How each protocol's ``trainable`` setting reads in a table.
TRAINS = {
    "lecture-bug": "head only (the freezing bug)",
    "head": "head only (on purpose)",
    "fc": "fc6, fc7 and head",
    "last-block": "the last block and the head",
    "all": "every layer, from random init",
}

# An absolute path (not a URL, not a relative one): "/work/shared/data/x.zip" -> "x.zip".
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.+@-]+/)+([\w.+@-]+)")
# "/somewhere/solutions/__main__.py run ..." is what sys.argv holds for "python -m solutions".
_MAIN_MODULE = re.compile(r"(?<![\w.:/~-])/(?:[\w.+@-]+/)*?([A-Za-z_]\w*)/__main__\.py\b")


def without_paths(text: str) -> str:
    """``text`` with every absolute file path cut to its file name.

    ``python -m pkg`` commands recorded as ``/abs/pkg/__main__.py`` read as
    ``python -m pkg`` again.
    """
    text = _MAIN_MODULE.sub(lambda m: f"python -m {m.group(1)}", text)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def minutes(seconds: Any) -> str:
    """Seconds as minutes, "n/a" when unknown."""
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


@dataclass(frozen=True)
class RecordedRun:
    """One ``results/<name>/results.json`` written by ``python -m solutions run``."""

    folder: Path
    run: RunRecord

    @classmethod
    def load(cls, folder: Path) -> RecordedRun:
        """Read ``folder/results.json`` (``RunRecord.read``)."""
        return cls(folder, RunRecord.read(folder / "results.json"))

    @property
    def record(self) -> Mapping[str, Any]:
        """The record as its JSON fields."""
        return self.run.to_dict()

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def protocol(self) -> str:
        return self.run.protocol.name

    @property
    def size(self) -> Any:
        """The input size the run really used (which may differ from its protocol's)."""
        return self.run.size

    @property
    def protocol_line(self) -> str:
        """The protocol's name and what the run made of it (network, size, input)."""
        block = self.run.protocol
        line = f"`{block.name}`: {block.description}"
        if block.protocol_size != block.size:
            line += f" (run at {block.size} px; the protocol's default is {block.protocol_size} px)"
        return line

    @property
    def weights(self) -> str:
        return self.run.weights

    @property
    def data(self) -> str:
        source = without_paths(str(lookup(self.record, "data.source", "data", default="unknown")))
        if lookup(self.record, "data.synthetic"):
            return f"synthetic images, not CIFAR-10 ({source})"
        return source

    @property
    def machine(self) -> str:
        device = lookup(self.record, "device", default="unknown device")
        platform = lookup(self.record, "machine.platform")
        return f"{device} ({platform})" if platform else str(device)

    @property
    def jpeg_copy(self) -> bool:
        return not lookup(self.record, "data.synthetic") and "jpeg" in self.data.lower()

    @property
    def random_weights(self) -> bool:
        return self.run.random_weights

    @property
    def plots(self) -> list[Path]:
        return sorted(self.folder.glob("*.png"))


def anchor(name: str) -> str:
    """The id that the toc extension gives a heading made of ``name`` in backticks."""
    return re.sub(r"[^\w\- ]", "", name).strip().lower().replace(" ", "-")


def summary_table(runs: list[RecordedRun]) -> str:
    """One row per run: what it was and what it reached."""
    rows = [
        (
            f"[`{run.name}`](#{anchor(run.name)})",
            f"`{run.protocol}`",
            fmt(run.size, " px"),
            run.weights,
            "JPEG copy" if run.jpeg_copy else run.data,
            fmt(lookup(run.record, "epochs")),
            fmt(lookup(run.record, "test_acc"), "%"),
            str(lookup(run.record, "device", default="unknown")),
        )
        for run in runs
    ]
    header = ("run", "protocol", "input", "weights", "data", "epochs", "test acc", "machine")
    return table(header, rows)


def run_section(run: RecordedRun, *, show_command: bool) -> str:
    """A run's facts, notes on how to read them, and its plots.

    ``show_command``: the command that made the run is instructor material (it runs the
    reference solutions), so only the instructor build shows it.
    """
    record = run.record
    data_sizes = "/".join(
        fmt(lookup(record, f"data.{split}")) for split in ("train", "valid", "test")
    )
    subset = lookup(record, "data.subset_per_class")
    facts = [
        ("protocol", run.protocol_line),
        (
            "what trained",
            f"{TRAINS.get(lookup(record, 'protocol.trainable'), 'n/a')}, "
            f"{fmt(lookup(record, 'trainable_parameters'))} trainable parameters",
        ),
        ("input size", fmt(run.size, " px")),
        ("weights", run.weights),
        ("data", run.data),
        (
            "images train/valid/test",
            data_sizes + (f" (subset: {subset} per class)" if subset else ""),
        ),
        ("machine", run.machine),
        ("training path", lookup(record, "path")),
        ("epochs", fmt(lookup(record, "epochs"))),
        ("valid acc by epoch (%)", fmt(lookup(record, "valid_acc"))),
        ("test acc", fmt(lookup(record, "test_acc"), "%")),
        ("time", minutes(lookup(record, "total_seconds"))),
        (
            "software",
            f"torch {fmt(lookup(record, 'torch'))}, "
            f"torchvision {fmt(lookup(record, 'torchvision'))}, "
            f"Python {fmt(lookup(record, 'python'))}",
        ),
        ("finished", fmt(lookup(record, "finished"))),
    ]
    if show_command:
        facts.append(("command", f"`{lookup(record, 'command', default='n/a')}`"))
    rows = ((key, without_paths(fmt(value))) for key, value in facts)
    parts = [f"### `{run.name}`\n", table(("what", "value"), rows)]
    notes = []
    if run.random_weights:
        notes.append(
            "Random weights: these accuracies say nothing about transfer learning; the run only "
            "shows that the pipeline works end to end."
        )
    if lookup(record, "data.synthetic"):
        notes.append("Synthetic data: not CIFAR-10 at all.")
    if run.jpeg_copy:
        notes.append(
            "Data: the JPEG copy of CIFAR-10 (quality 75), whose pixels differ slightly from the "
            "original release; how much that moves accuracy has not been measured here."
        )
    if lookup(record, "interrupted"):
        notes.append("This run was interrupted before its last epoch.")
    lecture = lookup(record, "lecture_reported")
    if isinstance(lecture, Mapping) and lecture.get("test_acc") is not None:
        notes.append(
            f"The lecture reports {lecture['test_acc']:.2f}% test accuracy for this protocol "
            f"after 50 epochs ({lecture.get('note', '')}), on the original CIFAR-10 files."
        )
    if notes:
        parts.append("\n" + "\n".join(f"- {note}" for note in notes) + "\n")
    for plot in run.plots:
        caption = f"{plot.stem.replace('_', ' ')}: {run.name}"
        parts.append(f"\n![{caption}](results/{run.name}/{plot.name})\n")
    return "\n".join(parts)


def recorded_runs_section(results_dir: Path, *, show_command: bool = False) -> str:
    """One section per recorded run under ``results_dir``, or a note that none exist."""
    runs = [RecordedRun.load(p.parent) for p in sorted(results_dir.glob("*/results.json"))]
    if not runs:
        return (
            '!!! note "No recorded runs yet"\n'
            "    No run of the reference solutions is recorded in the repository yet "
            "(`results/*/results.json`).\n"
        )
    sections = "\n".join(run_section(run, show_command=show_command) for run in runs)
    return summary_table(runs) + "\n" + sections
