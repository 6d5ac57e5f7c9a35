"""Which host folders a profile may grant: normalised, then checked against a deny-list.

A granted path is resolved first (``realpath``: ``//``, ``/./``, ``..`` and
every symlink), so what is checked is what bwrap will bind.  Some places can
never be granted, nor anything inside them, nor any folder that contains them
(granting ``/home/me`` would bind ``~/.ssh`` with it).  A few roots (``/``, the
home root) may not be granted whole, but folders below them may.  Write access
is further kept off the system's own folders and off anything the launching
user does not own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.identity import UNPRIVILEGED_UID

# Never bound, whole or in part: the host's secrets, devices and kernel interfaces, and the
# display servers' sockets (a sandbox gets the display only through its profile's choice).
SECRET_TREES = ("/etc", "/root", "/boot", "/dev", "/proc", "/sys", "/run", "/var/lib/libvirt",
                "/tmp/.X11-unix", "/tmp/.ICE-unix")
SECRET_HOME_TREES = (".ssh", ".gnupg", ".config/virtstudio", ".local/share/virtstudio")
# Never bound whole (it would expose every tree above); folders below are fine.
WHOLE_ROOTS = ("/", "/home")
# The system's programs and state: readable through the sandbox's own view, never writable.
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/var",
                "/srv", "/snap")


@dataclass(frozen=True)
class GrantRules:
    """The deny-list for one launching user."""

    secret_trees: tuple[Path, ...]
    whole_roots: tuple[Path, ...]
    system_trees: tuple[Path, ...]
    owner_uids: tuple[int, ...]  # whose folders a sandbox may be given to change

    @classmethod
    def for_user(cls, home: Path | None = None, uid: int | None = None) -> GrantRules:
        home = Path(os.path.realpath(home or Path.home()))
        secrets = [Path(os.path.realpath(p)) for p in SECRET_TREES]
        secrets += [home / p for p in SECRET_HOME_TREES]
        config = os.environ.get("XDG_CONFIG_HOME")
        data = os.environ.get("XDG_DATA_HOME")
        if config:
            secrets.append(Path(os.path.realpath(config)) / "virtstudio")
        if data:
            secrets.append(Path(os.path.realpath(data)) / "virtstudio")
        roots = {Path("/"), Path("/home"), home.parent}
        uid = os.geteuid() if uid is None else uid
        # Started by root, a sandbox runs as nobody: a folder root gave to nobody is "own".
        owners = (uid, UNPRIVILEGED_UID) if uid == 0 else (uid,)
        return cls(tuple(secrets), tuple(sorted(roots)),
                   tuple(Path(os.path.realpath(p)) for p in SYSTEM_TREES), owners)


def _within(path: Path, tree: Path) -> bool:
    return path == tree or tree in path.parents


def resolve_grant(path: str, *, writable: bool, rules: GrantRules | None = None,
                  must_exist: bool = True) -> Path:
    """The real folder ``path`` names, or VirtStudioError saying why it cannot be granted."""
    rules = rules or GrantRules.for_user()
    if not path or not path.startswith("/") or "\0" in path:
        raise VirtStudioError(f"“{path}” must be an absolute path.")
    if ".." in Path(path).parts:
        raise VirtStudioError(f"“{path}” must be an absolute path without “..”.")
    if must_exist and not os.path.lexists(path):
        raise VirtStudioError(f"The granted folder {path} does not exist.")
    try:
        real = Path(os.path.realpath(path))
    except OSError as exc:
        raise VirtStudioError(f"{path} cannot be granted: {exc.strerror}.") from None
    shown = path if str(real) == path else f"{path} (which is {real})"
    if real in rules.whole_roots:
        what = "the whole file system" if real == Path("/") else "every user's home"
        raise VirtStudioError(f"Granting {shown} would give the sandbox {what}: pick a folder "
                              "inside it.")
    for tree in rules.secret_trees:
        if _within(real, tree):
            raise VirtStudioError(f"{shown} can never be granted: it is or lies in {tree}, "
                                  "which holds the system's or your secrets.")
        if real in tree.parents:
            raise VirtStudioError(f"{shown} can never be granted: it contains {tree}, "
                                  "which holds the system's or your secrets.")
    if writable:
        for tree in rules.system_trees:
            if _within(real, tree):
                raise VirtStudioError(f"{shown} belongs to the system: a sandbox may only "
                                      "change folders of your own.")
        if must_exist and real.exists() and real.stat().st_uid not in rules.owner_uids:
            raise VirtStudioError(f"{shown} is not yours: a sandbox may only change folders "
                                  "you own.")
    return real
