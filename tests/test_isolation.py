"""Isolation that a class cannot break (issue 17.1-17.4, 16.5-16.6).

- no privilege inside the sandbox, whoever runs the grader: the remount probe and a write to
  a read-only bind fail, as root and as an ordinary user (``gradeuser``, created when root);
- ``solutions`` and ``autograder`` cannot be imported inside from any location;
- a cell's secret prefix is readable by nothing before that cell runs;
- records are bounded before they are unpickled, scoring has a time limit;
- the gradebook's schema is checked before scores are written.

Tests that need bubblewrap skip with its reason; the hog tests are in ``test_hogs.py``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from autograder import sandbox, scoring, seccomp
from autograder.limits import Limits, make_sandbox
from autograder.scoring import Check, RecordError, load_record, score_all

AVAILABLE, WHY = sandbox.sandbox_available()
needs_bwrap = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY}")
PROJECT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"

# --- no privilege inside ------------------------------------------------------------------

#: Run inside the sandbox by the system Python (stdlib only, so an ordinary user can run it
#: too): tries to get write access to a read-only bind and reports what it got.
PROBE = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
target = sys.argv[1]
out = {}
status = open("/proc/self/status").read()
for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
    out[key] = status.split(key + ":")[1].split()[0]
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096
def call(name, *args):
    result = getattr(libc, name)(*args)
    return [result, ctypes.get_errno()]
# The remount probe: make the read-only bind writable again.
out["remount"] = call("mount", None, target.encode(), None, MS_REMOUNT | MS_BIND, None)
out["remount_usr"] = call("mount", None, b"/usr", None, MS_REMOUNT | MS_BIND, None)
out["unshare_user"] = call("unshare", 0x10000000)
out["unshare_mount"] = call("unshare", 0x00020000)
out["ptrace"] = call("ptrace", 16, os.getppid(), None, None)  # PTRACE_ATTACH
try:
    open(os.path.join(target, "planted.txt"), "w").write("x")
    out["write"] = "written"
except OSError as error:
    out["write"] = error.errno
print(json.dumps(out))
"""


