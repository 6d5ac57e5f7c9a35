"""SPICE framing shared by every channel: the link handshake, message headers, ACK and PING.

Each SPICE channel is its own connection.  It opens with a link message, the
server answers with its RSA public key, and the client sends its ticket (the
password) encrypted with RSA-OAEP/SHA-1.  Afterwards both sides exchange
messages with a small header; the server stops sending when the client does
not acknowledge every ``window`` messages, so the ACK is part of reading.

Every length read from the server is checked against a stated bound before
anything is read into memory for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

from virtstudio.console.framebuffer import MAX_PIXELS, ProtocolError
from virtstudio.console.rfb_client import AuthenticationError

MAGIC = b"REDQ"
VERSION = (2, 2)

CHANNEL_MAIN = 1
CHANNEL_DISPLAY = 2
CHANNEL_INPUTS = 3
CHANNEL_CURSOR = 4

COMMON_CAP_AUTH_SELECTION = 0
COMMON_CAP_AUTH_SPICE = 1
COMMON_CAP_MINI_HEADER = 3

# Messages every channel understands (server -> client).
MSG_MIGRATE = 1
MSG_MIGRATE_DATA = 2
MSG_SET_ACK = 3
MSG_PING = 4
MSG_WAIT_FOR_CHANNELS = 5
MSG_DISCONNECTING = 6
MSG_NOTIFY = 7
MSG_LIST = 8
# client -> server
MSGC_ACK_SYNC = 1
MSGC_ACK = 2
MSGC_PONG = 3

# The largest message a well-behaved server sends is one uncompressed bitmap of
# the largest screen the framebuffer accepts, plus its descriptors.
MAX_MESSAGE = MAX_PIXELS * 4 + (1 << 20)
MAX_LINK_REPLY = 4096
MAX_PASSWORD = 60  # the ticket is one RSA-1024 block
PUBKEY_BYTES = 162

LINK_ERRORS = {
    1: "the server reported an error",
    2: "the server did not recognise the protocol",
    3: "the server found the link data invalid",
    4: "the server speaks another SPICE version",
    5: "the server needs an encrypted (TLS) connection",
    6: "the server needs an unencrypted connection",
    7: "the password was refused",
    8: "the session no longer exists",
    9: "the server has no such channel",
}


def caps_words(bits: list[int]) -> list[int]:
    """Capability bit numbers as the little-endian 32-bit words SPICE sends."""
    words = [0] * (max(bits, default=-1) // 32 + 1)
    for bit in bits:
        words[bit // 32] |= 1 << (bit % 32)
    return words


def has_cap(words: list[int], bit: int) -> bool:
    return bit // 32 < len(words) and bool(words[bit // 32] & (1 << (bit % 32)))


def link_message(connection_id: int, channel_type: int, channel_id: int,
                 channel_caps: list[int]) -> bytes:
    common = caps_words([COMMON_CAP_AUTH_SELECTION, COMMON_CAP_AUTH_SPICE,
                         COMMON_CAP_MINI_HEADER])
    chan = caps_words(channel_caps)
    body = struct.pack("<IBBIII", connection_id, channel_type, channel_id, len(common),
                       len(chan), 18)
    body += struct.pack(f"<{len(common) + len(chan)}I", *common, *chan)
    return MAGIC + struct.pack("<III", *VERSION, len(body)) + body


def encrypt_ticket(pubkey_der: bytes, password: str) -> bytes:
    """The password encrypted for the server: RSA-OAEP with SHA-1, as SPICE requires."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    secret = password.encode() + b"\x00"
    if len(secret) > MAX_PASSWORD + 1:
        raise AuthenticationError(f"SPICE passwords are at most {MAX_PASSWORD} bytes long.")
    try:
        key = serialization.load_der_public_key(pubkey_der)
    except ValueError:
        raise ProtocolError("The server sent an unreadable public key.") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProtocolError("The server's public key is not an RSA key.")
    return key.encrypt(secret, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                            algorithm=hashes.SHA1(), label=None))


@dataclass
class LinkReply:
    pubkey: bytes
    common_caps: list[int] = field(default_factory=list)
    channel_caps: list[int] = field(default_factory=list)


