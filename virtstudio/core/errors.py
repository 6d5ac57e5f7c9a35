"""Turn exceptions from libvirt and the OS into messages a user can read."""

from __future__ import annotations

from dataclasses import dataclass

import libvirt


@dataclass(frozen=True)
class UserError:
    """A one-line message for the user, with the technical detail kept apart."""

    message: str
    detail: str = ""

    def __str__(self) -> str:
        return self.message


class VirtStudioError(Exception):
    """An error whose message is already fit to show to a user."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


_FRIENDLY_BY_CODE = {
    "VIR_ERR_NO_CONNECT": "Could not connect to the host.",
    "VIR_ERR_SYSTEM_ERROR": "The host reported a system error.",
    "VIR_ERR_OPERATION_INVALID": "That action is not possible in the machine's current state.",
    "VIR_ERR_NO_DOMAIN": "The virtual machine no longer exists.",
    "VIR_ERR_NO_STORAGE_POOL": "The storage pool no longer exists.",
    "VIR_ERR_NO_STORAGE_VOL": "The storage volume no longer exists.",
    "VIR_ERR_NO_NETWORK": "The network no longer exists.",
    "VIR_ERR_AUTH_FAILED": "Authentication with the host failed.",
    "VIR_ERR_AUTH_CANCELLED": "Authentication was cancelled.",
    "VIR_ERR_OPERATION_TIMEOUT": "The host did not answer in time.",
    "VIR_ERR_OPERATION_UNSUPPORTED": "The host does not support that action.",
    "VIR_ERR_NO_SUPPORT": "The host does not support that action.",
    "VIR_ERR_XML_ERROR": "The XML description is not valid.",
    "VIR_ERR_XML_DETAIL": "The XML description is not valid.",
    "VIR_ERR_INVALID_ARG": "An argument was not valid.",
    "VIR_ERR_OPERATION_FAILED": "The operation failed.",
    "VIR_ERR_INTERNAL_ERROR": "The host reported an internal error.",
    "VIR_ERR_RPC": "The connection to the host was lost.",
}


def _code_names() -> dict[int, str]:
    return {
        getattr(libvirt, name): name
        for name in dir(libvirt)
        if name.startswith("VIR_ERR_") and isinstance(getattr(libvirt, name), int)
        and name not in ("VIR_ERR_NONE", "VIR_ERR_WARNING", "VIR_ERR_ERROR")
    }


_CODE_NAMES = _code_names()


def describe(exc: BaseException) -> UserError:
    """Return what to tell the user about ``exc``."""
    if isinstance(exc, VirtStudioError):
        return UserError(exc.message, exc.detail)
    if isinstance(exc, libvirt.libvirtError):
        text = (exc.get_error_message() or str(exc)).strip()
        code = exc.get_error_code()
        code_name = _CODE_NAMES.get(code, str(code))
        summary = text.splitlines()[0] if text else _FRIENDLY_BY_CODE.get(code_name, "")
        if not summary:
            summary = "libvirt reported an error."
        lead = _FRIENDLY_BY_CODE.get(code_name)
        message = f"{lead} {summary}" if lead and lead.rstrip(".") not in summary else summary
        detail = f"libvirt error {code_name} (domain {exc.get_error_domain()}):\n{text}"
        return UserError(message[0].upper() + message[1:], detail)
    if isinstance(exc, OSError):
        return UserError(exc.strerror or str(exc), repr(exc))
    return UserError(str(exc) or type(exc).__name__, repr(exc))


# What libvirt says when the daemon at the other end went away mid-call: the RPC
# layer's codes, and the texts a dead socket gives under other codes.
_LOST_CODES = ("VIR_ERR_RPC", "VIR_ERR_NO_CONNECT", "VIR_ERR_INVALID_CONN")
_LOST_TEXTS = ("invalid connection pointer", "connection closed", "socket is closed",
               "cannot write data", "cannot recv data", "end of file while reading",
               "broken pipe", "connection reset")


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the daemon broke (it died or restarted)."""
    if not isinstance(exc, libvirt.libvirtError):
        return False
    if _CODE_NAMES.get(exc.get_error_code()) in _LOST_CODES:
        return True
    text = (exc.get_error_message() or str(exc)).lower()
    return any(t in text for t in _LOST_TEXTS)


def lost_connection_error(exc: BaseException, host: str, step: str, done: list[str],
                          not_done: list[str], left: list[str]) -> VirtStudioError:
    """A message for a job whose daemon went away: what was done, what not, what is left.

    ``left`` names each thing the job could not undo, with what to do about it.
    """
    parts = [f"The connection to {host} was lost during {step}."]
    parts.append("Done: " + ("; ".join(done) if done else "nothing") + ".")
    if not_done:
        parts.append("Not done: " + "; ".join(not_done) + ".")
    parts.append("Left: " + ("; ".join(left) if left else "nothing") + ".")
    return VirtStudioError(" ".join(parts), describe(exc).detail)
