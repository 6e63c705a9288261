"""A filesystem sandbox for student code, built with bubblewrap (``bwrap``).

:func:`wrap_command` turns a command line into one that runs it inside a new mount, PID,
network, IPC and UTS namespace that sees:

- the Python environment read-only: ``sys.prefix``, ``sys.base_prefix``, the folders on
  ``sys.path`` outside them and the package folders of editable installs (of a project folder
  only its package folders and ``pyproject.toml``, so ``grading/``, ``results/`` or ``.git``
  beside them never appear; a single-file module at its top is not importable inside);
- the system's ``/usr`` (and ``/bin``, ``/lib``... as on the host) and a few harmless files of
  ``/etc`` (dynamic linker cache, ``passwd``, time zone, fonts), read-only;
- ``readonly`` paths read-only (course data, caches), ``writable`` paths read-write (the
  submission's scratch folder), and nothing else of the filesystem;
- ``hide`` paths masked by an empty tmpfs even inside a bound tree (``solutions/``,
  ``autograder/``, a course folder inside the project);
- its own ``/tmp``, ``/run`` and Jupyter runtime folder, a ``/proc`` of its own PID namespace
  and a minimal ``/dev``;
- no network at all: the network namespace is new, so host TCP ports (127.0.0.1 included) and
  abstract Unix sockets are out of reach; filesystem sockets are reachable only where a
  ``writable`` folder holds them;
- only the environment variables given.

It dies with its parent (``--die-with-parent``) and cannot reach the terminal
(``--new-session``). Resource limits (``RLIMIT_AS``, ``RLIMIT_FSIZE``) set on the ``bwrap``
process before exec, as :mod:`autograder.limits` does, are inherited by everything inside.

Driving a kernel from outside (``tests/test_sandbox.py`` does it): write the connection file
with ``transport="ipc"`` and ``ip`` inside a ``writable`` folder with a short path (Unix socket
paths stop at ~100 bytes); the sockets work across the namespaces, TCP does not. Interrupt a
cell with an ``interrupt_request`` on the control channel (kernelspec ``interrupt_mode:
"message"``): bwrap does not pass signals on, so SIGINT to its process kills the sandbox.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.sandbox_paths import grading_package_copies, python_roots
from course.errors import explain

#: What to tell an instructor whose machine cannot run the sandbox.
REMEDY = (
    "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`) and allow "
    "unprivileged user namespaces (`sudo sysctl kernel.unprivileged_userns_clone=1`; on "
    "Ubuntu 24.04 also `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or "
    "grade inside a container started with those permissions"
)

#: Files and folders of ``/etc`` that programs need and that say nothing about the course.
_ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "passwd",
    "group",
    "nsswitch.conf",
    "fonts",
    "mime.types",
    "alternatives",
)
#: Top-level system folders; symlinks (merged /usr) are recreated as symlinks.
_SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: The uid and gid inside the sandbox when the grader runs as root ("nobody").
SANDBOX_ID = 65534
#: Where the sandbox's private Jupyter runtime folder lives unless ``env`` names one.
RUNTIME_DIR = "/run/jupyter"
#: Host environment variables that may enter a sandbox (see :func:`sandbox_env`).
_PASSED_ENV = re.compile(
    r"(?:LANG|LANGUAGE|LC_\w+|TZ|PATH|PYTHON\w*|COURSE_\w+|MPLBACKEND|TQDM_DISABLE|"
    r"(?:OMP|MKL|OPENBLAS|NUMEXPR)_NUM_THREADS|JUPYTER_RUNTIME_DIR|TMPDIR|TORCH_HOME)"
)


@functools.lru_cache(maxsize=1)
def sandbox_available() -> tuple[bool, str]:
    """Whether bubblewrap can run a sandbox here; the string says why not (empty when it can).

    The probe runs this Python inside the same kind of sandbox :func:`wrap_command` builds,
    so a positive answer means grading will work, not merely that ``bwrap`` is installed.
    """
    if shutil.which("bwrap") is None:
        return False, explain("bubblewrap (bwrap) is not installed", f"{REMEDY}.")
    fd = filter_fd()
    probe = wrap_command(
        [sys.executable, "-c", "import os, sys; sys.exit(0 if os.getpid() < 10 else 3)"],
        writable=[],
        readonly=[],
        hide=[],
        env={},
        seccomp_fd=fd,
        tmp_mb=16,
    )
    try:
        done = subprocess.run(
            probe,
            capture_output=True,
            timeout=60,
            check=False,
            pass_fds=() if fd is None else (fd,),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, explain(f"bubblewrap could not start a sandbox ({exc})", f"{REMEDY}.")
    finally:
        if fd is not None:
            os.close(fd)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        detail = said[0] if said else f"exit code {done.returncode}"
        return False, explain(f"bubblewrap could not start a sandbox ({detail})", f"{REMEDY}.")
    return True, ""


def filter_fd() -> int | None:
    """A fresh file descriptor with the seccomp filter, or None on an architecture without
    a syscall table here (x86-64 and aarch64 have one)."""
    from autograder.seccomp import UnsupportedArch, program_fd

    try:
        return program_fd()
    except UnsupportedArch:
        return None


def sandbox_env(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` a sandboxed command may see: locale, Python, course and thread
    settings; never tokens, ``HOME`` or other variables of the grading account."""
    return {k: v for k, v in env.items() if _PASSED_ENV.fullmatch(k)}