def _probe_as(tmp_path: Path, user: str | None) -> dict:
    """Run :data:`PROBE` in the grader's sandbox, the grader running as ``user`` (None: us)."""
    host = tmp_path / "host-readonly"
    host.mkdir(exist_ok=True)
    (host / "data.txt").write_text("keep", encoding="utf-8")
    script = tmp_path / "probe.py"
    script.write_text(PROBE, encoding="utf-8")
    project = PROJECT
    if user is not None:
        # The checkout may sit in a folder only we can read (a clone in a private temporary
        # folder): give the ordinary user a readable copy of the two packages the driver uses.
        project = tmp_path / "checkout"
        for package in ("autograder", "course"):
            shutil.copytree(
                PROJECT / package,
                project / package,
                ignore=shutil.ignore_patterns("__pycache__", "*.ipynb", "lessons", "exercise"),
            )
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import json, os, subprocess, sys\n"
        f"sys.path.insert(0, {str(project)!r})\n"
        "from autograder.sandbox import filter_fd, wrap_command\n"
        "fd = filter_fd()\n"
        f"argv = wrap_command([{SYSTEM_PYTHON!r}, {str(script)!r}, {str(host)!r}],\n"
        f"    writable=[], readonly=[{str(host)!r}, {str(script)!r}], hide=[], env={{}},\n"
        "    seccomp_fd=fd, tmp_mb=16)\n"
        "done = subprocess.run(argv, pass_fds=(fd,), capture_output=True, text=True)\n"
        "sys.stdout.write(done.stdout); sys.stderr.write(done.stderr)\n",
        encoding="utf-8",
    )
    command = [SYSTEM_PYTHON, "-I", str(driver)]
    if user is not None:
        for path in (tmp_path, host, script, driver, project, *project.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        command = ["runuser", "-u", user, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_unprivileged(out: dict, host: Path) -> None:
    assert out["CapEff"] == "0000000000000000" and out["CapPrm"] == "0000000000000000"
    assert out["NoNewPrivs"] == "1" and out["Seccomp"] == "2"  # 2: a filter is installed
    for call in ("remount", "remount_usr", "unshare_user", "unshare_mount", "ptrace"):
        assert out[call][0] == -1, (call, out[call])
    assert out["write"] != "written"
    assert not (host / "planted.txt").exists()
    assert (host / "data.txt").read_text(encoding="utf-8") == "keep"


def _ordinary_user() -> str:
    """``gradeuser`` (created if missing); skips unless root with ``runuser``."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root (to create and become an ordinary user) and runuser")
    try:
        pwd.getpwnam("gradeuser")
    except KeyError:
        subprocess.run(["useradd", "-m", "gradeuser"], check=True, capture_output=True)
    return "gradeuser"


needs_system_python = pytest.mark.skipif(
    not Path(SYSTEM_PYTHON).is_file(), reason=f"{SYSTEM_PYTHON} not found"
)


@needs_bwrap
@needs_system_python
def test_no_privilege_inside_when_the_grader_runs_as_this_user(tmp_path: Path) -> None:
    """As root here (CI runs as root): capabilities gone, remount and writes refused."""
    out = _probe_as(tmp_path, None)
    _assert_unprivileged(out, tmp_path / "host-readonly")


@needs_bwrap
@needs_system_python
def test_no_privilege_inside_when_the_grader_runs_as_an_ordinary_user(tmp_path: Path) -> None:
    user = _ordinary_user()
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:  # pytest's folders are private to root
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o055)
    out = _probe_as(tmp_path, user)
    _assert_unprivileged(out, tmp_path / "host-readonly")


def test_seccomp_program_is_well_formed() -> None:
    for arch in ("x86_64", "aarch64"):
        program = seccomp.program(arch)
        assert len(program) % 8 == 0 and 40 < len(program) // 8 < 255
        # ends with: allow, deny (EPERM), ENOSYS for clone3
        last = [program[i : i + 8] for i in range(len(program) - 24, len(program), 8)]
        assert [int.from_bytes(x[4:], sys.byteorder) for x in last] == [
            seccomp.SECCOMP_RET_ALLOW,
            seccomp.SECCOMP_RET_ERRNO | 1,
            seccomp.SECCOMP_RET_ERRNO | 38,
        ]
    with pytest.raises(seccomp.UnsupportedArch):
        seccomp.program("mips")


# --- every copy of the grading packages is masked -----------------------------------------


@needs_bwrap
def test_no_copy_of_solutions_or_autograder_is_importable_inside(tmp_path: Path) -> None:
    """A site-packages copy, a second checkout on sys.path (an old-style editable install)
    and a PEP 660 editable finder mapping: none can be imported inside; ``course`` can."""
    site = tmp_path / "venv" / "lib" / "site-packages"
    other = tmp_path / "other-checkout"
    third = tmp_path / "third-checkout"
    for folder, names in (
        (site, ("solutions", "autograder")),
        (other, ("course", "solutions", "autograder")),
        (third, ("solutions",)),
    ):
        for name in names:
            (folder / name).mkdir(parents=True)
            (folder / name / "__init__.py").write_text(f"WHERE = {str(folder)!r}\n")
    (other / "pyproject.toml").write_text("[project]\nname='other'\n")
    (site / "__editable___third_finder.py").write_text(
        f"MAPPING = {{'solutions': {str(third / 'solutions')!r}}}\n"
    )
    code = (
        "import importlib, json, sys\n"
        f"sys.path[:0] = [{str(site)!r}, {str(other)!r}, {str(third)!r}]\n"
        "out = {}\n"
        "for name in ('solutions', 'autograder', 'course'):\n"
        "    try:\n"
        "        module = importlib.import_module(name)\n"
        "        out[name] = getattr(module, 'WHERE', module.__file__)\n"
        "    except ImportError as error:\n"
        "        out[name] = 'denied'\n"
        "for path in (%r, %r, %r):\n"
        "    try:\n"
        "        out[path] = open(path).read()\n"
        "    except OSError:\n"
        "        out[path] = 'denied'\n"
        "print(json.dumps(out))\n"
    ) % (
        str(site / "solutions" / "__init__.py"),
        str(other / "solutions" / "__init__.py"),
        str(third / "solutions" / "__init__.py"),
    )
    driver = (
        "import subprocess, sys\n"
        f"sys.path[:0] = [{str(site)!r}, {str(other)!r}, {str(PROJECT)!r}]\n"
        "from autograder.sandbox import wrap_command\n"
        f"argv = wrap_command([sys.executable, '-c', {code!r}], writable=[], readonly=[],\n"
        "    hide=[], env={})\n"
        "done = subprocess.run(argv, capture_output=True, text=True)\n"
        "sys.stdout.write(done.stdout); sys.stderr.write(done.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=60, check=False
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # Masked by an empty folder: at most an empty namespace package imports, with no code.
    assert out["solutions"] in ("denied", None) and out["autograder"] in ("denied", None), out
    assert out["course"] != "denied"  # the student package still imports
    for key, value in out.items():
        if key.endswith("__init__.py"):
            assert value in ("denied", ""), (key, value)


# --- the secret prefix (contract C1) -------------------------------------------------------

#: The cell before the graded one: searches everything the kernel can read for the marker of
#: the prefix line (built at run time so that this source does not contain it).
SEARCH = r"""
import os, re
needle = ("REVE" + "ALED-").encode()
found, unreadable_runner = [], None
if any(needle in (k + "=" + v).encode() for k, v in os.environ.items()):
    found.append("environ")
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for name in ("environ", "cmdline"):
        try:
            if needle in open(f"/proc/{pid}/{name}", "rb").read():
                found.append(f"/proc/{pid}/{name}")
        except OSError:
            pass
# The runner (our parent) keeps the map in its memory: reading it must be refused.
try:
    maps = open(f"/proc/{os.getppid()}/maps").read().splitlines()
    with open(f"/proc/{os.getppid()}/mem", "rb") as mem:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if "rw" in line.split()[1] and end - start < 1 << 28:
                mem.seek(start)
                if needle in mem.read(end - start):
                    found.append("runner memory")
    unreadable_runner = False
except OSError:
    unreadable_runner = True
files = 0
for root, dirs, names in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/dev")):
        dirs[:] = []
        continue
    for name in names:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path) or os.path.getsize(path) > 8 << 20:
                continue
            with open(path, "rb") as handle:
                files += 1
                if needle in handle.read():
                    found.append(path)
        except OSError:
            pass
print("SEARCHED", files, "FOUND", found, "RUNNER_UNREADABLE", unreadable_runner)
"""


@needs_bwrap
@pytest.mark.slow
def test_a_cell_prefix_is_readable_by_nothing_before_its_cell(tmp_path: Path) -> None:
    from autograder.sandbox_run import run_notebook

    token = "REVEALED-4815162342"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(SEARCH),
        nbformat.v4.new_code_cell(
            "print('the test cell')",
            metadata={"nbgrader": {"grade_id": "t1", "grade": True, "points": 1}},
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    limits = Limits(sandbox="required", cell_timeout=240, submission_timeout=400)
    scratch = tmp_path / "s"
    scratch.mkdir()
    outcome = run_notebook(
        scratch,
        nb,
        limits=limits,
        box=make_sandbox(limits),
        seed=None,
        threads=1,
        cell_prefix={"t1": f"print({token!r})"},
    )
    assert outcome.state == "ok", outcome
    search, test = outcome.executed.cells
    said = "".join(o.get("text", "") for o in search.outputs)
    assert "SEARCHED" in said, search.outputs
    files = int(said.split("SEARCHED")[1].split()[0])
    assert files > 1000  # it really looked: the Python environment is readable
    assert "FOUND []" in said and "RUNNER_UNREADABLE True" in said, said
    printed = "".join(o.get("text", "") for o in test.outputs)
    assert token in printed and "the test cell" in printed
    assert token not in test.source  # the saved notebook keeps the original source
    saved = nbformat.read(scratch / "executed.ipynb", 4)  # what the runner wrote to disk
    assert not any(token in cell.source for cell in saved.cells)


# --- scoring cannot be stalled -------------------------------------------------------------


def _save(tmp_path: Path, name: str, value: object) -> Path:
    path = tmp_path / f"{name}.pt"
    torch.save(value, path)
    return path


def test_a_record_sharing_one_storage_many_times_is_refused_before_unpickling(
    tmp_path: Path,
) -> None:
    crop = torch.zeros(3, 32, 32)
    views = [crop.view(3, 32, 32) for _ in range(25_000)]  # 25,000 tensors, one storage
    _save(tmp_path, "shared", {"crops": views})
    with pytest.raises(RecordError, match="more than 20000 times"):
        load_record(tmp_path, "shared")
    _save(tmp_path, "same", {"crops": [crop] * 25_000})  # one tensor object, 25,000 times
    with pytest.raises(RecordError, match="more than 20000 tensors"):
        load_record(tmp_path, "same")


def test_records_referencing_too_many_elements_or_nested_too_deep_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "MAX_REFERENCED_ELEMENTS", 1000)
    _save(tmp_path, "big", [torch.zeros(600), torch.zeros(600)])
    with pytest.raises(RecordError, match="elements"):
        load_record(tmp_path, "big")
    deep: list = []
    for _ in range(100):
        deep = [deep]
    _save(tmp_path, "deep", deep)
    with pytest.raises(RecordError, match="deeper"):
        load_record(tmp_path, "deep")
    view = torch.zeros(1).expand(10**8)  # one element stored, 10^8 seen
    _save(tmp_path, "view", {"x": view})
    monkeypatch.setattr(scoring, "MAX_REFERENCED_ELEMENTS", 10**9)
    with pytest.raises(RecordError, match="elements"):
        load_record(tmp_path, "view")
    (tmp_path / "zip.pt").write_bytes(b"not a zip")
    with pytest.raises(RecordError, match="not a torch archive"):
        load_record(tmp_path, "zip")


def test_an_ordinary_record_loads(tmp_path: Path) -> None:
    state = {"weight": torch.randn(10, 4), "bias": torch.zeros(10), "names": ["a", "b"]}
    _save(tmp_path, "ok", state)
    loaded = load_record(tmp_path, "ok")
    assert torch.equal(loaded["weight"], state["weight"]) and loaded["names"] == ["a", "b"]


def slow_check(record: object, seed: int) -> None:
    """A check that never ends (module level: it is sent to the scoring child)."""
    time.sleep(3600)


def seed_check(record: object, seed: int) -> None:
    """Passes when the record holds the seed it is scored with."""
    assert record == {"seed": seed}, (record, seed)


def test_scoring_has_a_time_limit_and_runs_in_a_child(tmp_path: Path) -> None:
    _save(tmp_path, "slow", {"x": 1})
    started = time.perf_counter()
    verdicts = score_all(
        {"t-test": Check("slow", slow_check)}, {"t-test": 2.0}, tmp_path, 1, timeout=5
    )
    assert time.perf_counter() - started < 60
    assert verdicts["t-test"].points == 0 and "longer than 5 s" in verdicts["t-test"].message


def test_each_task_is_scored_with_its_own_seed(tmp_path: Path) -> None:
    _save(tmp_path, "a", {"seed": 11})
    _save(tmp_path, "b", {"seed": 22})
    checks = {"a-test": Check("a", seed_check), "b-test": Check("b", seed_check)}
    verdicts = score_all(checks, {"a-test": 1.0, "b-test": 1.0}, tmp_path, {"a": 11, "b": 22})
    assert all(v.passed for v in verdicts.values()), verdicts


# --- the gradebook's schema ----------------------------------------------------------------


def test_a_planted_trigger_stops_grading_before_any_score_is_written(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    from autograder.coursedir import COURSE_ID, CourseDir
    from autograder.grade import GradebookTampered, check_gradebook, expected_schema

    course = CourseDir(tmp_path / "grading", "tiny", "tiny")
    course.gradebook.parent.mkdir(parents=True)
    expected_schema()
    with Gradebook(course.db_url, COURSE_ID):
        pass
    check_gradebook(course)  # nbgrader's own schema passes
    with sqlite3.connect(course.gradebook) as db:
        db.execute(
            "CREATE TRIGGER boost AFTER UPDATE ON grade BEGIN UPDATE grade SET auto_score = 99; END"
        )
    with pytest.raises(GradebookTampered, match="trigger boost"):
        check_gradebook(course)


# --- limits named as reasons ---------------------------------------------------------------


def test_folder_usage_counts_blocks_and_files(tmp_path: Path) -> None:
    from autograder.sandbox_run import folder_usage

    (tmp_path / "a").write_bytes(b"x" * 100_000)
    assert folder_usage(tmp_path) >= 100_000
    for i in range(20):
        (tmp_path / f"f{i}").touch()
    assert folder_usage(tmp_path, limit_files=10) is None


def test_a_limit_hit_is_the_reason(tmp_path: Path) -> None:
    from autograder.sandbox_run import RunOutcome
    from autograder.submission import outcome_reason

    limits = Limits(sandbox="off", memory_mb=1024, max_processes=64, disk_mb=100)
    dead = RunOutcome(state="dead", executed=None, limit="memory")
    assert outcome_reason(dead, limits) == (
        "crashed",
        "the submission went over its memory cap of 1024 MiB (all its processes together, "
        "files in /tmp included); it was stopped there",
    )
    disk = RunOutcome(state="lost", executed=None, limit="disk")
    assert "more than 100 MiB" in outcome_reason(disk, limits)[1]


def test_the_sandbox_text_names_what_is_bounded() -> None:
    box = make_sandbox(Limits(sandbox="off"))
    text = "; ".join(box.enforced + box.notes)
    if box.cgroup:
        assert f"cgroup v{box.cgroup} per submission: memory" in text
    else:
        assert "rlimits only" in text and "NOT bounded per submission" in text
    assert text.startswith("cell timeout") and "NOT sandboxed (--sandbox off)" in text


# --- unsandboxed grading is opt-in and says so ----------------------------------------------


def test_the_cli_refuses_by_default_with_the_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from autograder import limits as limits_module
    from autograder.__main__ import main

    if os.environ.get(limits_module.SANDBOX_ENV):
        pytest.skip(f"{limits_module.SANDBOX_ENV} is set: the default is what it says")
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_available.cache_clear()
    try:
        code = main(["--course-dir", str(tmp_path), "autograde"])  # no --sandbox at all
    finally:
        sandbox.sandbox_available.cache_clear()
    err = capsys.readouterr().err
    assert code == 1
    assert "apt-get install bubblewrap" in err and "--sandbox off" in err


@pytest.mark.slow
def test_grading_with_sandbox_off_says_so_in_every_result_row_and_page(tmp_path: Path) -> None:
    from test_pipeline import make_tiny_course, reference

    from autograder.grade import autograde
    from autograder.intake import collect
    from autograder.report import export_csv, feedback

    course = make_tiny_course(tmp_path)
    for student in ("ada", "bob"):
        (tmp_path / "inbox" / student).mkdir(parents=True)
        nbformat.write(reference(course), tmp_path / "inbox" / student / "tiny.ipynb")
    collect(course, tmp_path / "inbox")
    results = autograde(course, limits=Limits(sandbox="off"), progress=False)
    feedback(course)
    export_csv(course)
    rows = course.grades_csv.read_text(encoding="utf-8").splitlines()[1:]
    assert len(results) == len(rows) == 2
    for result, row in zip(results, rows, strict=True):
        assert result.score == 3 and result.reasons[0].startswith("NOT sandboxed")
        assert row.count("NOT sandboxed") >= 2, row  # the reason and the sandbox column
        assert "NOT sandboxed" in course.feedback(result.student).read_text(encoding="utf-8")


# --- cgroup v2, on a fake hierarchy (this machine has v1) ----------------------------------


def test_cgroup_v2_groups_are_made_with_the_budget_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The v2 code path writes what the kernel documentation names, into a fake tree."""
    from autograder import cgroups

    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.procs").write_text("")
    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    monkeypatch.setattr(cgroups, "_own_paths", lambda: {"": "/"})
    cgroups.probe.cache_clear()
    try:
        assert cgroups.probe() == (2, "")
        assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
        group = cgroups.create("ada", cgroups.Budget(memory_mb=512, max_processes=64, cpus=1.5))
    finally:
        cgroups.probe.cache_clear()
    assert group is not None and group.version == 2
    folder = group.paths["memory"]
    assert folder.parent == tmp_path and folder.name.endswith("-ada")
    assert (folder / "memory.max").read_text() == str(512 * 2**20)
    assert (folder / "pids.max").read_text() == "64"
    assert group.limit_hit() is None
    (folder / "pids.events").write_text("max 3\n")
    assert group.limit_hit() == "processes"
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    assert group.limit_hit() == "memory"


@pytest.mark.slow
def test_unsandboxed_code_that_plants_a_trigger_stops_the_batch(tmp_path: Path) -> None:
    """With --sandbox off a kernel can write the gradebook: grading stops before any write."""
    from test_pipeline import make_tiny_course, reference

    from autograder.grade import GradebookTampered, autograde
    from autograder.intake import collect

    course = make_tiny_course(tmp_path)
    attack = (
        "import sqlite3\n"
        f"con = sqlite3.connect({str(course.gradebook.resolve())!r})\n"
        "con.execute('CREATE TRIGGER t AFTER UPDATE ON grade BEGIN '\n"
        "            'UPDATE grade SET auto_score = 99; END')\n"
        "con.commit()\n"
    )
    bad = reference(course)
    for cell in bad.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "square-answer":
            cell.source = attack + cell.source
    for student, nb in (("attacker", bad), ("zoe", reference(course))):
        (tmp_path / "inbox" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "inbox" / student / "tiny.ipynb")
    collect(course, tmp_path / "inbox")
    with pytest.raises(GradebookTampered, match="trigger t"):
        autograde(course, limits=Limits(sandbox="off"), progress=False)
    assert not course.result("attacker").exists() and not course.result("zoe").exists()
    with sqlite3.connect(course.gradebook) as db:
        assert db.execute("SELECT count(*) FROM submitted_assignment").fetchone() == (0,)
