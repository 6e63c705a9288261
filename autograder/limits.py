"""Resource limits and isolation for grading one submission.

Every submission is graded in its own child process (``python -m autograder.worker``); the
Jupyter kernel that runs the student's code is a child of that process and inherits:

- an address-space cap (``RLIMIT_AS``) and a file-size cap (``RLIMIT_FSIZE``), set with
  ``resource.setrlimit`` just before the child starts;
- a private, empty network namespace (``unshare --user --map-root-user --net``) where the
  system allows unprivileged user namespaces. Inside it not even loopback is up, so the kernel
  talks to the grader over Unix sockets (``KernelManager.transport = "ipc"``);
- a per-cell timeout (nbgrader's ``Execute.timeout``) and a wall-clock timeout for the whole
  submission, after which the child's process group is killed.

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

#: Default address-space cap. torch reserves far more virtual memory than it touches. Measured
#: on this project's 2-core CPU machine (VmPeak): `import torch` 3.4 GiB; plus a random VGG16
#: 3.9 GiB; plus one training step at batch 8, 64 px 4.6 GiB (autograder/README.md, "Memory").
#: 8 GiB leaves room for honest mistakes and still stops a runaway allocation.
DEFAULT_MEMORY_MB = 8192


@dataclass(frozen=True)
class Limits:
    """What one submission may use while it is graded.

    Args:
        cell_timeout: seconds one cell may run before it is interrupted (nbgrader
            ``Execute.timeout``); the cell then fails and grading continues.
        submission_timeout: wall-clock seconds for the whole submission; past it the grading
            process and its kernel are killed and the submission gets zero with a reason.
        memory_mb: address-space cap in MiB for the grading process and the kernel
            (``RLIMIT_AS``); ``0`` means no cap.
        max_file_mb: largest file the kernel may write, in MiB (``RLIMIT_FSIZE``).
        network: ``"auto"`` (cut the network where the system allows, note it otherwise),
            ``"off"`` (require it to be cut: fail if it cannot be), or ``"allow"``.
        max_output_chars: characters kept per cell output; the rest is cut with a marker.
    """

    cell_timeout: int = 60
    submission_timeout: int = 900
    memory_mb: int = DEFAULT_MEMORY_MB
    max_file_mb: int = 512
    network: str = "auto"
    max_output_chars: int = 20_000

    def to_dict(self) -> dict[str, int | str]:
        """Return the limits as a JSON-ready dict."""
        return asdict(self)


@dataclass
class Sandbox:
    """How to start a grading child process under the limits, and what was enforced."""

    prefix: list[str]
    preexec: Callable[[], None] | None
    enforced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def network_cut(self) -> bool:
        """True when the child runs in its own network namespace."""
        return bool(self.prefix)


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


def _rlimit_setter(limits: Limits) -> Callable[[], None]:
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
        RuntimeError: ``limits.network == "off"`` but no network namespace can be made.
    """
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
    prefix: list[str] = []
    if limits.network == "allow":
        notes.append("network allowed (--network allow)")
    elif network_namespace_available():
        # A PID namespace too: when the worker dies (or is killed on timeout) the kernel, which
        # jupyter_client starts in a session of its own, dies with it.
        prefix = ["unshare", *UNSHARE_ARGS, "--"]
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
    return Sandbox(prefix=prefix, preexec=_rlimit_setter(limits), enforced=enforced, notes=notes)
