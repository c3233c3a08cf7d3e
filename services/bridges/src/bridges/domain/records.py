"""What a bridge needs to know of a record without parsing it fully: its Kafka key, the source's
record id (idempotency of pushes) and the CloudEvent headers intake expects. The bytes themselves
are never changed; intake parses and judges them."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from onegrid.envelope import CloudEvent, Headers

_MN = re.compile(rb";MN=([A-Za-z0-9_.\-]{1,64});")
_NAMESPACE = uuid.UUID("6f0c3a52-5b1e-4d53-9a8e-0b8b1f6a2d11")  # ids of records taken in by a bridge

CONTENT_TYPES = {
    "hj212": "text/plain; charset=us-ascii",
    "cap": "application/cap+xml; charset=utf-8",
    "safety": "application/xml; charset=gbk",
    "party": "application/json; charset=utf-8",
}


class NotTakenIn(ValueError):
    """A pushed body a bridge cannot key or deduplicate; `reason` is the code the sender receives."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def hj212_mn(raw: bytes) -> str | None:
    """The MN of a packet, also of one that fails its CRC (to key and count it by station)."""
    m = _MN.search(b";" + raw[6:])
    return m.group(1).decode() if m else None


_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["'][^>]*\?>""")


def _xml(raw: bytes, feed: str) -> Element:
    """The document's root, read in the encoding its declaration names (expat knows no GBK)."""
    declared = _DECLARED.match(raw)
    try:
        document: bytes | str = raw
        if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii"):
            document = raw[declared.end() :].decode(declared.group(1).decode("ascii"))
        root: Element = SafeET.fromstring(document, forbid_dtd=True)
    except (LookupError, UnicodeDecodeError) as e:
        raise NotTakenIn(f"{feed}.encoding", str(e)[:200]) from e
    except Exception as e:  # defusedxml raises ParseError and its own Forbidden* errors
        raise NotTakenIn(f"{feed}.xml_malformed", str(e)[:200]) from e
    return root


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def cap_identity(raw: bytes) -> tuple[str, str]:
    """(sender, identifier) of a CAP alert: the key (an Update follows its alert) and the record id."""
    root = _xml(raw, "cap")
    if _local(root.tag) != "alert":
        raise NotTakenIn("cap.not_an_alert", f"root element is {_local(root.tag)!r}, not alert")
    found = {_local(c.tag): (c.text or "").strip() for c in root}
    sender, identifier = found.get("sender"), found.get("identifier")
    if not sender or not identifier:
        raise NotTakenIn("cap.missing_field", "an alert needs sender and identifier")
    return sender, identifier


def safety_record_id(raw: bytes) -> str:
    """SJBH, the public-safety system's event number (the XML declares its own encoding, GBK)."""
    root = _xml(raw, "safety")
    sjbh = next(((c.text or "").strip() for c in root if _local(c.tag) == "SJBH"), "")
    if not sjbh:
        raise NotTakenIn("safety.missing_field", "SJBH (event number) is required")
    return sjbh


def party_record_id(raw: bytes) -> str:
    """rjbh, the party-building app's record id."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise NotTakenIn("party.json_malformed", str(e)[:200]) from e
    rjbh = doc.get("rjbh") if isinstance(doc, dict) else None
    if not isinstance(rjbh, str) or not rjbh:
        raise NotTakenIn("party.missing_field", "rjbh (record id) is required")
    return rjbh


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def legacy_headers(
    *, feed: str, topic: str, bridge: str, sender: str, raw: bytes, peer: str | None = None
) -> Headers:
    """CloudEvent headers (binary mode) of a legacy record as a bridge writes it: type
    `cn.onegrid.<topic>`, source `/onegrid/bridges/<bridge>/<sender>`, an id derived from the sender
    and the bytes (a resent record carries the same id), the feed's content type, and the bridge's
    name in the `bridge` extension (the console shows it per feed)."""
    extensions = {"bridge": bridge}
    if peer:
        extensions["peer"] = peer
    return CloudEvent(
        type=f"cn.onegrid.{topic}",
        source=f"/onegrid/bridges/{bridge}/{sender}",
        id=str(uuid.uuid5(_NAMESPACE, f"{bridge}/{sender}/{digest(raw)}")),
        content_type=CONTENT_TYPES[feed],
        extensions=extensions,
    ).headers()
