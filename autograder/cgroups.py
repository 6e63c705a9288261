"""Per-submission resource accounting with control groups (cgroup v2, else v1).

Everything a submission starts (the sandbox, the notebook runner, the kernel, its children)
joins one control group created for it, so its bounds hold for the submission as a whole, not
per process:

- **memory**: resident memory *including tmpfs* (the sandbox's private ``/tmp``) and page
  cache; past the cap the kernel's OOM killer ends a process of this group only;
- **processes**: at most ``max_processes`` tasks (threads count) at once: a fork bomb stops
  there;
- **CPU**: at most ``cpus`` cores' worth of time (CFS quota), whatever the number of processes.

Where does a group come from?

- **cgroup v2** (unified): the grader's own cgroup (``/proc/self/cgroup``, ``0::/path``) must
  be writable and offer ``memory`` and ``pids`` (a delegated subtree: ``systemd-run --user
  --scope -p Delegate=yes``, a container with its own cgroup namespace, or root). If that
  cgroup holds processes, the grader first moves itself into a leaf ``grader`` beside the
  submissions' groups (cgroup v2 allows processes only in leaves once controllers are on).
- **cgroup v1**: the ``memory``, ``pids`` and ``cpu`` hierarchies under ``/sys/fs/cgroup`` must
  be writable at the grader's own position in each (typically: the grader runs as root).
- otherwise :func:`probe` says why, and :mod:`autograder.limits` falls back to rlimits.

At the end :meth:`Group.kill` kills every process left in the group (``cgroup.kill`` on v2,
else repeated ``SIGKILL`` of every member; a group cannot grow past its process cap while it is
being emptied) and removes it.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Where the hierarchies are mounted (tests point it at a fake tree).
ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


@dataclass
class Budget:
    """What one submission may use in total."""

    memory_mb: int = 0  # 0: no memory cap
    max_processes: int = 0  # 0: no process cap
    cpus: float = 0.0  # 0: no CPU cap


@dataclass
class Group:
    """One submission's control group (one folder per hierarchy on v1, one on v2)."""

    version: int
    paths: dict[str, Path]
    budget: Budget
    removed: bool = False
    _events: dict[str, int] = field(default_factory=dict)

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process must be written into to join."""
        return [p / "cgroup.procs" for p in dict.fromkeys(self.paths.values())]

    def join_self(self) -> None:
        """Move the calling process into the group (call between fork and exec).

        Writes ``0`` (the writer itself), so it is safe in a ``preexec_fn``.
        """
        for procs in self.procs_files():
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """Processes in the group now."""
        found: set[int] = set()
        for procs in self.procs_files():
            try:
                text = procs.read_text()
            except OSError:
                continue
            found.update(int(line) for line in text.split() if line.isdigit())
        return sorted(found)

    def limit_hit(self) -> str | None:
        """Which bound stopped something in the group: ``"memory"``, ``"processes"`` or None."""
        if self.budget.memory_mb and self._count("memory", "oom_kill") > 0:
            return "memory"
        if self.budget.max_processes and self._count("pids", "max") > 0:
            return "processes"
        return None

    def memory_peak_mb(self) -> float | None:
        """Largest memory use of the group so far, in MiB (None where not reported)."""
        folder = self.paths.get("memory")
        if folder is None:
            return None
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((folder / name).read_text().split()[0]) / 2**20
        except (OSError, ValueError, IndexError):
            return None

    def _count(self, controller: str, key: str) -> int:
        folder = self.paths.get(controller)
        if folder is None:
            return 0
        if controller == "memory":
            name = "memory.events" if self.version == 2 else "memory.oom_control"
        else:
            name = "pids.events"
        try:
            for line in (folder / name).read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
        except (OSError, ValueError):
            pass
        return 0

    def kill(self, timeout: float = 10.0) -> None:
        """Kill every process in the group, then remove it."""
        if self.removed:
            return
        if self.version == 2 and (self.paths["memory"] / "cgroup.kill").exists():
            try:
                (self.paths["memory"] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            members = self.pids()
            if not members or time.monotonic() > deadline:
                break
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)
        for folder in dict.fromkeys(self.paths.values()):
            for _ in range(50):  # rmdir fails (EBUSY) until the last member is reaped
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        self.removed = True


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path in it ("" is the v2 unified hierarchy)."""
    found: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            found[controller] = parts[2]
    return found


def _v2_mount() -> Path | None:
    """Where the unified (cgroup2) hierarchy is mounted, if it is."""
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ")[0] == "cgroup2":
                return Path(left.split(" ")[4])
    except OSError:
        pass
    return None


def _v2_base() -> tuple[Path | None, str]:
    mount = _v2_mount()
    if ROOT != Path("/sys/fs/cgroup"):  # tests: a fake unified tree
        mount = ROOT
    if mount is None:
        return None, "no cgroup2 hierarchy is mounted"
    own = _own_paths().get("", "/")
    base = mount / own.lstrip("/")
    try:
        controllers = (base / "cgroup.controllers").read_text().split()
    except OSError:
        return None, f"cgroup v2: {base} cannot be read"
    missing = [c for c in ("memory", "pids") if c not in controllers]
    if missing:
        return None, f"cgroup v2: the controllers {', '.join(missing)} are not delegated to {base}"
    if not os.access(base, os.W_OK) or not os.access(base / "cgroup.subtree_control", os.W_OK):
        return None, f"cgroup v2: {base} is not writable by this user (no delegated subtree)"
    return base, ""


