"""Command-line options, parsed without Qt so --help and --version stay fast."""

from __future__ import annotations

import argparse

from virtstudio import __version__
from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError


def _uri(value: str) -> str:
    try:
        uri_mod.parse(value)
    except VirtStudioError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return value.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virtstudio",
        description="Manage virtual machines, storage and networks on one or many libvirt hosts.",
    )
    parser.add_argument("--version", action="version", version=f"VirtStudio {__version__}")
    parser.add_argument(
        "-c", "--connect", metavar="URI", action="append", type=_uri, default=[],
        help="open a connection to this libvirt URI, e.g. qemu:///system or "
             "qemu+ssh://user@host/system (repeat for several hosts); saved connections "
             "are not opened then; a URI that runs a program or names a socket, key or "
             "certificate (command=, socket=, keyfile=, ...) is shown and confirmed first",
    )
    parser.add_argument(
        "--demo", action="store_true",
        help="open the built-in demo host (libvirt's test driver with made-up machines)",
    )
    parser.add_argument(
        "--no-autoconnect", action="store_true",
        help="do not open the saved connections marked to connect automatically",
    )
    parser.add_argument(
        "--debug", action="store_true",
        help="verbose log, and report every libvirt call made on the GUI thread",
    )
    parser.add_argument(
        "--screenshot", metavar="PNG",
        help="save a picture of the main window once the hosts are loaded, then quit",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
