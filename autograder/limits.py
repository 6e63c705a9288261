"""Resource limits and isolation for grading one submission.

Every submission is graded in its own child process; the Jupyter kernel that runs the
student's code is a child of it and inherits:

- an address-space cap (``RLIMIT_AS``) and a file-size cap (``RLIMIT_FSIZE``), set with
  ``resource.setrlimit`` just before the child starts (``Sandbox.preexec``);
- a filesystem sandbox (:mod:`autograder.sandbox`, bubblewrap) where the machine can run one:
  the child sees its scratch folder, the Python environment and the course data, nothing else
  of the filesystem, no network and no host sockets (``--sandbox auto|required|off``);
- where there is no sandbox, a private, empty network namespace (``unshare --user
  --map-root-user --net``) if unprivileged user namespaces are allowed;
- a per-cell timeout (nbgrader's ``Execute.timeout``) and a wall-clock timeout for the whole
  submission, after which the child's process group is killed.

:class:`Limits` is the one place the defaults are defined: the command line reads them from it.
What is *not* enforced is listed in ``autograder/README.md``.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import sandbox as fs_sandbox

SANDBOX_MODES = ("auto", "required", "off")
NETWORK_MODES = ("auto", "off", "allow")


@dataclass(frozen=True)
class Limits:
    """What one submission may use while it is graded (the defaults are the CLI's defaults).

    Args:
        cell_timeout: seconds one cell may run before it is interrupted (nbgrader
            ``Execute.timeout``); the cell then fails and grading continues.
        submission_timeout: wall-clock seconds for the whole submission; past it the grading
            process and its kernel are killed and the submission gets zero with a reason.
        memory_mb: address-space cap in MiB for the grading process and the kernel
            (``RLIMIT_AS``); ``0`` means no cap. torch reserves far more virtual memory than it
            touches; measured on the project's 2-core CPU machine (VmPeak): ``import torch``
            3.4 GiB, plus a random VGG16 3.9 GiB, plus one training step at batch 8, 64 px
            4.6 GiB (autograder/README.md, "Memory"). 8 GiB leaves room for honest mistakes
            and still stops a runaway allocation.
        max_file_mb: largest file the kernel may write, in MiB (``RLIMIT_FSIZE``); 0: no cap.
        network: ``"auto"`` (cut the network where the system allows, note it otherwise),
            ``"off"`` (require it to be cut: fail if it cannot be), or ``"allow"``.
        sandbox: ``"auto"`` (bubblewrap sandbox where it runs, else grade with a
            "NOT sandboxed" note on every result), ``"required"`` (refuse to grade without
            it) or ``"off"``.
        max_output_chars: characters kept per cell output; the rest is cut with a marker.
    """

    cell_timeout: int = 60
    submission_timeout: int = 900
    memory_mb: int = 8192
    max_file_mb: int = 512
    network: str = "auto"
    sandbox: str = "auto"
    max_output_chars: int = 20_000

    def to_dict(self) -> dict[str, int | str]:
        """Return the limits as a JSON-ready dict."""
        return asdict(self)


@dataclass
class Sandbox:
    """How to start a grading child process under the limits, and what was enforced.

    ``filesystem`` is True when :meth:`wrap` runs the command in a bubblewrap sandbox (which
    also cuts the network and gives it its own PID namespace); otherwise ``prefix`` (an
    ``unshare`` command, or nothing) is put in front of it.
    """

    prefix: list[str]
    preexec: Callable[[], None] | None
    enforced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    filesystem: bool = False
    network: bool = False  # True: the sandboxed command keeps the host network (allow)

    def wrap(
        self,
        argv: list[str],
        *,
        writable: list[Path],
        readonly: list[Path],
        hide: list[Path],
        env: dict[str, str],
    ) -> list[str]:
        """``argv`` as it must be started: in the sandbox, behind ``prefix``, or as is.

        Pass the same ``env`` to ``subprocess.Popen`` as well: inside the sandbox only ``env``
        is seen; without one the process gets ``env`` from Popen.
        """
        if self.filesystem:
            return fs_sandbox.wrap_command(
                argv,
                writable=writable,
                readonly=readonly,
                hide=hide,
                env=env,
                network=self.network,
            )
        return [*self.prefix, *argv]


#: A private user, network and PID namespace: no network, and the kernel (which
#: jupyter_client starts in a session of its own) dies with the worker.
UNSHARE_ARGS = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")


@functools.lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """True when ``unshare -rn`` works here (unprivileged user namespaces are allowed)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        done = subprocess.run(
            [unshare, *UNSHARE_ARGS, "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def rlimit_setter(limits: Limits) -> Callable[[], None]:
    """Return a function that applies the caps in the child, between fork and exec."""
    memory = limits.memory_mb * 1024 * 1024 if limits.memory_mb > 0 else None
    fsize = limits.max_file_mb * 1024 * 1024 if limits.max_file_mb > 0 else None

    def apply() -> None:
        # A new session makes the child the leader of its own process group, so a timeout can
        # kill the kernel too (it is a grandchild and would otherwise survive).
        os.setsid()
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        # No core dumps from a crashing kernel filling the disk.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def make_sandbox(limits: Limits) -> Sandbox:
    """Work out how to start a grading child under ``limits`` on this machine.

    Raises:
        RuntimeError: ``limits.sandbox == "required"`` but bubblewrap cannot run here, or
            ``limits.network == "off"`` but the network cannot be cut.
        ValueError: an unknown ``sandbox`` or ``network`` mode.
    """
    if limits.sandbox not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {SANDBOX_MODES}, not {limits.sandbox!r}")
    if limits.network not in NETWORK_MODES:
        raise ValueError(f"network must be one of {NETWORK_MODES}, not {limits.network!r}")
    enforced = [
        f"cell timeout {limits.cell_timeout} s",
        f"submission timeout {limits.submission_timeout} s",
        f"output cut at {limits.max_output_chars} characters per output",
    ]
    if limits.memory_mb > 0:
        enforced.append(f"address space {limits.memory_mb} MiB (RLIMIT_AS)")
    if limits.max_file_mb > 0:
        enforced.append(f"file size {limits.max_file_mb} MiB (RLIMIT_FSIZE)")
    notes: list[str] = []
    box = Sandbox(prefix=[], preexec=rlimit_setter(limits), enforced=enforced, notes=notes)
    usable, why = (False, "") if limits.sandbox == "off" else fs_sandbox.sandbox_available()
    if usable:
        box.filesystem = True
        box.network = limits.network == "allow"
        enforced.append(
            "filesystem sandbox (bubblewrap): only the scratch folder is writable; the course "
            "folder, other submissions and host sockets are out of reach"
        )
        enforced.append("kernel killed with the grading process (private PID namespace)")
        if box.network:
            notes.append("network allowed (--network allow)")
        else:
            enforced.append("no network (private network namespace)")
        return box
    if limits.sandbox == "required":
        raise RuntimeError(
            f"Cannot grade in a sandbox: {why}\n"
            "  How to fix it: do that, or pass --sandbox auto to grade without a filesystem "
            "sandbox (every result then says NOT sandboxed)."
        )
    if limits.sandbox == "off":
        notes.append("NOT sandboxed (--sandbox off): student code can read what the grader can")
    else:
        notes.append(f"NOT sandboxed: {why}")
    if limits.network == "allow":
        notes.append("network allowed (--network allow)")
    elif network_namespace_available():
        # A PID namespace too: when the worker dies (or is killed on timeout) the kernel, which
        # jupyter_client starts in a session of its own, dies with it.
        box.prefix = ["unshare", *UNSHARE_ARGS, "--"]
        enforced.append("no network (private network namespace, unshare -rn)")
        enforced.append("kernel killed with the worker (private PID namespace)")
    elif limits.network == "off":
        raise RuntimeError(
            "Cannot cut the network: `unshare --user --net` is not permitted on this machine.\n"
            "  How to fix it: enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1), or pass --network auto to grade "
            "with the network available."
        )
    else:
        notes.append(
            "network NOT cut: unprivileged user namespaces are not available here "
            "(unshare -rn failed); student code could open connections"
        )
    return box
