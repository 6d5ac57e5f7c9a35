"""Keys as VNC wants them: X keysyms, plus XT scancodes for QEMU's extended key events.

Scancodes let the guest apply its own keyboard layout, so every layout types
right; keysyms remain for servers without the QEMU extension.
"""

from __future__ import annotations

# Linux evdev key codes 1-88 equal XT set-1 make codes; the rest need a table.
_EVDEV_EXTENDED = {
    96: 0xE01C, 97: 0xE01D, 98: 0xE035, 99: 0x54, 100: 0xE038, 102: 0xE047, 103: 0xE048,
    104: 0xE049, 105: 0xE04B, 106: 0xE04D, 107: 0xE04F, 108: 0xE050, 109: 0xE051,
    110: 0xE052, 111: 0xE053, 119: 0xE046, 125: 0xE05B, 126: 0xE05C, 127: 0xE05D,
    87: 0x57, 88: 0x58,
}

SHIFT_L = (0xFFE1, 0x2A)
CONTROL_L = (0xFFE3, 0x1D)
ALT_L = (0xFFE9, 0x38)
RETURN = (0xFF0D, 0x1C)
DELETE = (0xFFFF, 0xE053)
SYSRQ = (0xFF15, 0x54)


def xt_to_qemu(xt: int) -> int:
    """Encode an XT scancode as QEMU's extended key event wants it (0xE0xx -> 0x80|xx)."""
    if xt > 0xFF:
        if xt >> 8 != 0xE0:
            raise ValueError(f"unsupported scancode {xt:#x}")
        return 0x80 | (xt & 0x7F)
    return xt


def evdev_to_xt(code: int) -> int | None:
    if code in _EVDEV_EXTENDED:
        return _EVDEV_EXTENDED[code]
    if 1 <= code <= 88:
        return code
    return None


def function_key(n: int) -> tuple[int, int]:
    """(keysym, XT scancode) of F1..F12."""
    if not 1 <= n <= 12:
        raise ValueError("function keys are F1 to F12")
    keysym = 0xFFBE + n - 1
    xt = 0x3B + n - 1 if n <= 10 else (0x57 if n == 11 else 0x58)
    return keysym, xt


# US layout: character -> (keysym, XT scancode, needs shift)
_ROWS = {
    "1234567890-=": (0x02, "!@#$%^&*()_+"),
    "qwertyuiop[]": (0x10, "QWERTYUIOP{}"),
    "asdfghjkl;'": (0x1E, 'ASDFGHJKL:"'),
    "zxcvbnm,./": (0x2C, "ZXCVBNM<>?"),
}
US_KEYS: dict[str, tuple[int, int, bool]] = {
    " ": (0x20, 0x39, False), "`": (0x60, 0x29, False), "~": (0x7E, 0x29, True),
    "\\": (0x5C, 0x2B, False), "|": (0x7C, 0x2B, True), "\n": (0xFF0D, 0x1C, False),
    "\t": (0xFF09, 0x0F, False),
}
for _plain, (_first, _shifted) in _ROWS.items():
    for _i, (_p, _s) in enumerate(zip(_plain, _shifted, strict=True)):
        US_KEYS[_p] = (ord(_p), _first + _i, False)
        US_KEYS[_s] = (ord(_s), _first + _i, True)


def text_to_keys(text: str) -> list[tuple[int, int, bool]]:
    """The key presses that type ``text`` on a US keyboard; raise ValueError if impossible."""
    keys = []
    for ch in text:
        if ch not in US_KEYS:
            raise ValueError(f"cannot type {ch!r} with a US layout")
        keys.append(US_KEYS[ch])
    return keys
