"""Trusted scoring: what the student's kernel recorded, compared with the reference.

Runs on the grader's side, never in the kernel. Every record is untrusted data:

- before it is unpickled, its file is inspected (:func:`inspect_record`): at most
  :data:`MAX_RECORD_BYTES`, a torch zip archive with one pickle of at most
  :data:`MAX_PICKLE_OPS` opcodes, at most :data:`MAX_STORAGE_REFS` references to stored
  tensors, and at most :data:`MAX_REFERENCED_ELEMENTS` elements over all references (one crop
  referenced 600,000 times is refused here, in milliseconds);
- it is loaded with ``torch.load(..., weights_only=True)`` (tensors, numbers, strings, lists and
  dicts only; no pickled code), then walked (:func:`check_shape`): nesting depth, container
  items, tensors and their elements (views of one storage count as often as they appear);
- a record that is missing or malformed fails that task with a reason, never the submission.

Each submission is scored in a child process (forked from a server that has imported torch
and the checks once) with a time limit (:data:`SCORING_TIMEOUT`): torch's random generator is
per process, so submissions are scored in parallel and no lock is held; only the gradebook
write is serialized (:mod:`autograder.grade`). Checks that cannot be sent to another process
(lambdas registered by a test) are scored in this process, one submission at a time.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import pickletools
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.feedback import CheckFailure

log = logging.getLogger(__name__)

#: Only for checks scored in this process (see the module docstring): they seed torch's global
#: random generator, so two pool threads must take turns.
SCORING_LOCK = threading.Lock()
#: Largest record file read, in bytes (a MobileNetV3-Small state dict is about 10 MB).
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Bounds checked on the pickle before anything is unpickled.
MAX_PICKLE_BYTES = 16 * 1024 * 1024
MAX_PICKLE_OPS = 2_000_000
MAX_STORAGE_REFS = 20_000
MAX_REFERENCED_ELEMENTS = 64 * 1024 * 1024
MAX_ZIP_MEMBERS = MAX_STORAGE_REFS + 16
#: Bounds checked on the loaded record.
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000
MAX_TENSORS = 20_000
MAX_ELEMENTS = 64 * 1024 * 1024
#: Seconds one submission's scoring may take (every task together).
SCORING_TIMEOUT = 300
#: Score in a child process (off only to measure what that costs: benchmarks/bench_grading.py).
SCORE_IN_CHILD = True
#: Modules the scoring server imports once, before it forks a child per submission.
PRELOAD = ["torch", "autograder.scoring", "autograder.checks"]


@dataclass(frozen=True)
class Check:
    """How one test cell is scored: the record its hidden test writes, and the comparison.

    ``compare(record, seed)`` returns when the answer is right and raises
    :class:`~autograder.feedback.CheckFailure` (or ``AssertionError``) when it is not.
    """

    record: str
    compare: Callable[[Any, int], None]


@dataclass
class Verdict:
    """The score of one test cell and, when it lost points, why (text a student can read)."""

    grade_id: str
    points: float
    max_points: float
    message: str = ""

    @property
    def passed(self) -> bool:
        """True when the cell got all its points."""
        return self.points >= self.max_points


class RecordError(Exception):
    """A record is missing, too large or not loadable; the message says which."""


#: Opcodes that push an integer (BINPUT and the like carry memo indices, not values).
_INT_OPS = frozenset({"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"})


def inspect_record(path: Path) -> None:
    """Refuse a record file whose pickle is too large, too long or references too much.

    Reads the archive's directory and walks the pickle's opcodes without running them.

    Raises:
        RecordError: the record breaks a bound (the message says which).
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise RecordError("the recorded result is not a torch archive") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise RecordError(f"the recorded result holds too many files ({len(members)})")
        if sum(m.file_size for m in members) > 2 * MAX_RECORD_BYTES:
            raise RecordError("the recorded result unpacks to too many bytes")
        pickles = [m for m in members if m.filename.endswith("/data.pkl")]
        if len(pickles) != 1 or pickles[0].file_size > MAX_PICKLE_BYTES:
            raise RecordError("the recorded result has no single, small pickle (data.pkl)")
        data = archive.read(pickles[0])
    ops = refs = elements = 0
    last_int = 0
    try:
        for opcode, arg, _ in pickletools.genops(data):
            ops += 1
            if ops > MAX_PICKLE_OPS:
                raise RecordError(f"the recorded result is too long (over {MAX_PICKLE_OPS} steps)")
            if opcode.name in _INT_OPS and isinstance(arg, int):
                last_int = arg
            if opcode.name in ("BINPERSID", "PERSID"):
                refs += 1
                elements += max(last_int, 0)  # the storage's size ends its persistent id
                if refs > MAX_STORAGE_REFS:
                    raise RecordError(
                        f"the recorded result references stored tensors more than "
                        f"{MAX_STORAGE_REFS} times"
                    )
                if elements > MAX_REFERENCED_ELEMENTS:
                    raise RecordError(
                        f"the recorded result references more than {MAX_REFERENCED_ELEMENTS} "
                        "elements in all (a tensor shared many times counts each time)"
                    )
    except (ValueError, EOFError, KeyError) as error:
        raise RecordError(f"the recorded result is not a valid pickle ({error})") from None


