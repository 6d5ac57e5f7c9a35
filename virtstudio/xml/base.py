"""The declarative core: a node class wraps one lxml element, descriptors declare its fields.

Only what a field names is ever touched: every other element, attribute,
comment, namespace prefix and the order of children stay as parsed, so an
edit changes exactly what it was asked to.  New elements go where libvirt
itself would write them (the class's ``ORDER``), and setting a field to
``None`` removes it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from lxml import etree

# Untrusted text (a guest can influence parts of it, a user types it): no entity
# expansion, no network, no unbounded trees; whitespace kept so output diffs stay small.
# One parser per thread: an lxml parser serves one parse at a time.
_PARSERS = threading.local()


def _parser() -> etree.XMLParser:
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, huge_tree=False,
            remove_blank_text=False, load_dtd=False, dtd_validation=False)
    return parser

Element = etree._Element


class XMLError(ValueError):
    """Text that is not well-formed XML, or not the document expected."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.msg = message
        self.line = line
        self.column = column


def parse_element(text: str | bytes) -> Element:
    """Parse ``text`` with the hardened parser; raise ``XMLError`` when it is not XML."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not data.strip():
        raise XMLError("The XML is empty.")
    try:
        return etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        # libxml2 appends the position to its message; it is kept apart here.
        message = re.sub(r"(, line \d+)?, column \d+$", "", exc.msg or str(exc))
        raise XMLError(message, line or 0, column or 0) from None


def to_text(element: Element) -> str:
    """``element`` as text; a document root brings its comments along."""
    if element.getparent() is None:
        # Comments and processing instructions around the root, one a line (lxml
        # does not keep the whitespace between them).
        before = [etree.tostring(s, encoding="unicode", with_tail=False)
                  for s in element.itersiblings(preceding=True)]
        after = [etree.tostring(s, encoding="unicode", with_tail=False)
                 for s in element.itersiblings()]
        root = etree.tostring(element, encoding="unicode", with_tail=False)
        return "\n".join([*reversed(before), root, *after])
    # A device inside a document: without its tail, which belongs to the parent.
    copy = _detached(element)
    return etree.tostring(copy, encoding="unicode")


def canonical(text: str | bytes) -> str:
    """``text`` in canonical form with layout whitespace stripped: equal forms mean the
    same document (attribute order, quotes and indentation aside)."""
    element = parse_element(text)
    return etree.tostring(element, method="c14n2", strip_text=True).decode()


def _detached(element: Element) -> Element:
    import copy as _copy

    dup = _copy.deepcopy(element)
    dup.tail = None
    return dup


# ---- value conversions -------------------------------------------------------------


class Conv:
    """How a field's text becomes a Python value and back."""

    def __init__(self, read: Callable[[str], Any], write: Callable[[Any], str]) -> None:
        self.read = read
        self.write = write


def _read_int(text: str) -> int:
    return int(text.strip(), 0) if text.strip().lower().startswith("0x") else int(text.strip())


INT = Conv(_read_int, str)
STR = Conv(str, str)
YESNO = Conv(lambda s: s.strip() == "yes", lambda b: "yes" if b else "no")
ONOFF = Conv(lambda s: s.strip() == "on", lambda b: "on" if b else "off")
_CONVS = {int: INT, str: STR, bool: YESNO}


def _conv(kind: type | Conv) -> Conv:
    return kind if isinstance(kind, Conv) else _CONVS[kind]


# ---- element placement -------------------------------------------------------------


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _qualified(parent: Element, name: str) -> str:
    """``name`` in ``parent``'s namespace: an entry in ``<metadata>`` keeps its children
    in its own namespace, libvirt's documents have none."""
    tag = parent.tag
    if tag[0] != "{":
        return name
    return tag[:tag.index("}") + 1] + name


