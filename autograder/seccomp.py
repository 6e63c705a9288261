"""A seccomp filter for the sandbox, written as a classic BPF program in pure Python.

bubblewrap installs it (``bwrap --seccomp FD``) on the sandboxed command just before it
starts; with ``no_new_privs`` (which bwrap sets) it holds for everything started inside and
cannot be removed. The filter denies, with ``EPERM``, the system calls a graded notebook never
needs and an escape would: mounting and remounting (``mount``, ``umount2``, ``pivot_root``,
the new mount API), new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*``
flag), reading or writing another process (``ptrace``, ``process_vm_readv/writev``), the
kernel keyring, ``bpf``, ``perf_event_open``, ``userfaultfd``, kernel modules, ``kexec``,
``reboot``, swap, clocks and accounting. ``clone3`` gets ``ENOSYS``, so C libraries fall back
to ``clone``, whose flags the filter can read. A call from another ABI (x32, or 32-bit
``int 0x80`` on x86-64) is denied whole.

No library is needed (Debian's ``python3-seccomp`` exists only for the system Python): the
program is a few dozen ``struct sock_filter`` entries packed with :mod:`struct`.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

# linux/audit.h
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
# linux/seccomp.h
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# linux/filter.h (classic BPF)
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K
# struct seccomp_data offsets
NR, ARCH, ARG0_LOW = 0, 4, 16
#: The x32 ABI's syscall numbers carry this bit.
X32_SYSCALL_BIT = 0x40000000
#: clone() flags that create a namespace (CLONE_NEWTIME is 0x80, inside clone()'s exit signal
#: byte, so only clone3 can ask for it: clone3 is refused anyway).
CLONE_NEW_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)

#: Denied system calls by name, with their numbers on each architecture (x86_64, aarch64).
DENIED: dict[str, tuple[int, int]] = {
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "unshare": (272, 97),
    "setns": (308, 268),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "syslog": (103, 116),
    "quotactl": (179, 60),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "lookup_dcookie": (212, 18),
}
#: (x86_64, aarch64) numbers of clone and clone3.
CLONE = (56, 220)
CLONE3 = (435, 435)
_ARCHES = {"x86_64": (0, AUDIT_ARCH_X86_64), "aarch64": (1, AUDIT_ARCH_AARCH64)}


class UnsupportedArch(Exception):
    """This machine's architecture has no syscall table here (the filter is then skipped)."""


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def machine() -> str:
    """The kernel's architecture name, normalized (``arm64`` is ``aarch64``)."""
    name = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def program(arch: str | None = None) -> bytes:
    """The filter as a packed ``struct sock_filter[]`` (what ``bwrap --seccomp`` reads).

    Raises:
        UnsupportedArch: ``arch`` is neither x86_64 nor aarch64.
    """
    arch = arch or machine()
    if arch not in _ARCHES:
        raise UnsupportedArch(f"no seccomp syscall table for {arch!r}")
    column, audit_arch = _ARCHES[arch]
    denied = sorted({numbers[column] for numbers in DENIED.values()})
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    body: list[tuple[str, int, int | str, int | str]] = []  # (op, k, jt, jf); labels resolved
    body.append(("ld", ARCH, 0, 0))
    body.append(("jeq", audit_arch, 1, 0))  # the right ABI: go on
    body.append(("ret", deny, 0, 0))
    body.append(("ld", NR, 0, 0))
    if arch == "x86_64":
        body.append(("jge", X32_SYSCALL_BIT, "deny", 0))
    for number in denied:
        body.append(("jeq", number, "deny", 0))
    body.append(("jeq", CLONE3[column], "enosys", 0))
    body.append(("jeq", CLONE[column], 0, "allow"))
    body.append(("ld", ARG0_LOW, 0, 0))
    body.append(("jset", CLONE_NEW_FLAGS, "deny", 0))
    labels = {"allow": len(body), "deny": len(body) + 1, "enosys": len(body) + 2}
    body.append(("ret", SECCOMP_RET_ALLOW, 0, 0))
    body.append(("ret", deny, 0, 0))
    body.append(("ret", SECCOMP_RET_ERRNO | errno.ENOSYS, 0, 0))
    codes = {"ld": BPF_LD_W_ABS, "jeq": BPF_JEQ_K, "jge": BPF_JGE_K, "jset": BPF_JSET_K}
    codes["ret"] = BPF_RET_K
    out = []
    for index, (op, k, jt, jf) in enumerate(body):
        jumps = []
        for target in (jt, jf):
            offset = labels[target] - index - 1 if isinstance(target, str) else target
            if not 0 <= offset <= 255:
                raise AssertionError("seccomp jump out of range")  # cannot happen: ~50 entries
            jumps.append(offset)
        out.append(_insn(codes[op], k, *jumps))
    return b"".join(out)


def program_fd() -> int:
    """A file descriptor, positioned at 0, holding :func:`program` (an anonymous memfd).

    The caller passes it to ``bwrap --seccomp FD`` (and in ``pass_fds``) and closes it once
    bwrap has started: bwrap reads it before it runs the command.

    Raises:
        UnsupportedArch: no table for this architecture.
    """
    data = program()
    fd = os.memfd_create("autograder-seccomp") if hasattr(os, "memfd_create") else -1
    if fd < 0:  # pragma: no cover - every Linux since 3.17 has memfd_create
        import tempfile

        handle = tempfile.TemporaryFile()
        fd = os.dup(handle.fileno())
        handle.close()
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
