"""A private OpenSSH server on 127.0.0.1, owned by the test that starts it.

Everything lives in its own temp dir: a throwaway host key, a client key made
for the test and authorised for root, a known_hosts file holding the host key,
and an ``ssh`` wrapper that uses that known_hosts file, so neither root's
~/.ssh nor the system's sshd is touched.  ``uri()`` gives a ``qemu+ssh://``
URI that libvirt (through ``command=``) and VirtStudio's tunnels both follow.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def sshd_unavailable() -> str:
    """Why a private sshd cannot run here, or ""."""
    if os.geteuid() != 0:
        return "a private sshd that logs in as root needs root"
    if not Path(SSHD).exists():
        return "openssh-server is not installed (packaging/dev/setup-host installs it)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "openssh-client is not installed"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateSshd:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vs-sshd-"))
        self.port = _free_port()
        self.key = self.dir / "client_key"
        self.ssh_command = self.dir / "ssh"
        self.log = self.dir / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateSshd:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, timeout: float = 10.0) -> None:
        d = self.dir
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vstest",
                            "-f", str(d / name)], check=True, capture_output=True)
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        host_key = " ".join((d / "host_key.pub").read_text().split()[:2])
        (d / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key}\n")
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n")
        # An exec wrapper in Python (argv list, no shell) pinning our known_hosts file.
        self.ssh_command.write_text(
            f"#!{sys.executable}\nimport os, sys\n"
            f"os.execvp('ssh', ['ssh', '-o', 'UserKnownHostsFile={d / 'known_hosts'}', "
            "'-o', 'StrictHostKeyChecking=yes', *sys.argv[1:]])\n")
        self.ssh_command.chmod(0o755)
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "Server listening" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private sshd did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def uri(self, path: str = "/system") -> str:
        return (f"qemu+ssh://root@127.0.0.1:{self.port}{path}"
                f"?keyfile={self.key}&command={self.ssh_command}")

    def logins(self) -> int:
        """How many SSH connections have logged in so far."""
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def established(self) -> int:
        """How many TCP connections to this sshd are open now (from /proc/net/tcp)."""
        port_hex = f":{self.port:04X}"
        count = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            # local address, remote address, state 01 = ESTABLISHED; the server side.
            if fields[1].endswith(port_hex) and fields[3] == "01":
                count += 1
        return count

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # Only our own sshd, by its pid; its per-connection children end with it.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