def _mount_args(writable: list[Path], readonly: list[Path], hide: list[Path]) -> list[str]:
    """bwrap mount options, parents before children so deeper mounts land on top."""
    rank = {"ro": 0, "rw": 1, "hide": 2}
    wanted: dict[Path, str] = {}
    for kind, paths in (
        ("ro", python_roots()),
        ("ro", readonly),
        ("rw", writable),
        ("hide", [*hide, *grading_package_copies()]),
    ):
        for raw in paths:
            path = Path(raw).resolve()
            if kind != "hide" and not path.exists():
                continue
            if rank[kind] >= rank[wanted.get(path, "ro")]:
                wanted[path] = kind
    shown = [p for p, k in wanted.items() if k != "hide"]
    args: list[str] = []
    for path in sorted(wanted, key=lambda p: (len(p.parts), str(p))):
        kind = wanted[path]
        if kind == "hide":
            # Only where it would otherwise be visible: a hidden path outside every bound tree
            # is absent anyway.
            if any(path.is_relative_to(s) and path != s for s in shown):
                # A folder is masked by an empty tmpfs; a file by /dev/null, which cannot even
                # be opened there (device nodes are not usable on a bind mount in the sandbox).
                if path.is_file():
                    args += ["--ro-bind", "/dev/null", str(path)]
                else:
                    args += ["--tmpfs", str(path)]
            continue
        if kind == "ro" and _covered(path, wanted):
            continue
        args += ["--ro-bind" if kind == "ro" else "--bind", str(path), str(path)]
    return args


def _covered(path: Path, wanted: dict[Path, str]) -> bool:
    """True when a read-only ancestor already shows ``path`` and nothing lies between."""
    for other, kind in wanted.items():
        if kind == "ro" and other != path and path.is_relative_to(other):
            between = [
                p
                for p, k in wanted.items()
                if k != "ro" and p.is_relative_to(other) and (path.is_relative_to(p) or p == path)
            ]
            if not between:
                return True
    return False


def _system_args() -> list[str]:
    args: list[str] = []
    for name in _SYSTEM:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for name in _ETC:
        host = Path("/etc") / name
        if host.exists():
            args += ["--ro-bind", str(host.resolve()), str(host)]
    return args


def wrap_command(
    argv: list[str],
    *,
    writable: list[Path],
    readonly: list[Path],
    hide: list[Path],
    env: dict[str, str],
    network: bool = False,
    seccomp_fd: int | None = None,
    tmp_mb: int = 0,
) -> list[str]:
    """``argv`` wrapped in a bubblewrap sandbox (see the module docstring for what it sees).

    Args:
        argv: the command to run inside; use absolute paths (``sys.executable``).
        writable: folders the command may write (its scratch folder); the first one is the
            working folder inside, else ``/tmp``.
        readonly: extra files or folders it may read (course data, caches).
        hide: folders masked by an empty tmpfs (files made unreadable) where a bound tree
            would show them: the ``solutions`` and ``autograder`` package folders, a course
            folder inside a bound folder. Hidden paths that are bound themselves are left out.
        env: the whole environment inside. Where it sets no ``HOME``, ``TMPDIR`` or
            ``JUPYTER_RUNTIME_DIR``, they point into the sandbox's own ``/tmp`` and ``/run``.
        network: keep the host's network (``--network allow``); default: none at all.
        seccomp_fd: an open file descriptor holding the seccomp filter
            (:func:`autograder.seccomp.program_fd`); pass it in ``pass_fds`` too.
        tmp_mb: size of the private ``/tmp`` in MiB (0: the tmpfs default, half the RAM).

    Every capability is dropped (``--cap-drop ALL``) in a user namespace of its own, whoever
    runs the grader: as root the command runs as uid/gid 65534 inside, so nothing in it is
    privileged, and bubblewrap sets ``no_new_privs``.

    Returns:
        The command line to pass to ``subprocess.Popen`` (with the caller's rlimits in
        ``preexec_fn``; they apply to ``bwrap`` and everything it starts).
    """
    inner_env = {
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "JUPYTER_RUNTIME_DIR": RUNTIME_DIR,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **env,
    }
    args = [
        "bwrap",
        "--unshare-all",  # user, mount, PID, network, IPC, UTS, cgroup
        "--unshare-user",  # required, not "where possible": capabilities stay inside it
        *(["--uid", str(SANDBOX_ID), "--gid", str(SANDBOX_ID)] if os.geteuid() == 0 else []),
        "--cap-drop",
        "ALL",
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        *(["--share-net"] if network else []),
        *_system_args(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *(["--size", str(tmp_mb * 1024 * 1024)] if tmp_mb > 0 else []),
        "--tmpfs",
        "/tmp",
        "--size",
        str(16 * 1024 * 1024),
        "--tmpfs",
        "/run",
        "--dir",
        RUNTIME_DIR,
        *_mount_args(list(writable), list(readonly), list(hide)),
        # The root is a tmpfs holding the mount points; nothing may be written there.
        "--remount-ro",
        "/",
        "--chdir",
        str(Path(writable[0]).resolve()) if writable else "/tmp",
    ]
    for key, value in sorted(inner_env.items()):
        args += ["--setenv", key, value]
    return [*args, "--", *argv]
