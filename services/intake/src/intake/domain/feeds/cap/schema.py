"""Validation of a safely parsed CAP document against the OASIS CAP 1.2 schema.

The document has already been parsed with no DTD (``intake.domain.xmldoc``: no entity, nothing
fetched). What the schema sees is that tree leaving out elements and attributes of other namespaces
(extensions, ``ds:Signature``: CAP lets producers add them, the schema would refuse most of them),
validated with the schema shipped in ``intake/data/CAP-v1.2.xsd`` (the OASIS file, unchanged). The
schema is compiled once, at import, from a file of this package: validation itself opens nothing.

Given the document's bytes too (vetted by that parse: no DTD), libxml2 parses them again, in C, and
the schema reads that tree as it is first. What it accepts, the copy is accepted too (the copy only
leaves out optional foreign elements, and reads a tolerated certainty word as its CAP 1.2 value);
what it refuses is decided on the copy, as without the bytes: the verdict is always the copy's, and
the copy (~40 µs an alert in Python; the parse ~10) is made only for an alert with extensions or
tolerances, or one refused.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, Final
from xml.etree.ElementTree import Element

from lxml import etree

from intake.domain.errors import Rejected
from intake.domain.xmldoc import visibly_without_dtd

CAP_NAMESPACE: Final = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_FILE: Final = "CAP-v1.2.xsd"

_Q: Final = "{" + CAP_NAMESPACE + "}"
_STEP = re.compile(r"^(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)(?:\[(\d+)\])?$")


def _compile() -> Any:
    xsd = resources.files("intake.data").joinpath(SCHEMA_FILE).read_bytes()
    # The schema is our own file; still, nothing it names is fetched.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.fromstring(xsd, parser))


_SCHEMA: Final = _compile()
# Nothing loaded, resolved or fetched; comments and processing instructions left out, as the
# standard library's tree builder leaves them out (the text around a comment is one text).
_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


def parse_plain(document: bytes) -> Any:
    """The document as libxml2 parses it, when its bytes visibly declare no DTD in UTF-8 or ASCII
    (``xmldoc.visibly_without_dtd``: then there is nothing to declare, expand or fetch, only XML's
    predefined entities and character references); None for any other document and for one
    libxml2 refuses (the safe parser of ``xmldoc`` reads those, and names what it refuses)."""
    if not visibly_without_dtd(document):
        return None
    return _as_is(document)


def validate(
    root: Element,
    *,
    document: bytes | None = None,
    parsed: Any = None,
    certainty_aliases: dict[str, str] | None = None,
) -> None:
    """Raise ``Rejected("cap.schema", ...)`` naming the first element the CAP 1.2 schema refuses
    (path as ``alert/info[0]/area[1]/polygon``) and the schema's own message.

    ``document``, when given, is the bytes ``root`` was parsed from (the same verdict, sooner);
    ``parsed``, when given, is those bytes as libxml2 parsed them (``parse_plain``; ``root`` may be
    that very tree).
    ``certainty_aliases`` maps tolerated non-CAP-1.2 certainty words to the CAP 1.2 value they are
    read as (the parser's documented tolerances); nothing else is rewritten.
    """
    aliases = certainty_aliases or {}
    as_is = parsed if parsed is not None else _as_is(document) if document is not None else None
    if as_is is not None and _SCHEMA.validate(as_is):
        return
    # Refused (or not readable as it is): the copy's verdict and its error's path, which names the
    # elements (``ns0:info[2]``; the parsed document's says ``*[6]`` for a default namespace).
    copy = _cap_only(root, None, aliases)
    if _SCHEMA.validate(copy):
        return
    error = _SCHEMA.error_log[0]
    message = str(error.message).replace(_Q, "")
    raise Rejected("cap.schema", f"{_readable_path(str(error.path))}: {message}")


def _as_is(document: bytes) -> Any:
    """The document as libxml2 parses it; None when libxml2 refuses what expat took."""
    try:
        return etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError:
        return None


def _cap_only(el: Element, parent: Any, aliases: dict[str, str]) -> Any:
    attrib = {k: v for k, v in el.attrib.items() if not k.startswith("{")}
    node = etree.Element(el.tag, attrib) if parent is None else etree.SubElement(parent, el.tag, attrib)
    text = el.text
    if el.tag == _Q + "certainty" and text is not None and text.strip() in aliases:
        text = aliases[text.strip()]
    node.text = text
    for child in el:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith("{") and not tag.startswith(_Q):
            continue  # an extension in another namespace
        _cap_only(child, node, aliases).tail = child.tail
    return node


def _readable_path(xpath: str) -> str:
    """lxml's ``/ns0:alert/ns0:info[2]/ns0:area`` as ``alert/info[1]/area`` (0-based, as elsewhere)."""
    steps = []
    for step in xpath.strip("/").split("/"):
        match = _STEP.match(step)
        if match is None:
            steps.append(step)
            continue
        name, index = match.groups()
        steps.append(name if index is None else f"{name}[{int(index) - 1}]")
    return "/".join(steps)