def parse_link_reply(header: bytes, body: bytes) -> LinkReply:
    magic, major, _minor, _size = struct.unpack("<4sIII", header)
    if magic != MAGIC:
        raise ProtocolError("The server does not speak the SPICE protocol.")
    if major != VERSION[0]:
        raise ProtocolError(f"The server speaks SPICE {major}; VirtStudio needs 2.")
    if len(body) < 4 + PUBKEY_BYTES + 12:
        raise ProtocolError("The server's link reply is too short.")
    (error,) = struct.unpack_from("<I", body)
    if error:
        raise AuthenticationError(
            f"The SPICE server refused the connection: {LINK_ERRORS.get(error, error)}.")
    n_common, n_chan, offset = struct.unpack_from("<III", body, 4 + PUBKEY_BYTES)
    if offset + 4 * (n_common + n_chan) > len(body):
        raise ProtocolError("The server's capability list runs past its link reply.")
    words = list(struct.unpack_from(f"<{n_common + n_chan}I", body, offset))
    return LinkReply(bytes(body[4:4 + PUBKEY_BYTES]), words[:n_common], words[n_common:])


class SpiceChannel:
    """One linked channel: reads messages, answers ACK and PING, sends messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 channel_type: int, mini_header: bool = True) -> None:
        self.reader = reader
        self.writer = writer
        self.channel_type = channel_type
        self.mini_header = mini_header
        self.channel_caps: list[int] = []
        self._serial = 0
        self._ack_window = 0
        self._unacked = 0

    @classmethod
    async def link(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                   connection_id: int, channel_type: int, channel_id: int = 0,
                   channel_caps: list[int] | None = None,
                   password: str | None = None) -> SpiceChannel:
        writer.write(link_message(connection_id, channel_type, channel_id,
                                  channel_caps or []))
        header = await _read(reader, 16)
        (size,) = struct.unpack_from("<I", header, 12)
        if size > MAX_LINK_REPLY:
            raise ProtocolError(f"The server's {size}-byte link reply is refused.")
        reply = parse_link_reply(header, await _read(reader, size))
        if has_cap(reply.common_caps, COMMON_CAP_AUTH_SELECTION):
            writer.write(struct.pack("<I", COMMON_CAP_AUTH_SPICE))
        writer.write(encrypt_ticket(reply.pubkey, password or ""))
        (result,) = struct.unpack("<I", await _read(reader, 4))
        if result != 0:
            raise AuthenticationError(
                f"The SPICE server refused the login: {LINK_ERRORS.get(result, result)}.")
        channel = cls(reader, writer, channel_type,
                      has_cap(reply.common_caps, COMMON_CAP_MINI_HEADER))
        channel.channel_caps = reply.channel_caps
        return channel

    def send(self, msg_type: int, body: bytes = b"") -> None:
        if self.writer.is_closing():
            return
        if self.mini_header:
            self.writer.write(struct.pack("<HI", msg_type, len(body)) + body)
        else:
            self._serial += 1
            self.writer.write(struct.pack("<QHII", self._serial, msg_type, len(body), 0) + body)

    async def receive(self) -> tuple[int, bytes]:
        """The next message this channel's owner must handle; common ones are answered here."""
        while True:
            if self.mini_header:
                msg_type, size = struct.unpack("<HI", await _read(self.reader, 6))
            else:
                _serial, msg_type, size, _sub = struct.unpack("<QHII",
                                                              await _read(self.reader, 18))
            if size > MAX_MESSAGE:
                raise ProtocolError(f"The server announced a {size}-byte message, which is "
                                    f"refused (at most {MAX_MESSAGE}).")
            body = await _read(self.reader, size)
            self._count_for_ack()
            if not self._common(msg_type, body):
                return msg_type, body

    def _count_for_ack(self) -> None:
        if self._ack_window:
            self._unacked += 1
            if self._unacked >= self._ack_window:
                self._unacked = 0
                self.send(MSGC_ACK)

    def _common(self, msg_type: int, body: bytes) -> bool:
        if msg_type == MSG_SET_ACK:
            if len(body) < 8:
                raise ProtocolError("The server's SET_ACK message is too short.")
            generation, window = struct.unpack_from("<II", body)
            self._ack_window = min(window, 1 << 16)
            self._unacked = 0
            self.send(MSGC_ACK_SYNC, struct.pack("<I", generation))
            return True
        if msg_type == MSG_PING:
            if len(body) < 12:
                raise ProtocolError("The server's PING message is too short.")
            self.send(MSGC_PONG, bytes(body[:12]))
            return True
        if msg_type == MSG_DISCONNECTING:
            raise ProtocolError("The SPICE server closed the channel.")
        return msg_type in (MSG_MIGRATE, MSG_MIGRATE_DATA, MSG_WAIT_FOR_CHANNELS,
                            MSG_NOTIFY, MSG_LIST)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def _read(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise ProtocolError("The server closed the connection.") from None
