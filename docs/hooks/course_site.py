"""MkDocs hook: bring the executed lessons and the recorded results into the site.

Three jobs, all at build time and all read-only on the repository:

1. Lessons: every executed notebook ``course/lessons/NN_*.ipynb`` becomes the page
   ``lessons/NN_*.ipynb`` (rendered by mkdocs-jupyter, never executed here). Only
   ``.ipynb`` files from ``course/lessons/`` are taken: Jupytext sources and the
   exercise (an instructor source with solutions) never reach the site. Each lesson
   page opens with a note saying which mode made its outputs.
2. Results: ``docs/results.md`` holds prose and markers; the markers are replaced
   by tables generated from ``solutions.protocols.PROTOCOLS`` (the lecture's
   figures), ``results/*/results.json`` (runs of the reference solutions, with
   their plots) and ``benchmarks/results/*.json``. Nothing there is typed by hand.
3. Limits: the table of grading limits in ``docs/instructor/enforcement.md`` is
   generated from ``autograder.limits.Limits``' defaults, so it cannot drift from them.
4. ``mkdocs serve`` also watches those folders, so a fresh run shows up live.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import TableOfContents, get_toc

log = logging.getLogger("mkdocs.hooks.course_site")

ROOT = Path(__file__).resolve().parents[2]
LESSONS_DIR = ROOT / "course" / "lessons"
RESULTS_DIR = ROOT / "results"
BENCHMARKS_DIR = ROOT / "benchmarks" / "results"
LESSONS_URI = "lessons"
RESULTS_PAGE = "results.md"
LIMITS_PAGE = "instructor/enforcement.md"

# --------------------------------------------------------------------------- files


def lesson_notebooks() -> list[Path]:
    """The executed lesson notebooks, in lesson order (their ``NN_`` prefix)."""
    return sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))


def run_dirs() -> list[Path]:
    """Folders under ``results/`` that hold a recorded run (a ``results.json``)."""
    return sorted(p.parent for p in RESULTS_DIR.glob("*/results.json"))


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the notebooks
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the lesson notebooks and the recorded runs' plots as site files."""
    for notebook in lesson_notebooks():
        # A real File rooted at course/ (not File.generated): mkdocs-jupyter's wrapper
        # recomputes abs_src_path from src_dir, which a generated file does not have.
        files.append(
            File(
                f"{LESSONS_URI}/{notebook.name}",
                src_dir=str(LESSONS_DIR.parent),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    for run in run_dirs():
        for plot in sorted(run.glob("*.png")):
            files.append(
                File.generated(config, f"results/{run.name}/{plot.name}", abs_src_path=str(plot))
            )
    for plot in sorted(BENCHMARKS_DIR.glob("*.png")):
        files.append(
            File.generated(config, f"results/benchmarks/{plot.name}", abs_src_path=str(plot))
        )
    return files


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    """Rebuild when a lesson is re-executed or a run is recorded."""
    for folder in (LESSONS_DIR, RESULTS_DIR, BENCHMARKS_DIR):
        if folder.is_dir():
            server.watch(str(folder))
    return server


# --------------------------------------------------------------------------- lessons


@dataclass(frozen=True)
class RunMode:
    """Which kind of run made a notebook's outputs, as the outputs themselves say."""

    kind: str  # "quick" | "real" | "unexecuted" | "unlabelled"
    title: str
    detail: str


def _output_text(notebook: Mapping[str, Any]) -> str:
    """All text a notebook's code cells printed or displayed."""
    parts: list[str] = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text")
            if text is None:
                text = output.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(parts)


def run_mode(path: Path) -> RunMode:
    """Read a lesson notebook's outputs and say which mode produced them.

    Every lesson prints ``course.quick.banner`` first, so the page states what
    the outputs themselves say, not what a setting claims.
    """
    from course.quick import QUICK_MARK, REAL_MARK

    notebook = json.loads(path.read_text(encoding="utf-8"))
    if not any(cell.get("outputs") for cell in notebook.get("cells", [])):
        return RunMode(
            "unexecuted",
            "Not executed",
            "This notebook has no outputs yet. Run `python scripts/execute_lessons.py` "
            "and rebuild the site.",
        )
    text = _output_text(notebook)
    if QUICK_MARK in text:
        return RunMode(
            "quick",
            "Outputs from quick mode: random weights",
            "These outputs come from quick mode (`COURSE_QUICK=1`): VGG16 with random "
            "weights, a small subset of CIFAR-10 (synthetic images where none was found; "
            "each output says which), a CPU. Plots and accuracies show that the code runs, "
            "not what a pretrained model reaches. "
            "For the lecture's figures and recorded real runs see [Results](../results.md).",
        )
    if REAL_MARK in text:
        return RunMode(
            "real",
            "Outputs from a real run",
            "These outputs come from a real run: ImageNet weights and the full CIFAR-10 "
            "(the JPEG copy); each output names its weights and data. "
            "See also [Results](../results.md).",
        )
    return RunMode(
        "unlabelled",
        "Run mode not stated",
        "These outputs do not say which mode made them (the lesson should print "
        "`course.quick.banner`). Treat every figure as unverified.",
    )


def _banner_html(mode: RunMode, page: Page) -> str:
    """The admonition placed above a lesson's rendered notebook, with a download link."""
    kind = {"quick": "warning", "real": "info"}.get(mode.kind, "failure")
    results_url = _relative_url(page, "results/")
    detail = html.escape(mode.detail)
    detail = re.sub(r"`([^`]+)`", r"<code>\1</code>", detail)
    detail = detail.replace("[Results](../results.md)", f'<a href="{results_url}">Results</a>')
    notebook = Path(page.file.src_uri).name
    return (
        f'<div class="admonition {kind} course-run-mode">'
        f'<p class="admonition-title">{html.escape(mode.title)}</p>'
        f"<p>{detail}</p>"
        f'<p><a href="{notebook}" download>Download this notebook</a> '
        f"(<code>course/lessons/{notebook}</code>, paired with its Jupytext source).</p></div>\n"
    )


def _relative_url(page: Page, target: str) -> str:
    """A link from ``page`` to a site-root-relative ``target`` (directory URLs aware)."""
    depth = page.url.count("/")
    return "../" * depth + target


def _is_lesson(page: Page) -> bool:
    return page.file.src_uri.startswith(f"{LESSONS_URI}/") and page.file.src_uri.endswith(".ipynb")


# Links between lessons are written for Jupyter ("02_freezing.ipynb", "README.md" for the
# list of lessons); on the site each lesson is a page of its own, one folder down from
# the lessons' index.
_NOTEBOOK_LINK = re.compile(r'href="(\d\d_[\w-]+)\.ipynb(#[^"]*)?"')
_README_LINK = re.compile(r'href="README\.md(#[^"]*)?"')
_HEADING = re.compile(r'<h([1-6]) id="([^"]+)">(.*?)<a class="anchor-link"', re.DOTALL)


def _link_lessons(html_text: str, files: Files) -> str:
    def replace(match: re.Match[str]) -> str:
        stem, fragment = match.group(1), match.group(2) or ""
        if files.get_file_from_path(f"{LESSONS_URI}/{stem}.ipynb") is None:
            return match.group(0)  # not on the site: leave it for the link check to report
        return f'href="../{stem}/{fragment}"'

    html_text = _NOTEBOOK_LINK.sub(replace, html_text)
    return _README_LINK.sub(lambda m: f'href="../{m.group(1) or ""}"', html_text)


def _toc_from_headings(html_text: str) -> TableOfContents:
    """The page's table of contents, read from the rendered headings.

    mkdocs-jupyter builds its own from a Markdown export that drops inline code, so a
    heading like "What `requires_grad` does" got the anchor of "What does", which
    exists nowhere on the page.
    """
    root: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for level, anchor, inner in _HEADING.findall(html_text):
        title = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        token = {"level": int(level), "id": anchor, "name": title, "children": []}
        while stack and stack[-1]["level"] >= token["level"]:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return get_toc(root)


def on_page_content(html_text: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Lesson pages: a note on which mode made the outputs, working links, a correct TOC."""
    if not _is_lesson(page):
        return html_text
    mode = run_mode(Path(page.file.abs_src_path))
    if mode.kind not in ("quick", "real"):
        # A warning fails `mkdocs build --strict`: a lesson whose outputs cannot be
        # attributed to a run is not fit to publish.
        log.warning("%s: %s", page.file.abs_src_path, mode.detail)
    page.toc = _toc_from_headings(html_text)
    return _banner_html(mode, page) + _link_lessons(html_text, files)


# --------------------------------------------------------------------------- results


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill a page's markers with tables generated from the files they describe."""
    generated = {
        RESULTS_PAGE: {
            "<!-- course:lecture-table -->": lecture_table,
            "<!-- course:recorded-runs -->": recorded_runs_section,
            "<!-- course:benchmarks -->": benchmarks_section,
        },
        LIMITS_PAGE: {"<!-- course:limits-table -->": limits_table},
    }
    for marker, render in generated.get(page.file.src_uri, {}).items():
        if marker not in markdown:
            raise ValueError(f"{page.file.src_uri} lost its marker {marker}: cannot fill it")
        markdown = markdown.replace(marker, render())
    return markdown


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ") for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _input_description(size: int, augment: bool) -> str:
    if augment:
        return f"Resize {size + 6}, RandomCrop {size} (test: CenterCrop {size})"
    return f"Resize {size}, no augmentation"


#: How each protocol's ``trainable`` setting reads in a table.
TRAINS = {
    "lecture-bug": "head only (the freezing bug)",
    "head": "head only (on purpose)",
    "fc": "fc6, fc7 and head",
    "last-block": "the last block and the head",
    "all": "every layer, from random init",
}


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
                f"{_input_description(first.size, first.augment)}; "
                f"normalization: {first.normalization}",
                TRAINS.get(first.trainable, first.trainable),
                " / ".join(f"{acc:.1f}" for acc in figures.valid_acc_first_epochs),
                f"{figures.test_acc:.2f}%",
                f"{figures.minutes_50_epochs:.1f} min",
            )
        )
    header = ("protocol", "input", "trains", "val acc, epochs 1/2/3 (%)", "test acc", "50 epochs")
    return _table(header, rows)


def _get(record: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The first of ``keys`` present in ``record`` (dotted keys reach into dicts)."""
    for key in keys:
        value: Any = record
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            return value
    return default


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{unit}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " / ".join(_fmt(v) for v in value)
    return f"{value}{unit}"


def _minutes(seconds: Any) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


@dataclass(frozen=True)
class RecordedRun:
    """One ``results/<name>/results.json`` written by ``python -m solutions run``."""

    folder: Path
    record: Mapping[str, Any]

    @classmethod
    def load(cls, folder: Path) -> RecordedRun:
        return cls(folder, json.loads((folder / "results.json").read_text(encoding="utf-8")))

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def protocol(self) -> str:
        return str(_get(self.record, "protocol.name", "protocol", default="unknown"))

    @property
    def weights(self) -> str:
        return str(_get(self.record, "weights", default="unknown"))

    @property
    def data(self) -> str:
        source = _get(self.record, "data.source", "data", default="unknown")
        if _get(self.record, "data.synthetic"):
            return f"synthetic images, not CIFAR-10 ({source})"
        return str(source)

    @property
    def machine(self) -> str:
        device = _get(self.record, "device", default="unknown device")
        platform = _get(self.record, "machine.platform")
        return f"{device} ({platform})" if platform else str(device)

    @property
    def jpeg_copy(self) -> bool:
        return not _get(self.record, "data.synthetic") and "jpeg" in self.data.lower()

    @property
    def random_weights(self) -> bool:
        return self.weights.lower().startswith("random")

    @property
    def plots(self) -> list[Path]:
        return sorted(self.folder.glob("*.png"))


def _summary_table(runs: list[RecordedRun]) -> str:
    rows = []
    for run in runs:
        rows.append(
            (
                f"[`{run.name}`](#{_anchor(run.name)})",
                f"`{run.protocol}`",
                run.weights,
                "JPEG copy" if run.jpeg_copy else run.data,
                _fmt(_get(run.record, "epochs")),
                _fmt(_get(run.record, "test_acc"), "%"),
                str(_get(run.record, "device", default="unknown")),
            )
        )
    header = ("run", "protocol", "weights", "data", "epochs", "test acc", "machine")
    return _table(header, rows)


def _anchor(name: str) -> str:
    """The id that the toc extension gives a heading made of ``name`` in backticks."""
    return re.sub(r"[^\w\- ]", "", name).strip().lower().replace(" ", "-")


def _run_section(run: RecordedRun) -> str:
    record = run.record
    data_sizes = "/".join(
        _fmt(_get(record, f"data.{split}")) for split in ("train", "valid", "test")
    )
    subset = _get(record, "data.subset_per_class")
    facts = [
        ("protocol", f"`{run.protocol}`: {_get(record, 'protocol.description', default='')}"),
        (
            "what trained",
            f"{TRAINS.get(_get(record, 'protocol.trainable'), 'n/a')}, "
            f"{_fmt(_get(record, 'trainable_parameters'))} trainable parameters",
        ),
        ("input size", f"{_fmt(_get(record, 'size'))} px"),
        ("weights", run.weights),
        ("data", run.data),
        (
            "images train/valid/test",
            data_sizes + (f" (subset: {subset} per class)" if subset else ""),
        ),
        ("machine", run.machine),
        ("training path", _get(record, "path")),
        ("epochs", _fmt(_get(record, "epochs"))),
        ("valid acc by epoch (%)", _fmt(_get(record, "valid_acc"))),
        ("test acc", _fmt(_get(record, "test_acc"), "%")),
        ("time", _minutes(_get(record, "total_seconds"))),
        (
            "software",
            f"torch {_fmt(_get(record, 'torch'))}, torchvision {_fmt(_get(record, 'torchvision'))},"
            f" Python {_fmt(_get(record, 'python'))}",
        ),
        ("finished", _fmt(_get(record, "finished"))),
        ("command", f"`{_get(record, 'command', default='n/a')}`"),
    ]
    parts = [f"### `{run.name}`\n", _table(("what", "value"), ((k, _fmt(v)) for k, v in facts))]
    notes = []
    if run.random_weights:
        notes.append(
            "Random weights: these accuracies say nothing about transfer learning; the run only "
            "shows that the pipeline works end to end."
        )
    if _get(record, "data.synthetic"):
        notes.append("Synthetic data: not CIFAR-10 at all.")
    if run.jpeg_copy:
        notes.append(
            "Data: the JPEG copy of CIFAR-10 (quality 75), whose pixels differ slightly from the "
            "original release; accuracies can differ from published ones by about a point."
        )
    if _get(record, "interrupted"):
        notes.append("This run was interrupted before its last epoch.")
    lecture = _get(record, "lecture_reported")
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


def recorded_runs_section() -> str:
    """One section per recorded run of the reference solutions, or a note that none exist."""
    runs = [RecordedRun.load(folder) for folder in run_dirs()]
    if not runs:
        return (
            '!!! note "No recorded runs yet"\n'
            "    No run of the reference solutions is recorded in the repository yet "
            "(`results/*/results.json`). See "
            "[Refresh the reference results](instructor/reference-runs.md) to make one.\n"
        )
    return _summary_table(runs) + "\n" + "\n".join(_run_section(run) for run in runs)


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _benchmark_rows(rows: list[Mapping[str, Any]]) -> str:
    """``benchmarks/bench_fast.py``'s rows: one line per protocol and path."""
    table = []
    for row in rows:
        for path in ("naive", "fast"):
            rates = row.get(path)
            if not isinstance(rates, Mapping):
                continue
            peak = rates.get("peak_gpu_mb", rates.get("peak_rss_mb"))
            speedup = row.get("speedup_epoch") if path == "fast" else None
            table.append(
                (
                    f"`{row.get('protocol', '?')}`",
                    _fmt(row.get("size")),
                    path,
                    _fmt(row.get("images")),
                    _rate(rates.get("train_ips")),
                    _rate(rates.get("eval_ips")),
                    _rate(rates.get("build_ips")),
                    _duration(rates.get("total_seconds")),
                    "-" if peak is None else f"{peak:,.0f}",
                    "" if speedup is None else f"{speedup:.1f}x",
                )
            )
    header = (
        "protocol",
        "px",
        "path",
        "images measured",
        "train img/s",
        "eval img/s",
        "cache build img/s",
        "50 epochs (projected)",
        "peak memory (MB)",
        "epoch speed-up",
    )
    return _table(header, table)


def _records_table(records: list[Mapping[str, Any]]) -> str:
    """Any other list of measurements (e.g. ``bench_grading.py``'s runs): one row each."""
    header = list(dict.fromkeys(key for record in records for key in record))
    return _table(header, ([_fmt(record.get(key)) for key in header] for record in records))


def _benchmark_section(path: Path) -> str:
    """One benchmark record: what it ran on, then its measurements as tables.

    Benchmarks differ in what they measure, so every field a record has is shown:
    scalars and small mappings (machine, limits) as facts, lists of measurements as
    tables. ``bench_fast.py``'s ``rows`` get a table of their own (naive and fast side by
    side), and its verbose ``settings`` are left to the JSON file.
    """
    record = json.loads(path.read_text(encoding="utf-8"))
    measured = {
        key: value
        for key, value in record.items()
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value)
    }
    facts = [
        (key.replace("_", " "), f"`{value}`" if key == "command" else _fmt(value))
        for key, value in record.items()
        if key not in measured and key != "settings"
    ]
    parts = [f"### `{path.stem}`\n", _table(("what", "value"), facts)]
    for key, rows in measured.items():
        table = _benchmark_rows(rows) if key == "rows" else _records_table(rows)
        parts.append(f"\n**{key}**\n\n{table}")
    for plot in sorted(BENCHMARKS_DIR.glob(f"{path.stem}*.png")):
        parts.append(f"\n![{plot.stem}](results/benchmarks/{plot.name})\n")
    return "\n".join(parts)


def benchmarks_section() -> str:
    """One section per benchmark record in ``benchmarks/results/``, or a note that none exist."""
    records = sorted(BENCHMARKS_DIR.glob("*.json"))
    if not records:
        return (
            '!!! note "No benchmarks recorded yet"\n'
            "    No benchmark result is recorded in the repository yet "
            "(`benchmarks/results/*.json`).\n"
        )
    return "\n".join(_benchmark_section(path) for path in records)


# --------------------------------------------------------------------------- grading limits

#: For each field of ``autograder.limits.Limits``: its option, how it is enforced, and what
#: happens when a submission reaches it. A field missing here still gets a row.
LIMITS = {
    "cell_timeout": (
        "`--cell-timeout`",
        "nbgrader's `Execute.timeout`: the kernel is interrupted",
        "the cell fails; later cells still run",
    ),
    "submission_timeout": (
        "`--submission-timeout`",
        "wall clock; then the whole process group, kernel included, is killed",
        "zero points, status `timeout`",
    ),
    "memory_mb": (
        "`--memory-mb` (`0`: none)",
        "address-space cap (`RLIMIT_AS`) on the grading process and its kernel",
        "`MemoryError` in the cell that allocates",
    ),
    "max_file_mb": ("", "file-size cap (`RLIMIT_FSIZE`)", "writing a larger file fails"),
    "network": (
        "`--network auto|off|allow`",
        "a private, empty network namespace (`unshare -rn`) where the machine allows it",
        "connections fail; where no namespace can be made, `auto` grades with the network "
        "up and says so, `off` refuses to grade",
    ),
    "max_output_chars": ("", "output kept per cell while it runs", "the rest is cut"),
}
UNITS = {"_timeout": "s", "_mb": "MiB", "_chars": "characters"}


def limits_table() -> str:
    """The grading limits with their defaults, read from ``autograder.limits.Limits``."""
    from dataclasses import fields

    from autograder.limits import Limits

    defaults = Limits()
    rows = []
    for field in fields(Limits):
        value = getattr(defaults, field.name)
        unit = next((u for suffix, u in UNITS.items() if field.name.endswith(suffix)), "")
        option, how, when = LIMITS.get(field.name, ("", "", "see `autograder/README.md`"))
        shown = f"{value:,} {unit}".strip() if isinstance(value, int) else f"`{value}`"
        rows.append((f"`{field.name}`", shown, option, how, when))
    return _table(("limit", "default", "option", "how", "when a submission reaches it"), rows)
