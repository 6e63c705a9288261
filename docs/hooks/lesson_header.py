"""The box that opens each lesson page: what made the outputs, what to read first,
how long the lesson takes to run, and where to get or open the notebook.

Not a hook itself: ``lesson_pages.py`` puts this box above each rendered lesson.
Everything in it is read from the notebook, never typed for the site:

- run mode: the outputs themselves (every lesson prints ``course.quick.banner`` first);
- time to run: ``metadata["course"]["execution"]``, which ``scripts/execute_lessons.py``
  writes (``{"seconds", "machine", "torch", "weights", "data"}``; a list of such records
  when several machines ran it; an optional ``"device"`` says "cpu" or "cuda: ...").
  Absent: "not measured". A GPU time is shown only when a record of a GPU run exists;
- prerequisites: ``metadata["course"]["prerequisites"]`` (a list of Markdown strings),
  else the previous lesson, since the lessons build on each other.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: What lesson 1 assumes, as the home page's "Who it is for" says.
FIRST_LESSON_PREREQUISITES = (
    "Python, and training a small network in PyTorch: a training loop, `nn.Module`, `DataLoader`.",
)
_GPU_WORDS = re.compile(r"\b(cuda|gpu|nvidia|h100|h200|a100|v100|t4|rtx)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RunMode:
    """Which kind of run made a notebook's outputs, as the outputs themselves say."""

    kind: str  # "quick" (random weights) | "laptop" (pretrained) | "real" | "unexecuted" | ...
    title: str
    detail: str


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook file as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def output_text(notebook: Mapping[str, Any]) -> str:
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

    notebook = read_notebook(path)
    if not any(cell.get("outputs") for cell in notebook.get("cells", [])):
        return RunMode(
            "unexecuted",
            "Not executed",
            "This notebook has no outputs yet. Run `python scripts/execute_lessons.py` "
            "and rebuild the site.",
        )
    text = output_text(notebook)
    if QUICK_MARK in text:
        weights = _printed_weights(text)
        if weights is None or "random" in weights.lower():
            return RunMode(
                "quick",
                "Outputs from laptop mode: random weights",
                "These outputs come from laptop (quick) mode with random weights, on a CPU; "
                "the lesson's first output says why. Shapes and parameter counts are exact; "
                "accuracies and plots show that the code runs, not what a pretrained model "
                "reaches. For the lecture's figures and recorded real runs see "
                "[Results](../results.md).",
            )
        return RunMode(
            "laptop",
            f"Outputs from laptop mode: {weights.rstrip('.')}",
            "These outputs were measured in laptop (quick) mode: real pretrained weights, "
            "a subset of CIFAR-10 (the JPEG copy) and a CPU; each output names its weights, "
            "data and machine. They show real transfer-learning effects at laptop scale, not "
            "the lecture's VGG16 figures: for those see [Results](../results.md).",
        )
    if REAL_MARK in text:
        return RunMode(
            "real",
            "Outputs from a real run",
            "These outputs come from a real run: pretrained weights and the full CIFAR-10 "
            "(the JPEG copy); each output names its weights and data. "
            "See also [Results](../results.md).",
        )
    return RunMode(
        "unlabelled",
        "Run mode not stated",
        "These outputs do not say which mode made them (the lesson should print "
        "`course.quick.banner`). Treat every figure as unverified.",
    )


