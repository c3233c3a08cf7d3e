"""Validation of a safely parsed CAP document against the OASIS CAP 1.2 schema.

The document has already been parsed with no DTD (``intake.domain.xmldoc``: no entity, nothing
fetched); this module never sees the raw bytes. It copies the parsed tree into an lxml tree, leaving
out elements and attributes of other namespaces (extensions, ``ds:Signature``: CAP lets producers add them, the
schema would refuse most of them), and validates that copy with the schema shipped in
``intake/data/CAP-v1.2.xsd`` (the OASIS file, unchanged). The schema is compiled once, at import,
from a file of this package: validation itself opens nothing.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any, Final
from xml.etree.ElementTree import Element

from lxml import etree

from intake.domain.errors import Rejected

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


def validate(root: Element, *, certainty_aliases: dict[str, str] | None = None) -> None:
    """Raise ``Rejected("cap.schema", ...)`` naming the first element the CAP 1.2 schema refuses
    (path as ``alert/info[0]/area[1]/polygon``) and the schema's own message.

    ``certainty_aliases`` maps tolerated non-CAP-1.2 certainty words to the CAP 1.2 value they are
    read as (the parser's documented tolerances); nothing else is rewritten.
    """
    copy = _cap_only(root, None, certainty_aliases or {})
    if _SCHEMA.validate(copy):
        return
    error = _SCHEMA.error_log[0]
    message = str(error.message).replace(_Q, "")
    raise Rejected("cap.schema", f"{_readable_path(str(error.path))}: {message}")


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
