"""Kernel interfaces a sandboxed program must not reach, tried from inside real sandboxes.

io_uring creates sockets and opens files without the system calls the
seccomp filter watches; process_vm_writev rewrites another process's memory;
personality changes, modify_ldt, userfaultfd, bpf, perf, keyrings, kexec and
the mount family widen the kernel surface an escape can use.
"""

from __future__ import annotations

import pytest

from tests.security.sandbox_support import build_program, make_manager, run
from virtstudio.sandbox.profile import SandboxProfile

manager = pytest.fixture(make_manager)

DENIED = ("personality-addr-no-randomize", "personality-read-implies-exec", "modify_ldt",
          "process_vm_readv", "userfaultfd", "bpf", "perf_event_open", "keyctl", "add_key",
          "request_key", "kexec_load", "kexec_file_load", "mount", "umount2", "fsopen",
          "open_tree", "io_uring_setup", "io_uring_enter", "io_uring_register")
# The filter answers EPERM, or ENOSYS where programs should fall back (io_uring).
FILTER_ERRORS = ("EPERM", "ENOSYS")


def profile_for(folder) -> SandboxProfile:
    return SandboxProfile(name="t", read_only=[str(folder)])


def test_io_uring_cannot_open_a_forbidden_socket_family(manager, tmp_path):
    program = build_program("io_uring_socket", tmp_path / "bin")
    _, out = run(manager, profile_for(program.parent), str(program))
    assert "direct socket: Address family not supported" in out, out  # the socket() rule
    assert "IO_URING_SOCKET" not in out, out
    assert "io_uring_setup refused: Function not implemented" in out, out


def test_cannot_write_another_process_memory(manager, tmp_path):
    program = build_program("process_vm_write", tmp_path / "bin")
    _, out = run(manager, profile_for(program.parent), str(program))
    assert "WROTE_OTHER_PROCESS" not in out, out
    assert "process_vm_writev refused: Operation not permitted" in out, out


def test_denied_kernel_interfaces_are_refused_by_the_filter(manager, tmp_path):
    program = build_program("kernel_interfaces", tmp_path / "bin")
    code, out = run(manager, profile_for(program.parent), str(program))
    assert code == 0, out
    results = dict(line.split(" ", 1) for line in out.splitlines()[1:] if " " in line)
    for name in DENIED:
        verdict = results.get(name, "missing")
        assert verdict.startswith("refused") and verdict.split()[-1] in FILTER_ERRORS, \
            f"{name}: {verdict}\n{out}"
    # The default persona stays usable: programs query and set it at start-up.
    assert results["personality-query"] == "allowed", out
    assert results["personality-linux"] == "allowed", out
