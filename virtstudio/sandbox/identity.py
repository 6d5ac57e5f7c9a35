"""Who a sandbox runs as: never uid 0.

An ordinary user's sandbox runs as that user (bubblewrap maps the same uid
into its user namespace).  Started by root, a sandbox runs as the
unprivileged user nobody (65534) for real: bwrap builds the sandbox as root
without a user namespace, then ``setpriv`` drops every uid, gid, group and
capability before the program starts.  Mapping uid 65534 inside a user
namespace to root outside (``bwrap --unshare-user --uid 65534`` run as root)
is not enough: the kernel still checks file access as root, so host files
readable only by root stay readable.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

UNPRIVILEGED_UID = 65534
UNPRIVILEGED_GID = 65534
SETPRIV = "/usr/bin/setpriv"


@dataclass(frozen=True)
class SandboxIdentity:
    uid: int
    gid: int
    user: str
    group: str
    drops_root: bool  # started by root: bwrap runs as root, the program as uid

    def passwd_text(self, home: str) -> str:
        lines = [f"{self.user}:x:{self.uid}:{self.gid}:Sandbox user:{home}:/bin/sh"]
        if self.uid != UNPRIVILEGED_UID:
            # Files of users the sandbox cannot map show as this one.
            lines.append(f"nobody:x:{UNPRIVILEGED_UID}:{UNPRIVILEGED_GID}:nobody:/nonexistent:"
                         "/usr/sbin/nologin")
        return "\n".join(lines) + "\n"

    def group_text(self) -> str:
        lines = [f"{self.group}:x:{self.gid}:"]
        if self.gid != UNPRIVILEGED_GID:
            lines.append(f"nogroup:x:{UNPRIVILEGED_GID}:")
        return "\n".join(lines) + "\n"

    def can_use(self, path: Path, *, write: bool) -> bool:
        """Whether this identity may open the granted folder ``path`` (its own mode bits;
        the bind mount skips the folders above it)."""
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_uid == self.uid:
            bits = st.st_mode >> 6
        elif st.st_gid == self.gid:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        need = 0o7 if write and stat.S_ISDIR(st.st_mode) else 0o2 if write else 0
        need |= 0o5 if stat.S_ISDIR(st.st_mode) else 0o4
        return bits & need == need

    def drop_argv(self) -> list[str]:
        """The prefix that turns bwrap's root child into this unprivileged user."""
        if not self.drops_root:
            return []
        return [SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all",
                "--no-new-privs", "--"]


def _names(uid: int, gid: int) -> tuple[str, str]:
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = "sandbox"
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = "sandbox"
    return user, group


def launcher_identity() -> SandboxIdentity:
    """The identity a sandbox started by this process runs as."""
    if os.geteuid() != 0:
        uid, gid = os.geteuid(), os.getegid()
        return SandboxIdentity(uid, gid, *_names(uid, gid), drops_root=False)
    if shutil.which(SETPRIV) is None:
        raise VirtStudioError("Started as root, a sandbox runs as the unprivileged user nobody, "
                              "which needs setpriv (util-linux): nothing was started.")
    user, group = _names(UNPRIVILEGED_UID, UNPRIVILEGED_GID)
    return SandboxIdentity(UNPRIVILEGED_UID, UNPRIVILEGED_GID, user, group, drops_root=True)
