"""Resource limits and isolation for grading one submission.

Every submission is graded in its own child process; the Jupyter kernel that runs the
student's code is a child of it and inherits:

- an address-space cap (``RLIMIT_AS``) and a file-size cap (``RLIMIT_FSIZE``), set with
  ``resource.setrlimit`` just before the child starts (``Sandbox.preexec``);
- a filesystem sandbox (:mod:`autograder.sandbox`, bubblewrap) where the machine can run one:
  the child sees its scratch folder, the Python environment and the course data, nothing else
  of the filesystem, no network and no host sockets (``--sandbox required|off``), no
  capability and a seccomp filter; one control group per submission (:mod:`autograder.cgroups`);
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

from autograder import cgroups
from autograder import sandbox as fs_sandbox
from course.errors import CourseError

#: ``required`` (the default): grade only in the bubblewrap sandbox, refuse with the remedy
#: where it cannot run; ``off``: grade without it, every result then says NOT sandboxed.
SANDBOX_MODES = ("required", "off")
#: With a cgroup, the per-process address-space cap is the memory cap but at least this much
#: (``import torch`` alone reserves about 3.4 GiB of address space).
AS_FLOOR_MB = 6144
#: Tests and CI machines without bubblewrap set this to ``off`` (an explicit request); the
#: grader's own default is ``required``.
SANDBOX_ENV = "AUTOGRADER_SANDBOX"


def default_sandbox_mode() -> str:
    """``required`` unless ``AUTOGRADER_SANDBOX`` asks for another mode."""
    return os.environ.get(SANDBOX_ENV, "required")


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
            With a control group (:mod:`autograder.cgroups`) the cap is the submission's
            whole resident memory, tmpfs included, and no address-space cap is set.
        max_file_mb: largest file the kernel may write, in MiB (``RLIMIT_FSIZE``); 0: no cap.
        max_processes: processes and threads of the whole submission at once (cgroup
            ``pids.max``; without cgroups ``RLIMIT_NPROC`` when not root); 0: no cap.
        disk_mb: what the submission may write into its scratch folder, in MiB (checked
            every 0.5 s; past it the submission is stopped); 0: no cap.
        tmp_mb: size of the sandbox's private ``/tmp`` (a tmpfs), in MiB; 0: the tmpfs
            default (half the RAM).
        network: ``"auto"`` (cut the network where the system allows, note it otherwise),
            ``"off"`` (require it to be cut: fail if it cannot be), or ``"allow"``.
        sandbox: ``"required"`` (grade only in the bubblewrap sandbox: refuse, with the
            remedy, where it cannot run) or ``"off"`` (every result says NOT sandboxed).
            The default is ``required`` (or the ``AUTOGRADER_SANDBOX`` environment variable).
        max_output_chars: characters kept per cell output; the rest is cut with a marker.
    """

    cell_timeout: int = 60
    submission_timeout: int = 900
    memory_mb: int = 8192
    max_file_mb: int = 512
    network: str = "auto"
    sandbox: str = field(default_factory=default_sandbox_mode)
    max_output_chars: int = 20_000
    max_processes: int = 256
    disk_mb: int = 1024
    tmp_mb: int = 1024

    def to_dict(self) -> dict[str, int | str]:
        """Return the limits as a JSON-ready dict."""
        return asdict(self)


@dataclass
class Sandbox:
    """How to start a grading child process under the limits, and what was enforced.

    ``filesystem`` is True when :meth:`wrap` runs the command in a bubblewrap sandbox (which
    also cuts the network and gives it its own PID namespace); otherwise ``prefix`` (an
    ``unshare`` command, or nothing) is put in front of it. ``cgroup`` is the control-group
    version each submission is accounted in (2 or 1), 0 where only rlimits apply.
    """

    prefix: list[str]
    preexec: Callable[[], None] | None
    enforced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    filesystem: bool = False
    network: bool = False  # True: the sandboxed command keeps the host network (allow)
    cgroup: int = 0
    limits: Limits = field(default_factory=Limits)

    def wrap(
        self,
        argv: list[str],
        *,
        writable: list[Path],
        readonly: list[Path],
        hide: list[Path],
        env: dict[str, str],
        seccomp_fd: int | None = None,
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
                seccomp_fd=seccomp_fd,
                tmp_mb=self.limits.tmp_mb,
            )
        return [*self.prefix, *argv]

    def budget(self, cpus: float) -> cgroups.Budget:
        """What one submission's control group allows (``cpus``: its share of the cores)."""
        return cgroups.Budget(
            memory_mb=self.limits.memory_mb,
            max_processes=self.limits.max_processes,
            cpus=cpus,
        )


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


