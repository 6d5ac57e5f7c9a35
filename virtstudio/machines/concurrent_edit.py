"""Changes made to a machine's saved configuration while an editor had it open.

An editor remembers the saved XML it started from (the *base*).  On Apply it
reads the saved XML again (the *current*): when the two describe the same
configuration the edit applies as it is; otherwise the user is told what
changed meanwhile (``xml_changes``) and which of their own edits now collide
with it (``conflicts``), and only their own edits are applied on top of the
current configuration (``domain_edit.apply_changes`` writes each one into the
saved XML it reads afresh), never the whole stale document.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

from virtstudio.core.domain_xml import DomainSummary, parse_domain_xml
from virtstudio.machines import domain_edit as de
from virtstudio.machines.xml_edit import same_config

# Secrets travel in the secure XML; a summary names that they changed, never their value.
_SECRET_ATTRIBUTES = {"passwd", "password", "secret"}
MAX_LINES = 25


@dataclass(frozen=True)
class Review:
    """What happened to the saved configuration since the editor read it."""

    changed: bool
    differences: list[str] = field(default_factory=list)  # made by someone else meanwhile
    conflicts: list[str] = field(default_factory=list)  # the user's edits that collide

    def text(self, name: str) -> str:
        """The question's body, in plain words (shown as plain text)."""
        lines = [f"The saved configuration of {name} was changed elsewhere since you "
                 "started editing:"]
        lines += [f"  • {line}" for line in self.differences]
        if self.conflicts:
            lines.append("")
            lines.append("Some of your changes touch the same settings:")
            lines += [f"  • {line}" for line in self.conflicts]
        return "\n".join(lines)


# ---- what changed, element by element ----------------------------------------------------


def _key(el: ET.Element) -> str:
    """The element's name in a path; devices carry what tells them apart."""
    if el.tag == "disk":
        target = el.find("target")
        if target is not None and target.get("dev"):
            return f"disk {target.get('dev')}"
    if el.tag == "interface":
        mac = el.find("mac")
        if mac is not None and mac.get("address"):
            return f"interface {mac.get('address')}"
    if el.tag in ("graphics", "channel", "console", "serial") and el.get("type"):
        return f"{el.tag} {el.get('type')}"
    return el.tag


def _keyed(children: list[ET.Element]) -> dict[str, ET.Element]:
    counts: dict[str, int] = {}
    keyed: dict[str, ET.Element] = {}
    for child in children:
        key = _key(child)
        counts[key] = counts.get(key, 0) + 1
        keyed[key if counts[key] == 1 else f"{key} #{counts[key]}"] = child
    return keyed


def _shown(name: str, value: str | None) -> str:
    if value is None:
        return "(none)"
    if name in _SECRET_ATTRIBUTES:
        return "(hidden)"
    return f"“{value}”"


def _brief(el: ET.Element, limit: int = 120) -> str:
    """An added or removed element as short XML, secrets masked."""
    shown = copy.deepcopy(el)
    for node in shown.iter():
        node.tail = None
        for name in _SECRET_ATTRIBUTES & set(node.attrib):
            node.set(name, "(hidden)")
    text = " ".join(ET.tostring(shown, encoding="unicode").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _walk(path: str, old: ET.Element, new: ET.Element, out: list[str]) -> None:
    old_text, new_text = (old.text or "").strip(), (new.text or "").strip()
    if old_text != new_text:
        out.append(f"{path}: {_shown('', old_text)} → {_shown('', new_text)}")
    for name in sorted(set(old.attrib) | set(new.attrib)):
        before, after = old.get(name), new.get(name)
        if before != after:
            if name in _SECRET_ATTRIBUTES:
                out.append(f"{path}: {name} {'removed' if after is None else 'changed'}")
            else:
                out.append(f"{path}: {name} {_shown(name, before)} → {_shown(name, after)}")
    olds, news = _keyed(list(old)), _keyed(list(new))
    for key in olds:
        where = f"{path}/{key}" if path else key
        if key not in news:
            out.append(f"{where}: removed {_brief(olds[key])}")
        else:
            _walk(where, olds[key], news[key], out)
    for key in news:
        if key not in olds:
            where = f"{path}/{key}" if path else key
            out.append(f"{where}: added {_brief(news[key])}")


def xml_changes(base: str, current: str) -> list[str]:
    """What differs from ``base`` in ``current``, one plain line per element or attribute."""
    try:
        old, new = ET.fromstring(base), ET.fromstring(current)
    except ET.ParseError:
        return ["The configuration was replaced."]
    out: list[str] = []
    _walk("", old, new, out)
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], f"… and {len(out) - MAX_LINES} more"]
    return out


