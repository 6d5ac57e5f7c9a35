"""A sandbox's network: its own namespace, joined to a bridge or served by pasta."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.identity import SETPRIV

INSIDE_IFNAME = "eth0"
NSENTER = "/usr/bin/nsenter"
NS_GET_USERNS = 0xB701  # ioctl on a namespace: a new fd for the user namespace owning it


def _ipr(netns: str | None) -> IPRoute:
    # The synchronous IPRoute is fine here: this runs on a launcher thread,
    # never inside the GUI's event loop.
    return IPRoute(netns=netns) if netns else IPRoute()


def bridge_exists(bridge: str, netns: str | None = None) -> bool:
    if netns is None:
        return (Path("/sys/class/net") / bridge / "bridge").is_dir()
    with _ipr(netns) as ipr:
        links = ipr.link_lookup(ifname=bridge)
        if not links:
            return False
        info = ipr.get_links(links[0])[0].get_attr("IFLA_LINKINFO")
        return info is not None and info.get_attr("IFLA_INFO_KIND") == "bridge"


def attach_to_bridge(pid: int, bridge: str, host_ifname: str, *, netns: str | None = None,
                     address: str | None = None, gateway: str | None = None) -> None:
    """Give the sandbox whose first process is ``pid`` an ``eth0`` on ``bridge``."""
    if address is not None:
        ipaddress.ip_interface(address)  # raises ValueError on nonsense
    try:
        with _ipr(netns) as ipr:
            found = ipr.link_lookup(ifname=bridge)
            if not found:
                raise VirtStudioError(f"The bridge {bridge} no longer exists: nothing was started.")
            ipr.link("add", ifname=host_ifname, kind="veth",
                     peer={"ifname": INSIDE_IFNAME, "net_ns_pid": pid})
            host_index = ipr.link_lookup(ifname=host_ifname)[0]
            ipr.link("set", index=host_index, master=found[0], state="up")
        with IPRoute(netns=f"/proc/{pid}/ns/net") as inside:
            lo = inside.link_lookup(ifname="lo")[0]
            inside.link("set", index=lo, state="up")
            eth = inside.link_lookup(ifname=INSIDE_IFNAME)[0]
            inside.link("set", index=eth, state="up")
            if address is not None:
                iface = ipaddress.ip_interface(address)
                inside.addr("add", index=eth, address=str(iface.ip),
                            prefixlen=iface.network.prefixlen)
                if gateway:
                    inside.route("add", dst="default", gateway=gateway)
    except NetlinkError as exc:
        raise VirtStudioError(f"Could not join the sandbox to bridge {bridge}: {exc}.",
                              repr(exc)) from None


def detach(host_ifname: str, netns: str | None = None) -> None:
    """Remove the host end if it is still there (it goes with the namespace anyway)."""
    try:
        with _ipr(netns) as ipr:
            found = ipr.link_lookup(ifname=host_ifname)
            if found:
                ipr.link("del", index=found[0])
    except (NetlinkError, OSError):
        pass  # the namespace itself may be gone already


# ---- user-mode networking (the "internet" mode) ----------------------------------------

# pasta gives the sandbox's own network namespace an eth0 whose traffic pasta
# carries out through ordinary sockets of the host.  Nothing of the host's
# namespace is shared: not its interfaces, not its abstract unix sockets (X11's
# among them).  The options keep the host's own services out of reach too.
PASTA_OPTIONS = (
    "--config-net", "--quiet", "--ns-ifname", INSIDE_IFNAME,
    "--tcp-ports", "none", "--udp-ports", "none",  # nothing of the sandbox is served outside
    "--tcp-ns", "none", "--udp-ns", "none",  # its loopback does not lead to the host's
    "--no-map-gw",  # nor does its gateway address
)
PASTA_READY_TIMEOUT_S = 10.0
# The holder's command: says it runs (pasta has configured the namespace by then),
# then waits until its standard input closes.
_HOLDER_COMMAND = ("/bin/sh", "-c", "echo ready; exec cat")


@dataclass
class UserModeNetwork:
    """The pasta process serving one sandbox, and (for a root launcher) its holder."""

    pasta_pid: int
    holder: subprocess.Popen[bytes] | None = None
    netns_path: str = ""  # the namespace a root launcher's bwrap joins

    def stop(self) -> None:
        if self.holder is not None:
            # Its command ends when its input closes; pasta follows it.
            if self.holder.stdin is not None:
                with contextlib.suppress(OSError):
                    self.holder.stdin.close()
            try:
                self.holder.wait(5)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()
            if self.holder.stdout is not None:
                self.holder.stdout.close()
            return
        if _is_pasta(self.pasta_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pasta_pid, signal.SIGTERM)


def _is_pasta(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("pasta", "passt")
    except OSError:
        return False


def _pasta() -> str:
    tool = shutil.which("pasta")
    if tool is None:
        raise VirtStudioError("Internet access for sandboxes needs pasta (the passt package), "
                              "which is not installed: nothing was started.")
    return tool


def _outside(netns: str | None) -> list[str]:
    """The prefix that runs pasta's outside end in ``netns`` (a named namespace standing for
    the host's network, as tests make) instead of this process's own."""
    return [NSENTER, f"--net=/run/netns/{netns}", "--"] if netns else []


def attach_user_mode(pid: int, pid_file: Path, netns: str | None = None) -> UserModeNetwork:
    """Connect the network namespace of the sandbox whose first process is ``pid``.

    For a launcher that is not root: pasta runs as the same user and joins the
    sandbox's network namespace through the user namespace that owns it (bwrap
    later moves the sandbox into a nested one, which could not enter it).  It
    returns once the namespace is configured and stays in the background until
    the namespace is gone.
    """
    net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        owner_fd = fcntl.ioctl(net_fd, NS_GET_USERNS)
    except OSError:
        os.close(net_fd)
        raise
    argv = [*_outside(netns), _pasta(), *PASTA_OPTIONS, "--pid", str(pid_file),
            "--userns", f"/proc/self/fd/{owner_fd}", "--netns", f"/proc/self/fd/{net_fd}"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              pass_fds=(net_fd, owner_fd), timeout=PASTA_READY_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise VirtStudioError("User-mode networking (pasta) did not start in time: "
                              "nothing was started.") from None
    finally:
        os.close(owner_fd)
        os.close(net_fd)
    try:
        pasta_pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pasta_pid = 0
    if done.returncode != 0 or not pasta_pid:
        raise VirtStudioError("User-mode networking (pasta) failed: nothing was started.",
                              done.stderr.decode(errors="replace"))
    return UserModeNetwork(pasta_pid)


def hold_user_mode_namespace(uid: int, gid: int, netns: str | None = None) -> UserModeNetwork:
    """For a root launcher: a network namespace made and served by pasta running as ``uid``.

    pasta will not serve a namespace its (unprivileged) user cannot enter, and a
    namespace bwrap makes as root is such a one.  So pasta makes the namespace
    itself, running a holder process in it; bwrap then starts inside it.
    """
    argv = [*_outside(netns), SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
            _pasta(), *PASTA_OPTIONS, "--foreground", "--", *_HOLDER_COMMAND]
    # Its messages go to a file, not a pipe: nothing can fill up and block it.
    with tempfile.TemporaryFile() as errors:
        holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=errors, close_fds=True)
        try:
            assert holder.stdout is not None
            ready = _read_line(holder.stdout.fileno(), PASTA_READY_TIMEOUT_S)
            children_file = Path(f"/proc/{holder.pid}/task/{holder.pid}/children")
            children = children_file.read_text().split() if ready == b"ready" else []
        except BaseException:
            holder.kill()
            holder.wait()
            raise
        if not children:
            holder.kill()
            holder.wait()
            errors.seek(0)
            raise VirtStudioError("User-mode networking (pasta) failed: nothing was started.",
                                  errors.read(4096).decode(errors="replace"))
    return UserModeNetwork(holder.pid, holder, f"/proc/{children[0]}/ns/net")


def _read_line(fd: int, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.strip()