def check_shape(value: Any) -> None:
    """Refuse a loaded record that is too deep or too big (walked without recursion).

    Raises:
        RecordError: the record breaks a bound.
    """
    import torch

    items = tensors = elements = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RecordError(f"the recorded result is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, torch.Tensor):
            tensors += 1
            elements += node.numel()
            if tensors > MAX_TENSORS or elements > MAX_ELEMENTS:
                raise RecordError(
                    f"the recorded result holds more than {MAX_TENSORS} tensors or "
                    f"{MAX_ELEMENTS} elements"
                )
            continue
        if isinstance(node, Mapping):
            children = [*node.keys(), *node.values()]
        elif isinstance(node, list | tuple | set | frozenset):
            children = list(node)
        else:
            continue
        items += len(children)
        if items > MAX_ITEMS:
            raise RecordError(f"the recorded result holds more than {MAX_ITEMS} items")
        stack.extend((child, depth + 1) for child in children)


def load_record(folder: Path, name: str) -> Any:
    """The record ``name`` the kernel saved in ``folder``, inspected, then loaded safely."""
    import torch

    path = folder / f"{name}.pt"
    if path.is_symlink() or not path.is_file():
        raise RecordError(
            "no result was recorded for this test: the test cell did not run to its end "
            "(an error or a time-out before it, or the kernel stopped)"
        )
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"the recorded result is too large ({size // 2**20} MiB)")
    inspect_record(path)
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused or a corrupt file
        raise RecordError(
            f"the recorded result could not be read safely ({type(error).__name__})"
        ) from None
    check_shape(record)
    return record


def seed_for(seed: int | Mapping[str, int], check: Check, grade_id: str) -> int:
    """The seed of ``check``'s task: one per run (int) or one per task (keyed by task or cell)."""
    if isinstance(seed, int):
        return seed
    if check.record in seed:
        return seed[check.record]
    return seed[grade_id]


def score_cell(grade_id: str, points: float, check: Check, folder: Path, seed: int) -> Verdict:
    """Score one test cell; any problem with its record or comparison costs only this cell."""
    try:
        record = load_record(folder, check.record)
        check.compare(record, seed)
    except CheckFailure as failure:
        return Verdict(grade_id, 0.0, points, str(failure))
    except AssertionError as failure:
        return Verdict(grade_id, 0.0, points, f"AssertionError: {failure}"[:2000])
    except RecordError as error:
        return Verdict(grade_id, 0.0, points, str(error))
    except Exception as error:  # a malformed record (wrong types inside) fails like a wrong answer
        log.warning("check %s failed on a malformed record", grade_id, exc_info=True)
        return Verdict(
            grade_id,
            0.0,
            points,
            "the recorded result does not have the expected form "
            f"({type(error).__name__}); was the recorder or its output changed?",
        )
    return Verdict(grade_id, points, points)


def score_all(
    checks: Mapping[str, Check],
    points: Mapping[str, float],
    folder: Path,
    seed: int | Mapping[str, int],
    *,
    timeout: float = SCORING_TIMEOUT,
) -> dict[str, Verdict]:
    """A verdict for every autograded test cell in ``points`` (grade_id -> max points).

    Scored in a child process with ``timeout`` seconds for all cells (see the module
    docstring); past it, or if the child dies, every cell gets zero with the reason.
    """
    for grade_id in points:
        if grade_id not in checks:
            raise KeyError(f"no check is registered for the test cell {grade_id!r}")
    job = (dict(checks), dict(points), Path(folder), seed)
    try:
        if not SCORE_IN_CHILD:
            raise TypeError("scoring in this process (SCORE_IN_CHILD is off)")
        payload = pickle.dumps(job)
    except (pickle.PicklingError, AttributeError, TypeError):
        log.info("checks cannot be sent to a child process; scoring in this one")
        with SCORING_LOCK:
            return score_each(checks, points, folder, seed, {})
    return score_in_child(payload, points, timeout)


def score_each(
    checks: Mapping[str, Check],
    points: Mapping[str, float],
    folder: Path,
    seed: int | Mapping[str, int],
    verdicts: dict[str, Verdict],
) -> dict[str, Verdict]:
    """Fill ``verdicts`` with one verdict per test cell (in a scoring child, or under
    :data:`SCORING_LOCK`)."""
    for grade_id, max_points in points.items():
        check = checks.get(grade_id)
        if check is None:
            raise KeyError(f"no check is registered for the test cell {grade_id!r}")
        verdicts[grade_id] = score_cell(
            grade_id, max_points, check, folder, seed_for(seed, check, grade_id)
        )
    return verdicts


_context_lock = threading.Lock()
_context: Any = None


def _scoring_context() -> Any:
    """The forkserver context (started once, with torch and the checks imported)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
        return _context


def _child(payload: bytes, conn: Any) -> None:
    """In the scoring child: score, send the verdicts back."""
    checks, points, folder, seed = pickle.loads(payload)
    try:
        verdicts = score_each(checks, points, folder, seed, {})
        conn.send(("ok", verdicts))
    except BaseException as error:  # reported as the grader's own failure
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


def score_in_child(payload: bytes, points: Mapping[str, float], timeout: float) -> dict:
    """Run :func:`_child` with ``timeout``; a child that overruns is killed."""
    context = _scoring_context()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(payload, send), daemon=True)
    child.start()
    send.close()
    try:
        if receive.poll(timeout):
            try:
                kind, value = receive.recv()
            except EOFError:
                kind, value = "died", None
        else:
            kind, value = "timeout", None
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
    if kind == "ok":
        return value
    if kind == "error":
        raise RuntimeError(f"scoring failed: {value}")
    reason = (
        f"scoring this submission took longer than {timeout:g} s and was stopped "
        "(are its recorded results unusually large?)"
        if kind == "timeout"
        else f"scoring this submission stopped unexpectedly (exit code {child.exitcode})"
    )
    return {gid: Verdict(gid, 0.0, p, reason) for gid, p in points.items()}