def _printed_weights(text: str) -> str | None:
    """The ``Weights: ...`` line that the laptop-mode banner printed, without the prefix."""
    match = re.search(r"^Weights: (.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def notebook_title(notebook: Mapping[str, Any], default: str) -> str:
    """The notebook's first Markdown heading ("Lesson 1: A pretrained VGG16"), or ``default``."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        for line in ("".join(source) if isinstance(source, list) else source).splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return default


def executions(notebook: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The notebook's recorded executions (``metadata.course.execution``), maybe none."""
    recorded = notebook.get("metadata", {}).get("course", {}).get("execution")
    if isinstance(recorded, Mapping):
        recorded = [recorded]
    if not isinstance(recorded, Sequence) or isinstance(recorded, str):
        return []
    return [r for r in recorded if isinstance(r, Mapping) and r.get("seconds") is not None]


def on_gpu(record: Mapping[str, Any]) -> bool:
    """Whether an execution record is from a GPU run.

    Its ``device`` field decides ("cuda", "cuda: NVIDIA H200", "cpu"); a record without
    one counts as a GPU run only when its ``machine`` names a GPU.
    """
    if record.get("device"):
        return bool(_GPU_WORDS.search(str(record["device"])))
    return bool(_GPU_WORDS.search(str(record.get("machine", ""))))


def describe_time(record: Mapping[str, Any]) -> str:
    """ "3.2 min on <machine> (torch 2.x, weights ..., data ...)".

    A CPU run on a 2-core machine opens with the round figure a student can plan with:
    "about 4 min on a 2-core laptop CPU; measured: 3.2 min on <machine> (...)".
    """
    seconds = float(record["seconds"])
    took = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
    details = [f"{key} {record[key]}" for key in ("torch",) if record.get(key)]
    details += [f"{key}: {record[key]}" for key in ("weights", "data") if record.get(key)]
    where = f" on {record['machine']}" if record.get("machine") else ""
    measured = took + where + (f" ({', '.join(details)})" if details else "")
    if not on_gpu(record) and re.search(r"\b2 (CPU )?cores\b", str(record.get("machine", ""))):
        about = "under 1 min" if seconds < 60 else f"about {math.ceil(seconds / 60)} min"
        return f"{about} on a 2-core laptop CPU; measured: {measured}"
    return measured


def time_to_run(notebook: Mapping[str, Any]) -> tuple[str, str]:
    """(CPU line, GPU line): measured figures from the notebook, or "not measured"."""
    records = executions(notebook)
    cpu = [r for r in records if not on_gpu(r)]
    gpu = [r for r in records if on_gpu(r)]
    return (
        describe_time(cpu[-1]) if cpu else "not measured",
        describe_time(gpu[-1]) if gpu else "not measured",
    )


def prerequisites(notebook: Mapping[str, Any], previous: tuple[str, str] | None) -> list[str]:
    """What to know first, as Markdown-ish strings (backticks become code).

    ``previous``: (title, relative URL) of the lesson before, or ``None`` for the first.
    """
    listed = notebook.get("metadata", {}).get("course", {}).get("prerequisites")
    if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
        return list(listed)
    if previous is None:
        return list(FIRST_LESSON_PREREQUISITES)
    title, url = previous
    return [f"[{title}]({url})"]


def colab_and_binder(repo_url: str, branch: str, notebook_path: str) -> list[tuple[str, str]]:
    """(label, URL) pairs to open ``notebook_path`` of ``repo_url`` online.

    Colab opens notebooks from GitHub only; Binder opens any public git repository.
    """
    repo_url = repo_url.rstrip("/").removesuffix(".git")
    links = []
    github = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", repo_url)
    if github:
        slug = github.group(1)
        links.append(
            (
                "Open in Colab",
                f"https://colab.research.google.com/github/{slug}/blob/{branch}/{notebook_path}",
            )
        )
        links.append(
            (
                "Open in Binder",
                f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath={notebook_path}",
            )
        )
    elif repo_url.startswith("https://"):
        links.append(
            (
                "Open in Binder",
                f"https://mybinder.org/v2/git/{quote(repo_url, safe='')}/"
                f"{branch}?labpath={notebook_path}",
            )
        )
    return links


def inline_markdown(text: str) -> str:
    """Escape ``text`` and render its `code` spans and [links](url)."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)


#: The one statement about laptop and real mode, shared with the home page, "Get started",
#: the lessons index and the kit's README.
MODES_SNIPPET = Path(__file__).resolve().parents[1] / "snippets" / "modes.md"


def modes_html() -> str:
    """The modes statement (``docs/snippets/modes.md``) as HTML, for the lesson box."""
    import markdown

    return markdown.markdown(MODES_SNIPPET.read_text(encoding="utf-8"))


def header_html(
    mode: RunMode,
    notebook: Mapping[str, Any],
    *,
    notebook_name: str,
    results_url: str,
    previous: tuple[str, str] | None,
    open_links: list[tuple[str, str]],
) -> str:
    """The box above a lesson: run mode, prerequisites, time to run, download and open links."""
    # Random weights warn; measured pretrained outputs (laptop or real mode) inform.
    kind = {"quick": "warning", "laptop": "info", "real": "info"}.get(mode.kind, "failure")
    detail = inline_markdown(mode.detail).replace('href="../results.md"', f'href="{results_url}"')
    cpu, gpu = time_to_run(notebook)
    needs = "; ".join(inline_markdown(item) for item in prerequisites(notebook, previous))
    links = [f'<a href="{html.escape(notebook_name)}" download>Download this notebook</a>']
    links += [
        f'<a href="{html.escape(url)}" rel="noopener">{html.escape(label)}</a>'
        for label, url in open_links
    ]
    return (
        f'<div class="admonition {kind} course-run-mode" data-search-exclude>'
        f'<p class="admonition-title">{html.escape(mode.title)}</p>'
        f"<p>{detail}</p></div>\n"
        '<dl class="course-lesson-facts" data-search-exclude>'
        f"<dt>Before this lesson</dt><dd>{needs}</dd>"
        f"<dt>Time to run</dt><dd>CPU: {html.escape(cpu)}<br>"
        f"GPU: {html.escape(gpu)}</dd>"
        f"<dt>Notebook</dt><dd>{' · '.join(links)}; in the student kit: "
        f"<code>lessons/{html.escape(notebook_name)}</code></dd>"
        "</dl>\n"
        '<details class="course-modes" data-search-exclude>'
        "<summary>Laptop mode and real mode</summary>"
        f"{modes_html()}</details>\n"
    )