def _v1_bases() -> tuple[dict[str, Path], str]:
    own = _own_paths()
    bases: dict[str, Path] = {}
    for controller in V1_CONTROLLERS:
        if controller not in own:
            return {}, f"cgroup v1: no {controller} hierarchy"
        base = ROOT / controller / own[controller].lstrip("/")
        if not (base / "cgroup.procs").is_file():
            return {}, f"cgroup v1: {base} not found"
        if not os.access(base, os.W_OK):
            return {}, f"cgroup v1: {base} is not writable by this user"
        bases[controller] = base
    return bases, ""


@functools.lru_cache(maxsize=1)
def probe() -> tuple[int, str]:
    """Which cgroup version can hold the submissions here: (2 | 1 | 0, why not when 0)."""
    base, why2 = _v2_base()
    if base is not None:
        try:
            _v2_prepare(base)
            return 2, ""
        except OSError as error:
            why2 = f"cgroup v2: cannot enable the controllers in {base} ({error.strerror})"
    bases, why1 = _v1_bases()
    if bases:
        try:  # a real write, not only a permission bit: create and remove a test group
            test = bases["pids"] / f"autograder-probe-{os.getpid()}"
            test.mkdir(exist_ok=True)
            test.rmdir()
            return 1, ""
        except OSError as error:
            why1 = f"cgroup v1: cannot create a group ({error.strerror})"
    return 0, f"{why2}; {why1}"


def _v2_prepare(base: Path) -> None:
    """Turn on memory, pids (and cpu) for the children of ``base``; leave ``base`` a non-leaf."""
    wanted = [c for c in ("memory", "pids", "cpu")]
    available = (base / "cgroup.controllers").read_text().split()
    enabled = (base / "cgroup.subtree_control").read_text().split()
    todo = [c for c in wanted if c in available and c not in enabled]
    if not todo:
        return
    procs = (base / "cgroup.procs").read_text().split()
    if procs:
        # Processes may live only in leaves: the grader moves itself into one.
        leaf = base / "grader"
        leaf.mkdir(exist_ok=True)
        for pid in procs:
            try:
                (leaf / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # a process that ended, or one we may not move: enabling then says so
    (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in todo))


_counter = iter(range(1, 1 << 62))


def create(name: str, budget: Budget) -> Group | None:
    """A new control group for one submission with ``budget`` set, or None without cgroups."""
    version, _ = probe()
    tag = "".join(c for c in name if c.isalnum())[:40]
    label = f"autograder-{os.getpid()}-{next(_counter)}-{tag}"
    if version == 2:
        base, _ = _v2_base()
        assert base is not None
        folder = base / label
        folder.mkdir()
        group = Group(2, {"memory": folder, "pids": folder, "cpu": folder}, budget)
        if budget.memory_mb:
            (folder / "memory.max").write_text(str(budget.memory_mb * 2**20))
            if (folder / "memory.swap.max").exists():
                (folder / "memory.swap.max").write_text("0")
        if budget.max_processes:
            (folder / "pids.max").write_text(str(budget.max_processes))
        if budget.cpus and (folder / "cpu.max").exists():
            quota = max(1000, int(budget.cpus * CPU_PERIOD_US))
            (folder / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        return group
    if version == 1:
        bases, _ = _v1_bases()
        paths = {c: bases[c] / label for c in V1_CONTROLLERS}
        for folder in paths.values():
            folder.mkdir()
        group = Group(1, paths, budget)
        try:
            if budget.memory_mb:
                memory = paths["memory"]
                (memory / "memory.limit_in_bytes").write_text(str(budget.memory_mb * 2**20))
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    # Swap counts too, else a hog swaps out and goes on.
                    (memory / "memory.memsw.limit_in_bytes").write_text(
                        str(budget.memory_mb * 2**20)
                    )
            if budget.max_processes:
                (paths["pids"] / "pids.max").write_text(str(budget.max_processes))
            if budget.cpus:
                (paths["cpu"] / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                quota = max(1000, int(budget.cpus * CPU_PERIOD_US))
                (paths["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError:
            group.kill()
            raise
        return group
    return None


def describe(budget: Budget) -> str:
    """One line for the results: which bounds the groups enforce, and with which mechanism."""
    version, _ = probe()
    parts = []
    if budget.memory_mb:
        parts.append(f"memory {budget.memory_mb} MiB incl. tmpfs /tmp and page cache")
    if budget.max_processes:
        parts.append(f"{budget.max_processes} processes/threads")
    if budget.cpus:
        parts.append(f"CPU {budget.cpus:g} core(s)")
    return f"cgroup v{version} per submission: " + ", ".join(parts)
