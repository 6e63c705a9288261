"""Runs a prepared notebook inside the sandbox: ``python runner.py JOB.json``.

This file is copied into the submission's scratch folder and started there, inside the
sandbox, by :mod:`autograder.submission`. It must stay standalone: it imports only the
standard library, ``nbformat``, ``nbclient`` and ``jupyter_client`` (never ``autograder`` or
``solutions``, which the sandbox hides). Everything it writes is untrusted data for the grader:
the student's code runs beside it and could change any of it.

It executes every cell with a per-cell timeout (the kernel is interrupted and the next cells
still run), keeps at most ``max_output_chars`` of output per cell, and writes the executed
notebook and a small status file. A kernel that ignores the interrupt is killed and the
status says "unresponsive"; a kernel that dies says "dead".

Secret cell prefixes (contract C1): the grader writes ``{grade_id: "one line"}`` as JSON on
this process's standard input. The runner first makes itself non-dumpable
(``prctl(PR_SET_DUMPABLE, 0)``: the kernel, same user, can then read neither its memory nor
its ``/proc`` files), reads the map, and prepends a cell's line to the source it sends to the
kernel only when that cell runs. The map is never written anywhere; the executed notebook
keeps the original source.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

#: Seconds a kernel has to answer after the interrupt sent at the cell timeout.
GRACE = 15
CUT = "\n... output cut: more than {limit} characters (autograder limit) ...\n"


PR_SET_DUMPABLE = 4


def make_private() -> None:
    """Make this process non-dumpable: no ptrace, ``/proc/PID/mem`` or ``environ`` for others."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def read_prefixes(stream: Any) -> dict[str, str]:
    """The grade_id -> line map from the grader (an empty or unreadable input gives none)."""
    try:
        data = json.loads(stream.read() or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}


class CappedClient(NotebookClient):
    """nbclient's client with a cap on the output it keeps per cell, and secret prefixes."""

    max_output_chars = 20_000
    cell_prefix: dict[str, str] = {}

    async def async_execute_cell(
        self, cell: Any, cell_index: int, execution_count: Any = None, store_history: bool = True
    ) -> Any:
        """Run ``cell``; a cell with a prefix runs as prefix + source (the saved source stays)."""
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        prefix = self.cell_prefix.pop(grade_id, None) if grade_id else None
        if prefix is None or cell.get("cell_type") != "code":
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        original = cell.source
        cell.source = prefix + "\n" + original
        try:
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        finally:
            cell.source = original

    def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
        """Keep at most ``max_output_chars`` per cell, so a flood cannot exhaust memory."""
        used = self._chars.get(cell_index, 0)
        size = len(json.dumps(msg.get("content", {}), default=str))
        self._chars[cell_index] = used + size
        if used + size <= self.max_output_chars:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_chars:
            self.cut.append(cell_index)
            content = msg.get("content", {})
            room = self.max_output_chars - used
            if msg.get("msg_type") == "stream" and room > 0:
                content["text"] = content.get("text", "")[:room]  # the start says what went wrong
                super().output(outs, msg, display_id, cell_index)
            outs.append(
                nbformat.v4.new_output(
                    "stream", name="stdout", text=CUT.format(limit=self.max_output_chars)
                )
            )
        return None


def main(job_path: str) -> int:
    """Execute the job's notebook; write the executed notebook and ``status.json``."""
    make_private()  # before the secret is read, and before the kernel exists
    prefixes = read_prefixes(sys.stdin)
    sys.stdin.close()
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    folder = Path(job_path).resolve().parent
    nb = nbformat.read(folder / job["notebook"], 4)
    status: dict[str, Any] = {"state": "ok", "timed_out": [], "cut": []}
    status_path = folder / job["status"]
    runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR") or "/tmp")
    runtime.mkdir(parents=True, exist_ok=True)
    # Unix sockets: the sandbox has no network interface to use, and nothing outside sees them.
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(runtime / "kernel"))
    timeout = int(job["cell_timeout"])
    client = CappedClient(
        nb,
        km=km,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        startup_timeout=300,
        resources={"metadata": {"path": str(folder)}},
        record_timing=False,
    )
    client.max_output_chars = int(job["max_output_chars"])
    client.cell_prefix = prefixes
    client._chars = {}
    client.cut = status["cut"]
    current: dict[str, Any] = {"index": None, "started": 0.0}

    def started(cell: Any, cell_index: int) -> None:
        current.update(index=cell_index, started=time.monotonic())

    def executed(cell: Any, cell_index: int, execute_reply: Any = None) -> None:
        if time.monotonic() - current["started"] >= timeout:
            status["timed_out"].append(cell_index)
        current.update(index=None)

    client.on_cell_start = started
    client.on_cell_executed = executed  # after the kernel's reply (on_cell_complete: sent)

    def watchdog() -> None:
        # A kernel that swallows KeyboardInterrupt never answers: stop everything, say why.
        while True:
            time.sleep(1)
            index = current["index"]
            if index is not None and time.monotonic() - current["started"] > timeout + GRACE:
                status.update(state="unresponsive", cell=index)
                write_status(status_path, status)
                kill_kernel(km)
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        client.execute()
    except DeadKernelError:
        status["state"] = "dead"
        status["cell"] = current["index"]
    except Exception as error:  # reported to the grader, which maps it to a reason
        status["state"] = "error"
        status["error"] = f"{type(error).__name__}: {str(error)[:300]}"
    nbformat.write(nb, folder / job["executed"])
    write_status(status_path, status)
    return 0


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Write the status file in one step."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(status), encoding="utf-8")
    partial.replace(path)


def kill_kernel(km: AsyncKernelManager) -> None:
    """Kill the kernel's whole process group (it runs in a session of its own)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    pid = getattr(process, "pid", None)
    if pid:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