def rlimit_setter(limits: Limits, cgroup: int = 0) -> Callable[[], None]:
    """Return a function that applies the caps in the child, between fork and exec.

    With a control group (``cgroup`` 1 or 2) memory and processes are bounded there, for the
    whole submission (``RLIMIT_AS`` is then the cap, at least :data:`AS_FLOOR_MB`: a backstop
    against one absurd allocation); without one the address space of each process, the
    processes of the user (``RLIMIT_NPROC``, not for root, whom it does not bind) and each
    process's CPU seconds (``RLIMIT_CPU``) are.
    """
    memory = limits.memory_mb * 1024 * 1024 if limits.memory_mb > 0 else None
    if memory is not None and cgroup:
        # The cgroup bounds the submission's resident memory; this per-process address-space
        # backstop only turns one absurd allocation into a MemoryError instead of an OOM kill
        # (torch reserves about 3.4 GiB of address space it never touches: never below 6 GiB).
        memory = max(memory, AS_FLOOR_MB * 1024 * 1024)
    fsize = limits.max_file_mb * 1024 * 1024 if limits.max_file_mb > 0 else None
    nproc = limits.max_processes if limits.max_processes > 0 and not cgroup else None
    if os.geteuid() == 0:
        nproc = None
    cpu_seconds = limits.submission_timeout if not cgroup else None

    def apply() -> None:
        # A new session makes the child the leader of its own process group, so a timeout can
        # kill the kernel too (it is a grandchild and would otherwise survive).
        os.setsid()
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if cpu_seconds is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
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
    version, why_not = cgroups.probe()
    notes: list[str] = []
    if version:
        enforced.append(
            cgroups.describe(cgroups.Budget(limits.memory_mb, limits.max_processes, 1.0)).replace(
                "CPU 1 core(s)", "CPU: its share of the cores (cores / workers)"
            )
            + "; every process of it killed at the end"
        )
        if limits.memory_mb > 0:
            enforced.append(
                f"address space {max(limits.memory_mb, AS_FLOOR_MB)} MiB per process (RLIMIT_AS)"
            )
    else:
        rl = []
        if limits.memory_mb > 0:
            rl.append(f"address space {limits.memory_mb} MiB per process (RLIMIT_AS)")
        if limits.max_processes > 0 and os.geteuid() != 0:
            rl.append(f"{limits.max_processes} processes of the grading user (RLIMIT_NPROC)")
        rl.append(f"CPU {limits.submission_timeout} s per process (RLIMIT_CPU)")
        enforced.append("rlimits only: " + ", ".join(rl))
        notes.append(
            "NOT bounded per submission (no writable cgroup: "
            f"{why_not}): total memory of several processes, CPU share"
            + (", process count (root is not bound by RLIMIT_NPROC)" if os.geteuid() == 0 else "")
        )
    if limits.max_file_mb > 0:
        enforced.append(f"file size {limits.max_file_mb} MiB (RLIMIT_FSIZE)")
    if limits.disk_mb > 0:
        enforced.append(f"scratch folder {limits.disk_mb} MiB (checked every 0.5 s)")
    box = Sandbox(
        prefix=[],
        preexec=rlimit_setter(limits, version),
        enforced=enforced,
        notes=notes,
        cgroup=version,
        limits=limits,
    )
    usable, why = (False, "") if limits.sandbox == "off" else fs_sandbox.sandbox_available()
    if usable:
        box.filesystem = True
        box.network = limits.network == "allow"
        enforced.append(
            "filesystem sandbox (bubblewrap): only the scratch folder is writable; the course "
            "folder, other submissions and host sockets are out of reach"
        )
        enforced.append(
            "no privilege inside: every capability dropped, own user namespace, no_new_privs, "
            "seccomp filter (mount, namespaces, ptrace, keyring, bpf...)"
        )
        if limits.tmp_mb > 0:
            enforced.append(f"/tmp {limits.tmp_mb} MiB (tmpfs)")
        enforced.append("kernel killed with the grading process (private PID namespace)")
        if box.network:
            notes.append("network allowed (--network allow)")
        else:
            enforced.append("no network (private network namespace)")
        return box
    if limits.sandbox == "required":
        raise CourseError(
            f"Cannot grade in a sandbox: {why}",
            "do that; or, only if you accept that student code can then read the solutions "
            "and write the course folder, pass --sandbox off (every result then says NOT "
            "sandboxed).",
        )
    notes.insert(
        0, "NOT sandboxed (--sandbox off): student code can read and write what the grader can"
    )
    if limits.network == "allow":
        notes.append("network allowed (--network allow)")
    elif network_namespace_available():
        # A PID namespace too: when the worker dies (or is killed on timeout) the kernel, which
        # jupyter_client starts in a session of its own, dies with it.
        box.prefix = ["unshare", *UNSHARE_ARGS, "--"]
        enforced.append("no network (private network namespace, unshare -rn)")
        enforced.append("kernel killed with the worker (private PID namespace)")
    elif limits.network == "off":
        raise CourseError(
            "Cannot cut the network: `unshare --user --net` is not permitted on this machine.",
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
            "or pass --network auto to grade with the network available.",
        )
    else:
        notes.append(
            "network NOT cut: unprivileged user namespaces are not available here "
            "(unshare -rn failed); student code could open connections"
        )
    return box
