"""The RFB clipboard: plain cut text (Latin-1) and the extended clipboard (UTF-8, zlib).

The extended clipboard is a pseudo-encoding: a server that knows it answers
with a cut-text message of negative length carrying its capabilities.  From
then on text moves as Notify (there is new text), Request (send it) and
Provide (here it is, zlib-compressed), so a large clipboard only crosses when
the other side pastes.  Every size is bounded before anything is inflated.
"""

from __future__ import annotations

import struct
import zlib

from virtstudio.console.framebuffer import ProtocolError

PSEUDO_EXT_CLIPBOARD = -1063131698  # 0xC0A1E5CE as a signed 32-bit value
FORMAT_TEXT = 1
ACTION_CAPS = 1 << 24
ACTION_REQUEST = 1 << 25
ACTION_PEEK = 1 << 26
ACTION_NOTIFY = 1 << 27
ACTION_PROVIDE = 1 << 28
ACTIONS = ACTION_REQUEST | ACTION_PEEK | ACTION_NOTIFY | ACTION_PROVIDE
MAX_TEXT = 1 << 20


def cut_text(text: str) -> bytes:
    """A plain ClientCutText message; characters outside Latin-1 become '?'."""
    data = text.replace("\r\n", "\n").encode("latin-1", errors="replace")[:MAX_TEXT]
    return struct.pack("!BxxxI", 6, len(data)) + data


def extended(flags: int, payload: bytes = b"") -> bytes:
    """An extended clipboard message from the client (negative length)."""
    body = struct.pack("!I", flags) + payload
    return struct.pack("!Bxxxi", 6, -len(body)) + body


def caps_message() -> bytes:
    """What this client can do: text only, every action, up to MAX_TEXT bytes."""
    return extended(ACTION_CAPS | ACTIONS | FORMAT_TEXT, struct.pack("!I", MAX_TEXT))


def provide_message(text: str) -> bytes:
    data = text.replace("\r\n", "\n").encode("utf-8")[:MAX_TEXT - 1] + b"\x00"
    body = zlib.compress(struct.pack("!I", len(data)) + data)
    return extended(ACTION_PROVIDE | FORMAT_TEXT, body)


def parse_provide(flags: int, payload: bytes) -> str | None:
    """The text in a server's Provide message, or None when it holds no text."""
    if not flags & FORMAT_TEXT:
        return None
    inflater = zlib.decompressobj()
    try:
        # Text is the lowest format bit, so it comes first in the stream.
        head = inflater.decompress(payload, 4)
        if len(head) < 4:
            raise ProtocolError("The server's clipboard data is cut short.")
        (size,) = struct.unpack("!I", head)
        if size == 0:
            return ""
        if size > MAX_TEXT:
            raise ProtocolError("The server's clipboard text is too long.")
        data = inflater.decompress(inflater.unconsumed_tail, size)
    except zlib.error:
        raise ProtocolError("The server's clipboard data is corrupt.") from None
    if len(data) < size:
        raise ProtocolError("The server's clipboard data is cut short.")
    return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").replace("\r\n", "\n")


class ClipboardState:
    """What the extended clipboard needs to remember between messages."""

    def __init__(self) -> None:
        self.server_actions = 0  # 0 until the server announces the extended clipboard
        self.pending_text: str | None = None  # ours, announced with Notify

    @property
    def extended(self) -> bool:
        return bool(self.server_actions)

    def outgoing(self, text: str) -> bytes:
        """The message that offers ``text`` to the server."""
        if self.extended and self.server_actions & ACTION_NOTIFY:
            self.pending_text = text
            return extended(ACTION_NOTIFY | FORMAT_TEXT)
        if self.extended and self.server_actions & ACTION_PROVIDE:
            return provide_message(text)
        return cut_text(text)

    def forget(self) -> bytes:
        """Drop our text; tells an extended server that nothing is on offer any more."""
        had = self.pending_text is not None
        self.pending_text = None
        return extended(ACTION_NOTIFY) if self.extended and had else b""

    def incoming(self, flags: int, payload: bytes, sharing: bool) -> tuple[bytes, str | None]:
        """(reply to send, text that arrived) for one extended message from the server."""
        if flags & ACTION_CAPS:
            self.server_actions = flags & ACTIONS
            return caps_message(), None
        if flags & ACTION_REQUEST:
            text = self.pending_text if sharing else None
            return (provide_message(text) if text is not None and flags & FORMAT_TEXT
                    else b""), None
        if flags & ACTION_PEEK:
            has_text = sharing and self.pending_text is not None
            return extended(ACTION_NOTIFY | (FORMAT_TEXT if has_text else 0)), None
        if flags & ACTION_NOTIFY:
            wanted = (sharing and flags & FORMAT_TEXT
                      and self.server_actions & ACTION_REQUEST)
            return (extended(ACTION_REQUEST | FORMAT_TEXT) if wanted else b""), None
        if flags & ACTION_PROVIDE:
            return b"", parse_provide(flags, payload) if sharing else None
        return b"", None