# ---- the Edit tab: field changes ------------------------------------------------------------


def _passwords(xml: str) -> list[str | None]:
    root = ET.fromstring(xml)
    return [g.get("passwd") for g in root.findall("devices/graphics")]


def _device(xml: str, tag: str, key: str) -> str | None:
    """The device ``tag`` named ``key`` (a disk target, a card's MAC) as text, or None."""
    for el in ET.fromstring(xml).findall(f"devices/{tag}"):
        if _key(el) == f"{tag} {key}":
            return ET.canonicalize(ET.tostring(el, encoding="unicode"), strip_text=True)
    return None


def _memory(summary: DomainSummary) -> str:
    return f"{summary.current_memory_kib // 1024} MiB of {summary.memory_kib // 1024} MiB"


def _graphics(summary: DomainSummary) -> str:
    return summary.graphics[0].kind if summary.graphics else "none"


def _conflict(change: de.Change, base: str, current: str) -> str:
    """How ``change`` collides with what changed from ``base`` to ``current``; "" if not."""
    old, new = parse_domain_xml(base), parse_domain_xml(current)

    def moved(what: str, before: object, after: object, mine: object) -> str:
        if before != after and after != mine:
            return (f"{what}: you chose {mine}; meanwhile it changed from {before} "
                    f"to {after}. Yours replaces it.")
        return ""

    if isinstance(change, de.SetVcpus):
        return moved("vCPUs", old.vcpus, new.vcpus, change.count)
    if isinstance(change, de.SetMemory):
        return moved("Memory", _memory(old), _memory(new),
                     f"{change.current_mib} MiB of {change.maximum_mib} MiB")
    if isinstance(change, de.SetBootOrder):
        return moved("Boot order", ", ".join(old.boot) or "none",
                     ", ".join(new.boot) or "none", ", ".join(change.devices) or "none")
    if isinstance(change, de.SetGraphics):
        return moved("Graphics", _graphics(old), _graphics(new), change.kind)
    if isinstance(change, de.SetVideo):
        return moved("Video", old.video or "none", new.video or "none", change.model)
    if isinstance(change, de.SetDisplayPassword):
        if _passwords(base) != _passwords(current):
            return "Display password: it was changed meanwhile too. Yours replaces it."
        return ""
    if isinstance(change, de.AddDisk):
        if _device(current, "disk", change.target) is not None:
            return f"Disk {change.target}: a disk with that name was added meanwhile."
        return ""
    if isinstance(change, de.ChangeDisk | de.RemoveDisk | de.ResizeDisk):
        return _device_conflict("Disk", "disk", change.target, base, current)
    if isinstance(change, de.RemoveNic) or (isinstance(change, de.SetNic) and change.old_mac):
        mac = change.mac if isinstance(change, de.RemoveNic) else change.old_mac
        return _device_conflict("Network card", "interface", mac.lower(), base, current)
    return ""


def _device_conflict(what: str, tag: str, key: str, base: str, current: str) -> str:
    before, after = _device(base, tag, key), _device(current, tag, key)
    if after is None:
        return f"{what} {key}: it was removed meanwhile, so your change to it cannot apply."
    if before != after:
        return f"{what} {key}: it was changed meanwhile too."
    return ""


def review(base: str, current: str, changes: Sequence[de.Change] = ()) -> Review:
    """Compare the XML an editor started from with the saved XML read again at Apply.

    ``changes`` are the user's own edits (the Edit tab's); the XML tab passes none,
    since its text replaces the whole document.
    """
    if same_config(base, current):
        return Review(changed=False)
    differences = xml_changes(base, current) or ["The layout of the XML changed."]
    try:
        conflicts = [c for c in (_conflict(ch, base, current) for ch in changes) if c]
    except (ET.ParseError, ValueError):
        conflicts = []
    return Review(changed=True, differences=differences, conflicts=conflicts)

