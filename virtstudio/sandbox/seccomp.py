"""A seccomp filter for sandboxes, as a classic BPF program bwrap loads with --seccomp.

It denies what sandboxes usually deny (after Flatpak's list): injecting
keystrokes into the terminal (TIOCSTI, TIOCLINUX), new namespaces and
mounts, kernel keyrings, ptrace and perf, kernel modules, bpf, and socket
families other than unix, inet, inet6 and netlink.  Beyond that list it
denies io_uring (whose rings open sockets and files without the system calls
this filter watches), reading or writing another process's memory
(process_vm_readv/writev), modify_ldt, and every personality change but the
default Linux persona.  Only x86_64 is built; a process of another
architecture (or the x32 ABI) is killed, not let through.
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

from virtstudio.core.errors import VirtStudioError

AUDIT_ARCH_X86_64 = 0xC000003E
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000


def ret_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


_OFF_NR = 0
_OFF_ARCH = 4


def _arg_low(i: int) -> int:
    return 16 + 8 * i


TIOCSTI = 0x5412
TIOCLINUX = 0x541C
CLONE_NEWUSER = 0x10000000
PER_LINUX = 0x0
PERSONALITY_QUERY = 0xFFFFFFFF  # asks for the current persona, changes nothing
ALLOWED_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK

# x86_64 system call numbers.
SYS = {
    "ioctl": 16, "socket": 41, "clone": 56, "ptrace": 101, "personality": 135,
    "modify_ldt": 154, "process_vm_readv": 310, "process_vm_writev": 311, "syslog": 103,
    "uselib": 134,
    "pivot_root": 155, "chroot": 161, "acct": 163, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "init_module": 175,
    "delete_module": 176, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "setns": 308, "finit_module": 313, "kexec_file_load": 320,
    "bpf": 321, "userfaultfd": 323, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "clone3": 435, "mount_setattr": 442,
}
DENIED_EPERM = (
    "ptrace", "syslog", "uselib", "pivot_root", "chroot", "acct", "mount", "umount2",
    "swapon", "swapoff", "reboot", "init_module", "delete_module", "kexec_load", "add_key",
    "request_key", "keyctl", "unshare", "perf_event_open", "name_to_handle_at",
    "open_by_handle_at", "setns", "finit_module", "kexec_file_load", "bpf", "userfaultfd",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "modify_ldt", "process_vm_readv", "process_vm_writev",
)
# As if the kernel had no io_uring: programs that try it fall back to plain system calls.
DENIED_ENOSYS = ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register")


@dataclass
class _Insn:
    code: int
    k: int
    true: str | int = 0  # a label, or a relative offset
    false: str | int = 0


class _Program:
    """Instructions with symbolic jump targets, resolved on assembly."""

    def __init__(self) -> None:
        self.insns: list[_Insn] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def load(self, offset: int) -> None:
        self.insns.append(_Insn(_LD_W_ABS, offset))

    def jeq(self, k: int, true: str | int = 0, false: str | int = 0) -> None:
        self.insns.append(_Insn(_JEQ_K, k, true, false))

    def jge(self, k: int, true: str | int = 0, false: str | int = 0) -> None:
        self.insns.append(_Insn(_JGE_K, k, true, false))

    def jset(self, k: int, true: str | int = 0, false: str | int = 0) -> None:
        self.insns.append(_Insn(_JSET_K, k, true, false))

    def ret(self, value: int) -> None:
        self.insns.append(_Insn(_RET_K, value))

    def assemble(self) -> bytes:
        out = bytearray()
        for index, insn in enumerate(self.insns):
            jt = self._offset(index, insn.true)
            jf = self._offset(index, insn.false)
            out += struct.pack("<HBBI", insn.code, jt, jf, insn.k & 0xFFFFFFFF)
        return bytes(out)

    def _offset(self, index: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - index - 1
        if not 0 <= offset <= 255:
            raise ValueError(f"jump to {target} out of range")
        return offset


def build_filter(machine: str | None = None) -> bytes:
    """The filter program, ready to hand to ``bwrap --seccomp FD``."""
    machine = machine or platform.machine()
    if machine != "x86_64":
        raise VirtStudioError(
            f"Sandboxes need a seccomp filter, and none is built for {machine} yet: "
            "nothing was started.")
    p = _Program()
    p.load(_OFF_ARCH)
    p.jeq(AUDIT_ARCH_X86_64, 1, 0)
    p.ret(RET_KILL_PROCESS)
    p.load(_OFF_NR)
    p.jge(0x40000000, "kill", 0)  # the x32 ABI shares the arch value
    p.jeq(SYS["ioctl"], "ioctl", 0)
    p.jeq(SYS["socket"], "socket", 0)
    p.jeq(SYS["clone"], "clone", 0)
    p.jeq(SYS["personality"], "personality", 0)
    # clone3: libc falls back to clone, whose flags the filter can see.
    for name in DENIED_ENOSYS:
        p.jeq(SYS[name], "enosys", 0)
    for name in DENIED_EPERM:
        p.jeq(SYS[name], "eperm", 0)
    p.ret(RET_ALLOW)

    p.label("ioctl")
    p.load(_arg_low(1))
    p.jeq(TIOCSTI, "eperm", 0)
    p.jeq(TIOCLINUX, "eperm", 0)
    p.ret(RET_ALLOW)

    p.label("socket")
    p.load(_arg_low(0))
    for family in ALLOWED_FAMILIES:
        p.jeq(family, "allow", 0)
    p.ret(ret_errno(errno.EAFNOSUPPORT))

    p.label("personality")
    p.load(_arg_low(0))  # the kernel reads the persona as 32 bits
    p.jeq(PER_LINUX, "allow", 0)
    p.jeq(PERSONALITY_QUERY, "allow", "eperm")

    p.label("clone")
    p.load(_arg_low(0))
    p.jset(CLONE_NEWUSER, "eperm", "allow")

    p.label("allow")
    p.ret(RET_ALLOW)
    p.label("eperm")
    p.ret(ret_errno(errno.EPERM))
    p.label("enosys")
    p.ret(ret_errno(errno.ENOSYS))
    p.label("kill")
    p.ret(RET_KILL_PROCESS)
    return p.assemble()
