"""Asking before a connection URI runs a program or uses a socket, key or certificate.

libvirt's remote driver takes parameters in the URI (``command=``, ``socket=``,
``keyfile=``, ``no_verify=``, ...): a URI pasted from elsewhere, given on the
command line or read from a settings file can make VirtStudio run a program
or trust something the user never chose.  Such a URI is shown whole, each
risky parameter named with what it does, and used only after a yes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.inventory import Inventory
from virtstudio.ui.confirm import confirm_box
from virtstudio.ui.settings import ConnectionSettings


def risk_text(uri: str, origin: str) -> str:
    """The question for ``uri``, plain text; ``origin`` says where the URI came from."""
    lines = [f"The connection {origin} carries settings that run a program or change what "
             "is trusted:", "", uri, ""]
    lines += [f"• {r.name}={r.value}: {r.meaning}" for r in uri_mod.risky_parameters(uri)]
    lines += ["", "Connect only if you chose these settings yourself."]
    return "\n".join(lines)


def confirm_uri(parent: QWidget, uri: str, origin: str,
                then: Callable[[], object]) -> QMessageBox | None:
    """Run ``then`` at once for an ordinary URI; ask first for one with risky parameters."""
    if not uri_mod.risky_parameters(uri):
        then()
        return None
    box = confirm_box(parent, "Connect with these settings?", risk_text(uri, origin),
                      "Connect", then)
    box.setObjectName("uriConfirmBox")
    return box


def open_start_hosts(parent: QWidget, inventory: Inventory, settings: ConnectionSettings,
                     uris: list[str], *, from_command_line: bool,
                     on_error: Callable[[str], object]) -> list[QMessageBox]:
    """Open the hosts VirtStudio starts with, asking first about any risky URI.

    A saved URI the user already confirmed (and that the settings file has not
    changed since) opens at once; a saved one confirmed now is remembered.
    Returns the questions still open.
    """
    confirmed = {s.uri for s in settings.load() if s.confirmed}
    origin = "given on the command line" if from_command_line else "saved in the settings"
    questions = []
    for uri in uris:
        def open_host(uri: str = uri, asked: bool = False) -> None:
            try:
                inventory.add(uri)
            except VirtStudioError as exc:
                on_error(exc.message)
                return
            if asked and not from_command_line:
                settings.confirm(uri)

        if not from_command_line and uri in confirmed:
            open_host()
            continue
        box = confirm_uri(parent, uri, origin, lambda u=uri: open_host(u, asked=True))
        if box is not None:
            questions.append(box)
    return questions
