"""The bubblewrap sandbox: real commands run inside it and try to get out.

Each test runs a short Python snippet in :func:`autograder.sandbox.wrap_command` and checks
what it could see or do. They skip (with bubblewrap's reason) where bwrap cannot run; CI
installs it (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import limits as limits_module
from autograder import sandbox
from autograder.limits import Limits, make_sandbox, rlimit_setter
from autograder.sandbox_paths import python_roots

AVAILABLE, WHY = sandbox.sandbox_available()
needs_bwrap = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY}")
PROJECT = Path(__file__).resolve().parent.parent


def run_inside(
    code: str,
    tmp_path: Path,
    *,
    readonly: list[Path] | None = None,
    hide: list[Path] | None = None,
    env: dict[str, str] | None = None,
    limits: Limits | None = None,
    timeout: float = 60,
) -> dict:
    """Run ``code`` in a sandbox whose scratch folder is ``tmp_path/scratch``; return its JSON.

    The snippet sets ``out`` (a dict); it is printed as JSON on the last line.
    """
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    program = f"import json, os, sys\nout = {{}}\n{code}\nprint(json.dumps(out))"
    argv = sandbox.wrap_command(
        [sys.executable, "-c", program],
        writable=[scratch],
        readonly=readonly or [],
        hide=hide or [],
        env=env or {},
    )
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=rlimit_setter(limits) if limits else None,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


TRY = """
def attempt(key, action):
    try:
        out[key] = ["ok", action()]
    except BaseException as exc:
        out[key] = ["denied", type(exc).__name__]
