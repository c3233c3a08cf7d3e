"""CAP index feeds as alert hubs publish them: Atom (RFC 4287) or RSS 2.0, one entry per alert with a
link to the CAP document. `entries` returns (entry id, document URL) in feed order; an entry whose
id changes when the alert is re-issued is a new entry, one with the same id is the same alert."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TYPES = ("application/cap+xml", "application/common-alerting-protocol+xml")


class FeedInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    entry_id: str
    url: str


def _atom_link(entry: Element) -> str | None:
    links = entry.findall(f"{ATOM}link")
    for link in links:  # a link typed as CAP first, then the alternate, then any
        if (link.get("type") or "").split(";")[0].strip() in CAP_TYPES:
            return link.get("href")
    for link in links:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link.get("href")
    return links[0].get("href") if links else None


def entries(raw: bytes, base_url: str) -> list[Entry]:
    try:
        root: Element = SafeET.fromstring(raw, forbid_dtd=True)
    except Exception as e:
        raise FeedInvalid(f"feed is not XML: {str(e)[:200]}") from e
    out: list[Entry] = []
    if root.tag == f"{ATOM}feed":
        for entry in root.findall(f"{ATOM}entry"):
            href = _atom_link(entry)
            if not href:
                continue
            eid = (entry.findtext(f"{ATOM}id") or "").strip() or href
            out.append(Entry(eid, urljoin(base_url, href.strip())))
        return out
    if root.tag == "rss":
        for item in root.iter("item"):
            enclosure = item.find("enclosure")
            href = (item.findtext("link") or "").strip() or (
                enclosure.get("url") if enclosure is not None else ""
            )
            if not href:
                continue
            eid = (item.findtext("guid") or "").strip() or href
            out.append(Entry(eid, urljoin(base_url, href.strip())))
        return out
    raise FeedInvalid(f"root element {root.tag!r} is neither an Atom feed nor RSS")
