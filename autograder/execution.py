"""nbgrader preprocessors the pipeline adds: a guarded ``Execute`` and an output-size cap."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Bool, Integer, List, Unicode

from autograder.kernel_guard import DEFAULT_PRELOAD, PROTECTED, bootstrap_source, guard_source

#: Where the pipeline's findings go in the autograded notebook (read back by the worker).
METADATA_KEY = "autograder"
INTEGRITY_ERROR = "GradingIntegrityError"
#: Seconds allowed for the hidden bootstrap (imports of torch and the checks).
BOOT_TIMEOUT = 300
_CUT = "\n... output cut: more than {limit} characters (autograder limit) ...\n"


class GuardedExecute(Execute):
    """nbgrader's ``Execute``, plus the kernel guard and a cap on output held in memory.

    Before the first cell it runs :func:`autograder.kernel_guard.bootstrap_source`; before each
    graded test cell, :func:`autograder.kernel_guard.guard_source`. Neither appears in the
    notebook. When the guard cannot prove it ran (its nonce is missing) the test cell gets an
    error output, so it scores zero with a reason instead of passing unseen.
    """

    guard = Bool(True, help="Run the kernel guard before graded test cells.").tag(config=True)
    preload = List(
        Unicode(),
        list(DEFAULT_PRELOAD),
        help="Grading modules imported for real before the student's first cell.",
    ).tag(config=True)
    max_output_chars = Integer(
        20_000, help="Characters kept per cell while executing (-1: no cap)."
    ).tag(config=True)

    def preprocess(
        self, nb: NotebookNode, resources: Any = None, km: Any = None
    ) -> tuple[NotebookNode, Any]:
        """Execute ``nb``; record what the guard found in ``nb.metadata.autograder``."""
        self._booted = False
        self._findings: dict[str, Any] = {"restored": [], "integrity": [], "cut_outputs": []}
        self._chars: dict[int, int] = {}
        nb, resources = super().preprocess(nb, resources, km=km)
        nb.metadata[METADATA_KEY] = self._findings
        return nb, resources

    def preprocess_cell(
        self, cell: NotebookNode, resources: Any, index: int
    ) -> tuple[NotebookNode, Any]:
        """Run the hidden snippets this cell needs, then the cell itself."""
        if self.guard and not self._booted:
            self._booted = True
            # Importing torch and the checks takes seconds on a loaded machine; it is the
            # grader's cost, not the student's, so it does not count against the cell timeout.
            timeout, self.timeout = self.timeout, max(self.timeout or 0, BOOT_TIMEOUT)
            try:
                boot = self._run_hidden(bootstrap_source(self.preload), index)
            finally:
                self.timeout = timeout
            errors = [o for o in boot.outputs if o.output_type == "error"]
            if errors:
                self._findings["integrity"].append(
                    f"kernel guard failed to start: {errors[0].ename}: {errors[0].evalue}"
                )
        guarded = self.guard and cell.cell_type == "code" and is_grade(cell)
        verdict: str | None = None
        if guarded:
            verdict = self._guard(cell, index)
        cell, resources = super().preprocess_cell(cell, resources, index)
        if verdict is not None:
            cell.outputs.append(
                NotebookNode(
                    output_type="error",
                    ename=INTEGRITY_ERROR,
                    evalue=verdict,
                    traceback=[f"{INTEGRITY_ERROR}: {verdict}"],
                )
            )
        return cell, resources

    def _run_hidden(self, source: str, index: int) -> NotebookNode:
        hidden = NotebookNode(
            cell_type="code", source=source, metadata=NotebookNode(), outputs=[], id="guard"
        )
        real = self.nb.cells[index]
        try:
            return self.execute_cell(hidden, index, store_history=False)
        finally:
            # nbclient stores the executed cell at `index`; put the real one back.
            self.nb.cells[index] = real

    def _guard(self, cell: NotebookNode, index: int) -> str | None:
        """Run the guard before ``cell``; return why the cell cannot be trusted, or None."""
        nonce = secrets.token_hex(16)
        ran = self._run_hidden(guard_source(nonce), index)
        text = "".join(o.get("text", "") for o in ran.outputs if o.get("output_type") == "stream")
        grade_id = cell.metadata.nbgrader.get("grade_id", f"cell {index}")
        if nonce not in text:
            reason = (
                "the notebook changed how cells run (for example an input transformer or a "
                "replaced run_cell), so this test cell could not be trusted"
            )
            self._findings["integrity"].append(f"{grade_id}: {reason}")
            return reason
        try:
            restored = json.loads(text.split(nonce, 1)[1].strip().splitlines()[0])
        except (IndexError, ValueError):
            restored = ["(unreadable guard report)"]
        if restored:
            self._findings["restored"].append({"cell": grade_id, "restored": restored})
        return None

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: Any, cell_index: int
    ) -> NotebookNode | None:
        """Keep at most ``max_output_chars`` per cell, so a flood cannot exhaust memory."""
        if self.max_output_chars < 0:
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._chars.get(cell_index, 0)
        self._chars[cell_index] = used + size
        if used + size <= self.max_output_chars:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_chars:
            self._findings["cut_outputs"].append(cell_index)
            room = self.max_output_chars - used
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream" and room > 0:
                # Keep the start of the flood: it usually says what went wrong.
                content["text"] = content.get("text", "")[:room]
                super().output(outs, msg, display_id, cell_index)
            note = NotebookNode(
                output_type="stream",
                name="stdout",
                text=_CUT.format(limit=self.max_output_chars),
            )
            outs.append(note)
        return None


_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w., ]+))", re.M)


def grading_imports(source: NotebookNode) -> list[str]:
    """Grading modules (``autograder``, ``solutions``, ``course``) the source's cells import.

    These are preloaded in the kernel before any student code runs, so a student's file or
    ``sys.modules`` entry cannot stand in for them.
    """
    found: set[str] = set()
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        for m in _IMPORT.finditer(cell.source):
            names = [m.group(1)] if m.group(1) else m.group(2).split(",")
            for name in names:
                name = name.strip().split(" ")[0]
                if name.split(".")[0] in PROTECTED:
                    found.add(name)
    return sorted(found)


class CapOutputSize(NbGraderPreprocessor):
    """Cut every text output to ``max_chars`` and drop oversized rich outputs.

    Applied on the sanitized and the executed notebook, so neither a submitted notebook full of
    saved output nor one that prints a flood produces a feedback file of hundreds of MB.
    """

    max_chars = Integer(20_000, help="Characters kept per output (-1: no cap).").tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: Any, index: int
    ) -> tuple[NotebookNode, Any]:
        """Cut this cell's outputs."""
        if cell.cell_type != "code" or self.max_chars < 0:
            return cell, resources
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and len(output.text) > self.max_chars:
                output.text = output.text[: self.max_chars] + _CUT.format(limit=self.max_chars)
            elif output.output_type == "error":
                total = sum(len(line) for line in output.traceback)
                if total > self.max_chars:
                    output.traceback = [
                        output.traceback[-1][: self.max_chars],
                        _CUT.format(limit=self.max_chars),
                    ]
            elif "data" in output:
                for mime in list(output.data):
                    value = output.data[mime]
                    text = value if isinstance(value, str) else "".join(value)
                    if len(text) > self.max_chars:
                        if mime == "text/plain":
                            output.data[mime] = text[: self.max_chars] + _CUT.format(
                                limit=self.max_chars
                            )
                        else:
                            del output.data[mime]
                if not output.data:
                    output.data["text/plain"] = _CUT.format(limit=self.max_chars)
        return cell, resources
