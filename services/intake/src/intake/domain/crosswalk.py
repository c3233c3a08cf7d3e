"""The one case taxonomy, and the crosswalk from each legacy network's own codes into it.

The taxonomy lives in ``contracts/taxonomy/categories.v<N>.json`` (the contract other services read);
the crosswalk is packaged with intake as ``intake/data/crosswalk.v<N>.json``. Both are loaded once at
start-up and validated against each other: a crosswalk naming a category the taxonomy lacks refuses to
load. ``Crosswalk.map`` never guesses: a code no rule covers raises
``Quarantined("crosswalk.unmapped_code")`` so that a person classifies it and the table is extended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from intake.domain.errors import Quarantined
from onegrid_contracts import taxonomy_file

__all__ = ["Category", "CodeEntry", "Crosswalk", "Network", "Open311Service", "Taxonomy"]

_TAXONOMY_FILE = "categories.v1.json"
_CROSSWALK_PACKAGE = "intake.data"
_CROSSWALK_NAME = re.compile(r"^crosswalk\.v(\d+)\.json$")
_NO_HINTS: Mapping[str, str] = MappingProxyType({})


class Network(StrEnum):
    """The legacy networks (条线专网) whose codes the crosswalk maps."""

    ENV = "env"
    EMERGENCY = "emergency"
    SAFETY = "safety"
    PARTY = "party"
    OPEN311 = "open311"
    PATROL = "patrol"  # grid workers pick the taxonomy code itself: it maps to itself


@dataclass(frozen=True, slots=True)
class Category:
    """One leaf of the taxonomy. ``gbt35561`` is the GB/T 35561-2017 class, or None where none applies."""

    code: str
    zh: str
    en: str
    family: str
    group: str
    gbt35561: str | None


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The versioned case taxonomy: category code -> Category."""

    version: str
    categories: Mapping[str, Category]

    @classmethod
    def load(cls, path: Path | str | None = None) -> Taxonomy:
        """Read the taxonomy from ``path``, or from ``contracts/taxonomy/`` (``onegrid_contracts``).

        Raises FileNotFoundError if the contracts are not found, ValueError if the file is malformed.
        """
        file = Path(path) if path is not None else taxonomy_file(_TAXONOMY_FILE)
        doc = json.loads(file.read_text(encoding="utf-8"))
        families = set(doc["families"])
        categories: dict[str, Category] = {}
        for group in doc["groups"]:
            for raw in group["categories"]:
                category = Category(
                    code=raw["code"],
                    zh=raw["zh"],
                    en=raw["en"],
                    family=raw["family"],
                    group=group["code"],
                    gbt35561=raw["gbt35561"],
                )
                if not category.code.startswith(group["code"] + "."):
                    raise ValueError(f"{file}: {category.code} is not under its group {group['code']}")
                if category.code in categories:
                    raise ValueError(f"{file}: category {category.code} defined twice")
                if category.family not in families:
                    raise ValueError(f"{file}: {category.code} has undeclared family {category.family}")
                if category.gbt35561 is not None and category.gbt35561 not in doc["gbt35561_classes"]:
                    raise ValueError(f"{file}: {category.code} has unknown GB/T 35561 class")
                categories[category.code] = category
        return cls(version=str(doc["version"]), categories=MappingProxyType(categories))

    def __getitem__(self, code: str) -> Category:
        return self.categories[code]

    def __contains__(self, code: object) -> bool:
        return code in self.categories


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One row of a network's own code table (public-safety, party-building), with its Chinese name."""

    code: str
    zh: str
    category: str


@dataclass(frozen=True, slots=True)
class Open311Service:
    """One Open311 GeoReport v2 service, as ``GET services`` lists it."""

    service_code: str
    service_name: str
    zh: str
    description: str
    description_zh: str
    keywords: tuple[str, ...]
    group: str
    type: str
    metadata: bool
    category: str


@dataclass(frozen=True, slots=True)
class _Pattern:
    segments: tuple[str, ...]
    category: str

    @property
    def specificity(self) -> tuple[int, tuple[bool, ...]]:
        # More literal segments first; on a tie, a literal further left (the event kind, then the
        # station type) is the more specific.
        literal = tuple(s != "*" for s in self.segments)
        return sum(literal), literal

    def matches(self, segments: list[str]) -> bool:
        return len(segments) == len(self.segments) and all(
            p in ("*", s) for p, s in zip(self.segments, segments, strict=True)
        )


@dataclass(frozen=True, slots=True)
class _CapRule:
    cap_category: str
    keywords: tuple[re.Pattern[str], ...]
    category: str