@functools.lru_cache(maxsize=512)
def _steps(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/") if s)


def insert_child(parent: Element, child: Element, order: tuple[str, ...] = ()) -> Element:
    """Put ``child`` into ``parent`` where libvirt would: after others of its kind,
    else before the first child ``order`` puts later, else at the end.

    The indentation of the surrounding children is copied so a pretty-printed
    document stays pretty.
    """
    tag = _local(child.tag)
    kids = list(parent)
    index = len(kids)
    same = [i for i, k in enumerate(kids) if _local(k.tag) == tag]
    if same:
        index = same[-1] + 1
    elif tag in order:
        later = set(order[order.index(tag) + 1:])
        for i, k in enumerate(kids):
            if _local(k.tag) in later:
                index = i
                break
    indent = parent.text if kids and parent.text is not None and not parent.text.strip() \
        else None
    if indent is None or not kids:
        parent.insert(index, child)
        return child
    if index == len(kids):
        last = kids[-1]
        child.tail = last.tail
        last.tail = indent
    elif index == 0:
        child.tail = indent
    else:
        child.tail = kids[index - 1].tail
    parent.insert(index, child)
    return child


def remove_element(element: Element) -> None:
    """Take ``element`` out, leaving the whitespace around its siblings as it was."""
    parent = element.getparent()
    if parent is None:
        return
    prev = element.getprevious()
    if element.tail is not None and element.getnext() is None:
        # The last child's tail is the parent's closing indent: hand it back.
        if prev is not None:
            prev.tail = element.tail
        elif not (element.tail or "").strip():
            parent.text = None if parent.text is None else element.tail
    elif element.tail and element.tail.strip():
        # Text after the element (mixed content) stays.
        if prev is not None:
            prev.tail = (prev.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
    if len(parent) == 0 and parent.text is not None and not parent.text.strip():
        parent.text = None


def _empty(element: Element) -> bool:
    return not element.attrib and len(element) == 0 and not (element.text or "").strip()


# ---- nodes -------------------------------------------------------------------------


N = TypeVar("N", bound="Node")


class Node:
    """One XML element with declared fields.  Two nodes are equal when they wrap the
    same element."""

    TAG = ""
    # Child element names in libvirt's order: where new children are inserted.
    ORDER: tuple[str, ...] = ()

    def __init__(self, element: Element | None = None) -> None:
        self.element = element if element is not None else etree.Element(self.TAG)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other.element is self.element

    def __hash__(self) -> int:
        return id(self.element)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_xml()[:80]}>"

    @classmethod
    def from_xml(cls: type[N], text: str | bytes) -> N:
        element = parse_element(text)
        if cls.TAG and _local(element.tag) != cls.TAG:
            raise XMLError(f"Expected <{cls.TAG}>, found <{_local(element.tag)}>.")
        return cls(element)

    def to_xml(self) -> str:
        return to_text(self.element)

    @property
    def parent(self) -> Element | None:
        return self.element.getparent()

    def path_element(self, path: str, create: bool = False) -> Element | None:
        """The element at ``path`` below this one ("" is this one); made when ``create``."""
        element = self.element
        if not path:
            return element
        order = self.ORDER
        for step in _steps(path):
            tag = _qualified(element, step)
            found = element.find(tag)
            if found is None:
                if not create:
                    return None
                found = insert_child(element, etree.Element(tag), order)
            element = found
            order = ()
        return element

    def prune(self, path: str) -> None:
        """Remove the elements along ``path`` that were left empty, innermost first."""
        steps = [s for s in path.split("/") if s]
        while steps:
            element = self.path_element("/".join(steps))
            if element is None or not _empty(element):
                return
            remove_element(element)
            steps.pop()

    def remove(self) -> None:
        """Take this node out of its document."""
        remove_element(self.element)

    def ensure(self, name: str) -> Node:
        """The child node of field ``name``, made (at its canonical place) when absent."""
        field = _field(type(self), name)
        if not isinstance(field, Child):
            raise TypeError(f"{name} is not a Child field")
        return field.ensure(self)


def _field(cls: type, name: str) -> object:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    raise AttributeError(name)


class Attr:
    """An attribute of this element, or of the child at ``child`` (a path)."""

    def __init__(self, name: str, kind: type | Conv = str, default: Any = None,
                 child: str = "") -> None:
        self.name = name
        self.conv = _conv(kind)
        self.default = default
        self.child = child

    @overload
    def __get__(self, obj: None, owner: type) -> Attr: ...
    @overload
    def __get__(self, obj: Node, owner: type) -> Any: ...

    def __get__(self, obj: Node | None, owner: type) -> Any:
        if obj is None:
            return self
        element = obj.path_element(self.child)
        value = element.get(self.name) if element is not None else None
        if value is None:
            return self.default
        try:
            return self.conv.read(value)
        except ValueError:
            return self.default

    def __set__(self, obj: Node, value: Any) -> None:
        if value is None:
            element = obj.path_element(self.child)
            if element is not None and self.name in element.attrib:
                del element.attrib[self.name]
                if self.child:
                    obj.prune(self.child)
            return
        element = obj.path_element(self.child, create=True)
        assert element is not None
        element.set(self.name, self.conv.write(value))


class Text:
    """The text of the child element at ``path``; None removes that element."""

    def __init__(self, path: str, kind: type | Conv = str, default: Any = None) -> None:
        self.path = path
        self.conv = _conv(kind)
        self.default = default

    def __get__(self, obj: Node | None, owner: type) -> Any:
        if obj is None:
            return self
        element = obj.path_element(self.path)
        if element is None or element.text is None:
            return self.default
        try:
            return self.conv.read(element.text.strip() if self.conv is not STR
                                  else element.text)
        except ValueError:
            return self.default

    def __set__(self, obj: Node, value: Any) -> None:
        if value is None:
            element = obj.path_element(self.path)
            if element is not None:
                remove_element(element)
                obj.prune(self.path.rpartition("/")[0])
            return
        element = obj.path_element(self.path, create=True)
        assert element is not None
        element.text = self.conv.write(value)


class Flag:
    """An empty child element whose presence means yes (``<readonly/>``)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __get__(self, obj: Node | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj.path_element(self.path) is not None

    def __set__(self, obj: Node, value: bool) -> None:
        if value:
            obj.path_element(self.path, create=True)
        else:
            element = obj.path_element(self.path)
            if element is not None:
                remove_element(element)


class Child(Generic[N]):
    """The single child element at ``path`` as a node of ``cls``; None when absent.

    Assigning a node puts it in place of the present one; assigning None removes it.
    """

    def __init__(self, path: str, cls: type[N]) -> None:
        self.path = path
        self.cls = cls

    def __get__(self, obj: Node | None, owner: type) -> Any:
        if obj is None:
            return self
        element = obj.path_element(self.path)
        return self.cls(element) if element is not None else None

    def __set__(self, obj: Node, value: N | None) -> None:
        old = obj.path_element(self.path)
        if value is None:
            if old is not None:
                remove_element(old)
            return
        if old is not None:
            value.element.tail = old.tail
            old.getparent().replace(old, value.element)
            return
        parent_path, _, _ = self.path.rpartition("/")
        parent = obj.path_element(parent_path, create=True)
        assert parent is not None
        insert_child(parent, value.element, obj.ORDER if not parent_path else ())

    def ensure(self, obj: Node) -> N:
        element = obj.path_element(self.path, create=True)
        assert element is not None
        return self.cls(element)


class Children(Generic[N]):
    """Every child element at ``path`` (``devices/disk``) as nodes of ``cls``, in order."""

    def __init__(self, path: str, cls: type[N]) -> None:
        self.path = path
        self.cls = cls

    def __get__(self, obj: Node | None, owner: type) -> Any:
        if obj is None:
            return self
        return NodeList(obj, self)


class NodeList(Generic[N]):
    """The live children of one ``Children`` field: iterate, index, add, remove."""

    def __init__(self, owner: Node, field: Children[N]) -> None:
        self.owner = owner
        self.field = field

    def _elements(self) -> list[Element]:
        parent_path, _, tag = self.field.path.rpartition("/")
        parent = self.owner.path_element(parent_path)
        if parent is None:
            return []
        wanted = _qualified(parent, tag)
        return [e for e in parent if e.tag == wanted]

    def __iter__(self) -> Iterator[N]:
        return (self.field.cls(e) for e in self._elements())

    def __len__(self) -> int:
        return len(self._elements())

    def __getitem__(self, index: int) -> N:
        return self.field.cls(self._elements()[index])

    def __bool__(self) -> bool:
        return bool(self._elements())

    def add(self, node: N) -> N:
        """Append ``node`` after the last of its kind (or where libvirt would put it)."""
        parent_path, _, _ = self.field.path.rpartition("/")
        parent = self.owner.path_element(parent_path, create=True)
        assert parent is not None
        order = self.owner.ORDER
        if parent_path:
            holder = _holder(type(self.owner), parent_path)
            order = holder.ORDER if holder is not None else ()
        insert_child(parent, node.element, order)
        return node

    def remove(self, node: N) -> None:
        remove_element(node.element)


def _holder(cls: type, path: str) -> type[Node] | None:
    """The node class a ``Child`` field of ``cls`` declares for ``path``, if any."""
    for klass in cls.__mro__:
        for value in vars(klass).values():
            if isinstance(value, Child) and value.path == path:
                return value.cls
    return None


def make(cls: type[N], **fields: Any) -> N:
    """A new node of ``cls`` with ``fields`` set in declaration order."""
    node = cls()
    for name, value in fields.items():
        if value is not None:
            setattr(node, name, value)
    return node
