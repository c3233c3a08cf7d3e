"""XML documents from the legacy feeds, parsed with no DTD: nothing declared, expanded or fetched.

A document whose bytes can be seen to hold no ``<!DOCTYPE`` goes to the C parser (expat through
``xml.etree``): without a DTD there is no entity declaration to expand and no external subset to
fetch, only XML's five predefined entities and character references. That takes about half the time
of ``defusedxml``, which hooks expat from pure Python. Every other document (one that declares a DTD,
or whose bytes are in an encoding other than UTF-8 or ASCII, where ``<!DOCTYPE`` would not show as
those bytes: UTF-16, a single-byte code page named in its declaration) goes to ``defusedxml`` with
DTDs, entities and external references forbidden, which refuses it with its own exception naming the
DTD (or reads a UTF-16 document that declares none).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Final
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeElementTree

__all__ = ["parse_document", "visibly_without_dtd"]

_DOCTYPE: Final = "<!DOCTYPE"
# The XML declaration, if any, and its encoding name (XML 1.0 §2.8, §4.3.3).
_DECLARATION = re.compile(rb"<\?xml[ \t\r\n][^>]*?\?>")
_ENCODING = re.compile(rb"encoding[ \t\r\n]*=[ \t\r\n]*[\"']([A-Za-z][A-Za-z0-9._-]*)[\"']")
_ASCII_COMPATIBLE: Final = frozenset((b"utf-8", b"utf8", b"us-ascii", b"ascii"))


def visibly_without_dtd(data: bytes | str) -> bool:
    """True when ``data`` certainly declares no DTD: text, or UTF-8/ASCII bytes, with no ``<!DOCTYPE``."""
    if isinstance(data, str):
        return _DOCTYPE not in data  # already decoded: what expat reads is this text
    if data.startswith(b"<?xml"):
        declaration = _DECLARATION.match(data)
        if declaration is None:
            return False
        encoding = _ENCODING.search(declaration.group())
        if encoding is not None and encoding.group(1).lower() not in _ASCII_COMPATIBLE:
            return False
    elif not data.startswith(b"<") or data[1:2] in (b"", b"\x00"):
        return False  # no declaration: UTF-8 unless expat sees UTF-16 (a NUL byte next to "<")
    return _DOCTYPE.encode() not in data


def parse_document(data: bytes | str) -> Element:
    """The document's root element. Raises ``xml.etree.ElementTree.ParseError`` for malformed XML,
    ``defusedxml.DefusedXmlException`` (its subclasses) for a DTD, an entity declaration or an
    external reference, and ``ValueError``/``LookupError`` for an encoding expat cannot read."""
    if visibly_without_dtd(data):
        return ET.fromstring(data)
    root: Element = SafeElementTree.fromstring(
        data, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    return root