"""


@needs_bwrap
def test_outside_paths_are_absent(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "originals" / "bob").mkdir(parents=True)
    (course / "gradebook.db").write_text("secret scores", encoding="utf-8")
    code = TRY + (
        f"attempt('list', lambda: os.listdir({str(course)!r}))\n"
        f"attempt('read', lambda: open({str(course / 'gradebook.db')!r}).read())\n"
        "attempt('etc', lambda: sorted(os.listdir('/etc')))\n"
        "out['root'] = sorted(os.listdir('/'))\n"
        # Under /home, /root, /var, /srv, /opt, /work: only the bound Python folders, and the
        # bare folders on the way to them (the checkout may live in a home).
        f"roots = {[str(r) for r in python_roots()]!r}\n"
        "out['stray'] = []\n"
        "for top in ('/home', '/root', '/var', '/srv', '/opt', '/work'):\n"
        "    for folder, dirs, files in os.walk(top):\n"
        "        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in roots]\n"
        "        out['stray'] += [os.path.join(folder, f) for f in files\n"
        "                         if not any(os.path.join(folder, f).startswith(r + '/')\n"
        "                                    or os.path.join(folder, f) == r for r in roots)]\n"
    )
    out = run_inside(code, tmp_path)
    assert out["list"][0] == "denied" and out["read"][0] == "denied"
    assert "shadow" not in out["etc"][1] and "hostname" not in out["etc"][1]
    assert out["stray"] == []


@needs_bwrap
def test_hidden_package_dirs_are_empty(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "solutions").mkdir(parents=True)
    (project / "solutions" / "transfer.py").write_text("ANSWER = 42\n", encoding="utf-8")
    (project / "course").mkdir()
    (project / "course" / "data.txt").write_text("course data", encoding="utf-8")
    code = TRY + (
        f"attempt('course', lambda: open({str(project / 'course' / 'data.txt')!r}).read())\n"
        f"attempt('hidden', lambda: os.listdir({str(project / 'solutions')!r}))\n"
        f"attempt('read', lambda: open({str(project / 'solutions' / 'transfer.py')!r}).read())\n"
    )
    out = run_inside(code, tmp_path, readonly=[project], hide=[project / "solutions"])
    assert out["course"] == ["ok", "course data"]
    assert out["hidden"] == ["ok", []]
    assert out["read"][0] == "denied"


@needs_bwrap
def test_a_project_folder_on_sys_path_shows_only_its_course_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "proj"
    for name in ("course", "solutions", "tools"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text("X = 1\n", encoding="utf-8")
    (project / "course" / "key.txt").write_text("instructor key", encoding="utf-8")
    (project / "pyproject.toml").write_text("[project]\n", encoding="utf-8")
    (project / "grading").mkdir()
    (project / "grading" / "gradebook.db").write_text("scores", encoding="utf-8")
    (project / "notes.txt").write_text("secret", encoding="utf-8")
    monkeypatch.syspath_prepend(str(project))  # as `python -m autograder` run from there
    code = TRY + (
        f"attempt('ls', lambda: sorted(os.listdir({str(project)!r})))\n"
        f"attempt('pkg', lambda: open({str(project / 'course' / '__init__.py')!r}).read())\n"
        f"attempt('notes', lambda: open({str(project / 'notes.txt')!r}).read())\n"
        f"attempt('key', lambda: open({str(project / 'course' / 'key.txt')!r}).read())\n"
    )
    out = run_inside(code, tmp_path, hide=[project / "course" / "key.txt"])
    assert out["ls"] == ["ok", ["course", "pyproject.toml"]]  # not solutions/, not tools/
    assert out["pkg"] == ["ok", "X = 1\n"]
    assert out["notes"][0] == "denied"
    assert out["key"][0] == "denied"  # a hidden file cannot be opened


@needs_bwrap
def test_real_grading_packages_can_be_hidden(tmp_path: Path) -> None:
    hide = [PROJECT / "solutions", PROJECT / "autograder"]
    code = TRY + (
        "attempt('solutions', lambda: __import__('solutions.transfer').__name__)\n"
        "attempt('autograder', lambda: __import__('autograder.checks').__name__)\n"
        "attempt('course', lambda: __import__('course.errors').__name__)\n"
        f"attempt('ls', lambda: os.listdir({str(PROJECT / 'solutions')!r}))\n"
    )
    out = run_inside(code, tmp_path, hide=hide)
    assert out["solutions"][0] == "denied" and out["autograder"][0] == "denied"
    assert out["course"] == ["ok", "course"]  # the student package stays importable
    assert out["ls"][0] == "denied" or out["ls"][1] == []


@needs_bwrap
def test_readonly_paths_cannot_be_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("original", encoding="utf-8")
    code = TRY + (
        f"attempt('write', lambda: open({str(data / 'x.txt')!r}, 'w').write('changed'))\n"
        f"attempt('create', lambda: open({str(data / 'new.txt')!r}, 'w').write('new'))\n"
        f"attempt('env', lambda: open({sys.prefix!r} + '/evil.pth', 'w').write('x'))\n"
        "attempt('scratch', lambda: open('written.txt', 'w').write('mine'))\n"
        "attempt('tmp', lambda: open('/tmp/t', 'w').write('tmp'))\n"
        "attempt('root', lambda: open('/made-up.txt', 'w').write('x'))\n"
    )
    out = run_inside(code, tmp_path, readonly=[data])
    assert out["write"][0] == out["create"][0] == out["env"][0] == out["root"][0] == "denied"
    assert out["scratch"] == ["ok", 4] and out["tmp"] == ["ok", 3]
    assert (data / "x.txt").read_text(encoding="utf-8") == "original"
    assert not (data / "new.txt").exists() and not Path(sys.prefix, "evil.pth").exists()
    assert (tmp_path / "scratch" / "written.txt").read_text(encoding="utf-8") == "mine"


@needs_bwrap
def test_host_unix_sockets_are_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"\0autograder-test-{os.getpid()}"
    abstract.bind(name)
    abstract.listen()
    try:
        code = TRY + (
            "import socket\n"
            "def connect(addr):\n"
            "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "    s.connect(addr)\n"
            "    return 'connected'\n"
            f"attempt('file', lambda: connect({str(path)!r}))\n"
            f"attempt('abstract', lambda: connect({name!r}))\n"
        )
        out = run_inside(code, tmp_path)
    finally:
        server.close()
        abstract.close()
    assert out["file"][0] == "denied" and out["abstract"][0] == "denied"


@needs_bwrap
def test_loopback_of_the_host_is_unreachable(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        code = TRY + (
            "import socket\n"
            f"attempt('tcp', lambda: socket.create_connection(('127.0.0.1', {port}), 5) and 1)\n"
            "attempt('dns', lambda: socket.getaddrinfo('pypi.org', 443))\n"
        )
        out = run_inside(code, tmp_path)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected to the host's port
    finally:
        server.close()
    assert out["tcp"][0] == "denied" and out["dns"][0] == "denied"


@needs_bwrap
def test_sandboxes_do_not_see_each_others_runtime_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    # The first sandbox writes a connection file into its runtime dir and /tmp, then waits.
    writer = sandbox.wrap_command(
        [
            sys.executable,
            "-c",
            "import os, time\n"
            "d = os.environ['JUPYTER_RUNTIME_DIR']\n"
            "open(os.path.join(d, 'kernel-1.json'), 'w').write('{\"key\": \"s3cret\"}')\n"
            "open('/tmp/other.txt', 'w').write('x')\n"
            "open('ready', 'w').write(d)\n"
            "time.sleep(30)\n",
        ],
        writable=[first],
        readonly=[],
        hide=[],
        env={},
    )
    proc = subprocess.Popen(writer, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (first / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        runtime = (first / "ready").read_text(encoding="utf-8")
        code = (
            "out['runtime'] = os.listdir(os.environ['JUPYTER_RUNTIME_DIR'])\n"
            "out['tmp'] = os.listdir('/tmp')\n"
            f"out['dir'] = os.environ['JUPYTER_RUNTIME_DIR'] == {runtime!r}\n"
            "out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        )
        out = run_inside(code, second)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    assert out["dir"] and out["runtime"] == []
    assert "other.txt" not in out["tmp"]  # (only the mount point of its own scratch folder)
    assert max(out["pids"]) < 10  # its own PID namespace: none of the host's processes


@needs_bwrap
def test_environment_is_only_what_is_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOGRADER_SECRET", "do-not-leak")
    out = run_inside("out['env'] = dict(os.environ)", tmp_path, env={"COURSE_QUICK": "1"})
    assert out["env"]["COURSE_QUICK"] == "1"
    assert "AUTOGRADER_SECRET" not in out["env"]
    assert out["env"]["HOME"] == "/tmp"


@needs_bwrap
def test_rlimits_apply_inside(tmp_path: Path) -> None:
    code = TRY + (
        "attempt('alloc', lambda: len(bytearray(600 * 1024 * 1024)))\n"
        "attempt('big', lambda: open('big.bin', 'wb').write(b'0' * (3 * 1024 * 1024)))\n"
    )
    out = run_inside(code, tmp_path, limits=Limits(memory_mb=400, max_file_mb=1))
    assert out["alloc"] == ["denied", "MemoryError"]
    assert out["big"][0] == "denied"
    assert (tmp_path / "scratch" / "big.bin").stat().st_size <= 1024 * 1024


@needs_bwrap
def test_killing_the_sandbox_kills_everything_inside(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    token = f"sleep-{os.getpid()}-{time.monotonic_ns()}"
    argv = sandbox.wrap_command(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', "
            f"'{token}'], start_new_session=True)\n"
            "open('started', 'w').close()\n"
            "time.sleep(120)\n",
        ],
        writable=[scratch],
        readonly=[],
        hide=[],
        env={},
    )
    proc = subprocess.Popen(argv, preexec_fn=rlimit_setter(Limits()))
    deadline = time.monotonic() + 30
    while not (scratch / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (scratch / "started").exists()
    assert _processes_with(token), "the grandchild should be running"
    os.killpg(proc.pid, 9)  # what a submission timeout does
    proc.wait()
    deadline = time.monotonic() + 10
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_wrap_command_orders_mounts_parents_first(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "hidden" / "scratch").mkdir(parents=True)
    argv = sandbox.wrap_command(
        ["/bin/true"],
        writable=[outer / "hidden" / "scratch"],
        readonly=[outer],
        hide=[outer / "hidden", tmp_path / "elsewhere"],
        env={"A": "1"},
    )
    at = {a: i for i, a in enumerate(argv)}
    assert argv[0] == "bwrap" and argv[-2:] == ["--", "/bin/true"]
    assert at[str(outer)] < at[str(outer / "hidden")] < at[str(outer / "hidden" / "scratch")]
    assert argv[at[str(outer / "hidden")] - 1] == "--tmpfs"
    assert str(tmp_path / "elsewhere") not in argv  # outside every bound tree: absent anyway
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert "--share-net" not in argv


def test_required_refuses_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        limits_module.fs_sandbox, "sandbox_available", lambda: (False, "bwrap is not installed")
    )
    with pytest.raises(RuntimeError, match="install bubblewrap|bwrap is not installed"):
        make_sandbox(Limits(sandbox="required"))
    monkeypatch.delenv(limits_module.SANDBOX_ENV, raising=False)
    with pytest.raises(RuntimeError, match="--sandbox off"):  # the default refuses too
        make_sandbox(Limits())
    with pytest.raises(ValueError):  # no mode grades unsandboxed without being asked to
        make_sandbox(Limits(sandbox="auto"))
    off = make_sandbox(Limits(sandbox="off"))
    assert not off.filesystem and any("NOT sandboxed (--sandbox off)" in n for n in off.notes)


def test_required_message_names_the_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_available.cache_clear()
    try:
        ok, why = sandbox.sandbox_available()
    finally:
        sandbox.sandbox_available.cache_clear()
    assert not ok and "apt-get install bubblewrap" in why and "user namespaces" in why


@needs_bwrap
def test_the_default_uses_the_sandbox_where_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits_module.SANDBOX_ENV, raising=False)
    box = make_sandbox(Limits())
    assert box.filesystem and box.prefix == []
    assert any("bubblewrap" in e for e in box.enforced)
    assert not any(n.startswith("NOT sandboxed") for n in box.notes)
    argv = box.wrap(["/bin/true"], writable=[], readonly=[], hide=[], env={})
    assert argv[0] == "bwrap"


@needs_bwrap
@pytest.mark.slow
def test_a_graded_submission_cannot_reach_the_course_folder(tmp_path: Path) -> None:
    """End to end: the tiny exercise graded in the sandbox; the answer cell probes around.

    (``solutions/`` is not probed: in this branch's grading flow the kernel still imports the
    checks; the trusted-parent flow hides it, see ``test_real_grading_packages_can_be_hidden``.)
    """
    import nbformat
    from test_pipeline import make_tiny_course, reference

    from autograder.grade import autograde
    from autograder.intake import collect

    course = make_tiny_course(tmp_path)
    root = str(course.root.resolve())
    (tmp_path / "secret.txt").write_text("instructor only", encoding="utf-8")
    probe = (
        "import os\n"
        "SEEN = []\n"
        f"for path in ({root!r} + '/gradebook.db', {root!r} + '/originals', "
        f"{str(tmp_path / 'secret.txt')!r}):\n"
        "    if os.path.exists(path):\n"
        "        SEEN.append(path)\n"
        # Lands in the sandbox's own /tmp at most (pytest's folders are under /tmp); the
        # host's gradebook is checked below.
        "try:\n"
        f"    open({root!r} + '/gradebook.db', 'w').write('overwritten')\n"
        "except OSError:\n"
        "    pass\n"
        "def square(x):\n"
        "    assert not SEEN, f'the sandbox let the kernel see {SEEN}'\n"
        "    return x * x\n"
    )
    nb = reference(course)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "square-answer":
            cell.source = probe
    inbox = tmp_path / "inbox" / "ada"
    inbox.mkdir(parents=True)
    nbformat.write(nb, inbox / "tiny.ipynb")
    collect(course, tmp_path / "inbox")
    before = course.gradebook.read_bytes()[:16]
    (result,) = autograde(course, limits=Limits(sandbox="required"), progress=False)
    assert result.status == "graded", result.reasons
    assert "square-test" not in result.failed_tests, result.failed_tests
    assert result.score == 3 and any("bubblewrap" in s for s in result.sandbox)
    assert course.gradebook.read_bytes()[:16] == before == b"SQLite format 3\x00"


def test_cli_required_refuses_with_the_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from autograder.__main__ import main

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_available.cache_clear()
    try:
        code = main(["--course-dir", str(tmp_path), "autograde", "--sandbox", "required"])
    finally:
        sandbox.sandbox_available.cache_clear()
    err = capsys.readouterr().err
    assert code == 1
    assert "Cannot grade in a sandbox" in err and "apt-get install bubblewrap" in err


@needs_bwrap
def test_a_kernel_in_the_sandbox_is_driven_and_interrupted_from_outside(tmp_path: Path) -> None:
    """The trusted-parent flow: ipykernel inside, the client outside, Unix sockets in a shared
    folder; a cell is interrupted by a control message (a signal to bwrap would kill it)."""
    import signal
    import tempfile

    from jupyter_client.blocking import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    shared = Path(tempfile.mkdtemp(prefix="ag-"))  # socket paths must stay short
    secret = tmp_path / "gradebook.db"
    secret.write_text("scores", encoding="utf-8")
    try:
        conn, _ = write_connection_file(
            str(shared / "kernel.json"), transport="ipc", ip=str(shared / "k")
        )
        argv = sandbox.wrap_command(
            [sys.executable, "-m", "ipykernel_launcher", "-f", conn],
            writable=[shared],
            readonly=[],
            hide=[],
            env={"PYTHONWARNINGS": "ignore"},
        )
        proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
        # Connect once the kernel has bound its sockets: a heartbeat sent earlier is lost and
        # the client then takes the kernel for dead (seen under load).
        deadline = time.monotonic() + 120
        while len(list(shared.glob("k-*"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        client = BlockingKernelClient()
        client.load_connection_file(conn)
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            seen: list[str] = []
            reply = client.execute_interactive(
                f"import os; print(os.path.exists({str(secret)!r}), os.getpid() < 10)",
                timeout=60,
                output_hook=lambda m: seen.append(m["content"].get("text", "")),
            )
            assert reply["content"]["status"] == "ok"
            assert "".join(seen).split() == ["False", "True"]
            client.execute("import time; time.sleep(120)")
            time.sleep(1)
            client.control_channel.send(client.session.msg("interrupt_request", {}))
            reply = client.get_shell_msg(timeout=30)
            assert reply["content"]["ename"] == "KeyboardInterrupt"
        finally:
            client.stop_channels()
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)
