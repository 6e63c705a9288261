"""MkDocs hook: the Results page, generated from the files it describes.

``docs/results.md`` holds prose and three markers, replaced at build time by:

- the lecture's reported figures, from ``solutions.protocols.PROTOCOLS``
  (``<!-- course:lecture-table -->``);
- the recorded runs, from ``results/*/results.json`` and their plots
  (``<!-- course:recorded-runs -->``, see ``recorded_runs.py``);
- the benchmarks, from ``benchmarks/results/*.json``
  (``<!-- course:benchmarks -->``, see ``benchmark_tables.py``).

Nothing on the page is typed by hand. ``mkdocs serve`` watches those folders.

The student build leaves the grading benchmarks out (``benchmarks/results/grading-*.json``):
they describe the autograder's sandbox, limits and reference submission, which students do
not need and should not study. The instructor build shows every record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audience import is_instructor_build
from benchmark_tables import benchmark_section, benchmarks_section
from markdown_table import table
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from recorded_runs import TRAINS, input_description, recorded_runs_section

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "results"
BENCHMARKS_DIR = ROOT / "benchmarks" / "results"
RESULTS_PAGE = "results.md"


def lecture_table() -> str:
    """The lecture's reported figures, one row per distinct run, from PROTOCOLS."""
    from solutions.protocols import PROTOCOLS

    # linear-probe deliberately repeats lecture-large's figures: one row, both names.
    groups: dict[Any, list[Any]] = {}
    for protocol in PROTOCOLS.values():
        if protocol.lecture is not None:
            groups.setdefault(protocol.lecture, []).append(protocol)
    rows = []
    for protocols in groups.values():
        first = protocols[0]
        figures = first.lecture
        rows.append(
            (
                "<br>".join(f"`{p.name}`" for p in protocols),
                f"{input_description(first.size, first.augment)}; "
                f"normalization: {first.normalization}",
                TRAINS.get(first.trainable, first.trainable),
                " / ".join(f"{acc:.1f}" for acc in figures.valid_acc_first_epochs),
                f"{figures.test_acc:.2f}%",
                f"{figures.minutes_50_epochs:.1f} min",
            )
        )
    header = ("protocol", "input", "trains", "val acc, epochs 1/2/3 (%)", "test acc", "50 epochs")
    return table(header, rows)


#: Benchmark records about grading (sandbox, limits, the reference's score): instructors only.
GRADING_RECORDS = "grading"


def student_benchmarks(benchmarks_dir: Path) -> str:
    """The benchmarks section of the student build: every record but the grading ones."""
    records = [
        p for p in sorted(benchmarks_dir.glob("*.json")) if not p.stem.startswith(GRADING_RECORDS)
    ]
    if not records:
        return (
            '!!! note "No benchmarks recorded yet"\n'
            "    No benchmark of the course's training code is recorded yet.\n"
        )
    return "\n".join(benchmark_section(path, benchmarks_dir) for path in records)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the recorded runs' and the benchmarks' plots as site files."""
    for run in sorted(p.parent for p in RESULTS_DIR.glob("*/results.json")):
        for plot in sorted(run.glob("*.png")):
            files.append(
                File.generated(config, f"results/{run.name}/{plot.name}", abs_src_path=str(plot))
            )
    instructor = is_instructor_build(config)
    for plot in sorted(BENCHMARKS_DIR.glob("*.png")):
        if not instructor and plot.stem.startswith(GRADING_RECORDS):
            continue
        files.append(
            File.generated(config, f"results/benchmarks/{plot.name}", abs_src_path=str(plot))
        )
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the Results page's markers; fail loudly if one is missing."""
    if page.file.src_uri != RESULTS_PAGE:
        return markdown
    instructor = is_instructor_build(config)
    generated = {
        "<!-- course:lecture-table -->": lecture_table,
        "<!-- course:recorded-runs -->": lambda: recorded_runs_section(
            RESULTS_DIR, show_command=instructor
        ),
        "<!-- course:benchmarks -->": lambda: (
            benchmarks_section(BENCHMARKS_DIR) if instructor else student_benchmarks(BENCHMARKS_DIR)
        ),
    }
    for marker, render in generated.items():
        if marker not in markdown:
            raise ValueError(f"{RESULTS_PAGE} lost its marker {marker}: cannot fill it")
        markdown = markdown.replace(marker, render())
    return markdown


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    """Rebuild when a run or a benchmark is recorded."""
    for folder in (RESULTS_DIR, BENCHMARKS_DIR):
        if folder.is_dir():
            server.watch(str(folder))
    return server