class Crosswalk:
    """A versioned mapping from (network, network's own code) to a taxonomy Category."""

    def __init__(self, doc: Mapping[str, Any], taxonomy: Taxonomy) -> None:
        """Build from a parsed crosswalk document; ValueError if it names a category ``taxonomy`` lacks."""
        self.version: str = str(doc["version"])
        self.taxonomy_version: str = str(doc["taxonomy_version"])  # the taxonomy it was written against
        self.taxonomy = taxonomy
        networks = doc["networks"]
        patterns = [_Pattern(tuple(r["pattern"].split(":")), r["category"]) for r in networks["env"]["rules"]]
        # Most specific first, so the first match wins; sorted() is stable for equal specificity.
        self._env = sorted(patterns, key=lambda p: p.specificity, reverse=True)
        self._cap = [
            _CapRule(r["cap_category"], tuple(_keyword(k) for k in r["event_keywords"]), r["category"])
            for r in networks["emergency"]["rules"]
        ]
        self._tables: dict[Network, dict[str, CodeEntry]] = {}
        for network in (Network.SAFETY, Network.PARTY, Network.OPEN311):
            rows = networks[network.value]["codes"]
            self._tables[network] = {
                code: CodeEntry(code, r["zh"], r["category"]) for code, r in rows.items()
            }
        self._services = tuple(
            Open311Service(
                service_code=code,
                service_name=row["service_name"],
                zh=row["zh"],
                description=row["description"],
                description_zh=row["description_zh"],
                keywords=tuple(row["keywords"]),
                group=row["group"],
                type=row["type"],
                metadata=bool(row["metadata"]),
                category=row["category"],
            )
            for code, row in networks["open311"]["codes"].items()
        )
        missing = sorted(set(self.targets()) - set(taxonomy.categories))
        if missing:
            raise ValueError(f"crosswalk v{self.version} maps to categories not in taxonomy: {missing}")

    @classmethod
    def load(cls, version: str | int | None = None, *, taxonomy: Taxonomy | None = None) -> Crosswalk:
        """Load the packaged ``crosswalk.v<version>.json`` (the highest version when None).

        ``taxonomy`` defaults to ``Taxonomy.load()``. FileNotFoundError for an unknown version.
        """
        folder = resources.files(_CROSSWALK_PACKAGE)
        if version is None:
            versions = [int(m[1]) for f in folder.iterdir() if (m := _CROSSWALK_NAME.match(f.name))]
            if not versions:
                raise FileNotFoundError(f"no crosswalk.v<N>.json in {_CROSSWALK_PACKAGE}")
            version = max(versions)
        file = folder / f"crosswalk.v{version}.json"
        if not file.is_file():
            raise FileNotFoundError(f"no crosswalk version {version} in {_CROSSWALK_PACKAGE}")
        doc = json.loads(file.read_text(encoding="utf-8"))
        return cls(doc, taxonomy if taxonomy is not None else Taxonomy.load())

    def map(self, network: Network | str, code: str, *, hints: Mapping[str, str] = _NO_HINTS) -> Category:
        """The taxonomy category for ``code`` in ``network``.

        - env: code ``<kind>:<ST>:<pollutant>``, e.g. ``exceedance:22:a34004``; no hints.
        - emergency: code is the CAP ``info/category`` (e.g. ``Met``); hint ``event`` is ``info/event``.
        - safety, party, open311: code is the network's own code, matched exactly.

        Raises ``Quarantined("crosswalk.unmapped_code")`` when no rule covers the code, and ValueError
        for a network name that is not a ``Network`` (a programming error, not bad data).
        """
        net = Network(network)
        target = self._target(net, code, hints)
        if target is None:
            event = f" (event {hints.get('event', '')!r})" if net is Network.EMERGENCY else ""
            raise Quarantined(
                "crosswalk.unmapped_code",
                f"network {net.value!r} code {code!r}{event} has no rule in crosswalk v{self.version}",
            )
        return self.taxonomy[target]

    def code_table(self, network: Network | str) -> tuple[CodeEntry, ...]:
        """The code table of a table network (safety, party, open311), in file order."""
        return tuple(self._tables[Network(network)].values())

    def open311_services(self) -> tuple[Open311Service, ...]:
        """The Open311 services, in service-code order, exactly as ``GET services`` should list them."""
        return self._services

    def targets(self) -> list[str]:
        """Every taxonomy code some rule maps to (with repeats), for consistency checks."""
        return (
            [p.category for p in self._env]
            + [r.category for r in self._cap]
            + [e.category for table in self._tables.values() for e in table.values()]
        )

    def _target(self, network: Network, code: str, hints: Mapping[str, str]) -> str | None:
        if network is Network.ENV:
            segments = code.split(":")
            return next((p.category for p in self._env if p.matches(segments)), None)
        if network is Network.EMERGENCY:
            event = hints.get("event", "").casefold()
            rules = [r for r in self._cap if r.cap_category == code]
            keyed = (r.category for r in rules if any(k.search(event) for k in r.keywords))
            plain = (r.category for r in rules if not r.keywords)
            return next(keyed, None) or next(plain, None)
        if network is Network.PATROL:
            return code if code in self.taxonomy else None
        entry = self._tables[network].get(code)
        return entry.category if entry is not None else None


def _keyword(word: str) -> re.Pattern[str]:
    """Latin keywords match whole words (allowing plural/-ed/-ing), so "dam" misses "damage"; CJK ones
    match anywhere, since Chinese text has no word boundaries."""
    folded = re.escape(word.casefold())
    if word.isascii():
        return re.compile(rf"\b{folded}(?:s|es|ed|ing)?\b")
    return re.compile(folded)
