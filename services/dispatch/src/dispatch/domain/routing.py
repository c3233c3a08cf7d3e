"""Tiered routing (分级管理、分类处置) over the registry's records, and the escalation ladder.

`Directory` is built from plain registry dicts (kinds `routing_rule`, `sla_policy`, `department`,
`grid`, exactly as on grid.registry.v1) and answers, without side effects (rule and SLA matching
are the registry view's own `match_route` / `match_sla`, so every service reads the rules alike):
- `route(facts)`: the tier, the department(s), the order kind, the SLA, and the versions used;
- `allows_self_handle(facts)`: whether the SLA in force lets the grid worker handle it on the spot;
- `escalation(facts, tier)`: the next tier up that has a command centre, and that centre;
- `supervisor(dept)`, `territorial_unit(facts)` (属地兜底), `sla(facts)`.

Conventions (documented in the service README section of the report): the tier is the highest of the
tier intake proposed and the floor the severity sets (I → city, II → district, III → street,
IV → as proposed); grid and community tiers mean the grid worker handles it first (第一时间处置)
when the SLA policy names the category in `self_handle_categories`, else its department does;
a department whose code ends with `command_suffix` is the command centre of its division; the
territorial unit is the street's command centre (then the district's, then the city's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dispatch.domain.facts import CaseFacts
from registry_client import admits, allows_self_handle, match_route, match_sla

TIERS = ("grid", "community", "street", "district", "city")
SEVERITY_FLOOR = {1: "city", 2: "district", 3: "street", 4: "grid"}
SELF_HANDLED_TIERS = frozenset({"grid", "community"})
Records = Mapping[str, Mapping[str, dict[str, Any]]]  # kind -> code -> record


class Sla(msgspec.Struct, frozen=True, kw_only=True):
    """The policy a case runs on. ``calendar`` "working_days": the seconds are office time on China's
    official working days (``registry_client.workcal``), within ``business_hours``; "24x7": wall-clock."""

    code: str | None
    revision: int | None
    acknowledge_s: int
    resolve_s: int
    calendar: str = "24x7"
    business_hours: dict[str, Any] | None = None
    # 核查结案: how long the verifier has once the case is resolved, on the same clock. Default: one
    # working day of office time on a working-day policy, 24 hours on a 24x7 one.
    verify_s: int | None = None

    def verify_within_s(self) -> int:
        if self.verify_s is not None:
            return self.verify_s
        return 9 * 3600 if self.calendar == "working_days" else 86400

    def clock(self) -> dict[str, Any]:
        """The policy's clock as ``due_at`` reads it."""
        return {"calendar": self.calendar, "business_hours": self.business_hours}


class Versions(msgspec.Struct, frozen=True, kw_only=True):
    rule_version: str | None
    taxonomy_version: str | None
    grid_version: str | None


class RoutingDecision(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a disputed evaluation needs to replay the decision."""

    tier: str
    self_handle: bool
    departments: tuple[str, ...]
    order_kind: str  # assign | whistle
    rule_code: str | None
    rule_version: str | None
    sla: Sla
    versions: Versions
    # The active rules looked at: the id of their set (`RuleSet`), stored once per set, not per case.
    rule_set: str | None = None


class RuleSet(msgspec.Struct, frozen=True):
    """The active routing rules a decision looked at, as (code, revision) in the order they are
    tried: what a disputed evaluation needs besides the decision to replay it. Named by the SHA-256
    of its JSON, so every decision taken under one version of the rules names one stored set (the
    desk stores it once, in routing_rule_sets, however many decisions name it)."""

    id: str
    rules: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, rules: tuple[tuple[str, int], ...]) -> RuleSet:
        return cls(hashlib.sha256(msgspec.json.encode(rules)).hexdigest(), rules)


DEFAULT_SLA = Sla(code=None, revision=None, acknowledge_s=1800, resolve_s=86400)


@dataclass(frozen=True)
class Directory:
    """Built per unit of work from the registry view's records, which do not change under it: what
    it derives from them (active rules in order, rules and policy by (category, severity), command
    centres) is computed once and kept for its lifetime."""

    records: Records
    command_suffix: str = "-command"
    default_sla: Sla = DEFAULT_SLA
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _all(self, kind: str) -> list[dict[str, Any]]:
        key = ("all", kind)
        if key not in self._memo:
            self._memo[key] = [r for r in self.records.get(kind, {}).values() if r.get("active", True)]
        return list(self._memo[key])

    def _rules(self) -> list[dict[str, Any]]:
        """The active routing rules in (priority, code) order."""
        if "rules" not in self._memo:
            self._memo["rules"] = sorted(
                self._all("routing_rule"), key=lambda r: (r.get("priority", 0), r["code"])
            )
        rules: list[dict[str, Any]] = self._memo["rules"]
        return rules

    def rule_set(self) -> RuleSet:
        """The active rules every decision of this directory looks at (`RuleSet`)."""
        if "rule_set" not in self._memo:
            self._memo["rule_set"] = RuleSet.of(
                tuple((r["code"], int(r.get("revision", 0))) for r in self._rules())
            )
        rule_set: RuleSet = self._memo["rule_set"]
        return rule_set

    def _rules_for(self, category: str, severity: int) -> list[dict[str, Any]]:
        """The rules whose category and severity lists admit the case's: the only ones `match_route`
        can pick for it (indexed by the pair)."""
        key = ("rules_for", category, severity)
        if key not in self._memo:
            self._memo[key] = [r for r in self._rules() if admits(r.get("match", {}), category, severity)]
        rules: list[dict[str, Any]] = self._memo[key]
        return rules

    def department(self, code: str | None) -> dict[str, Any] | None:
        rec = self.records.get("department", {}).get(code or "")
        return rec if rec and rec.get("active", True) else None

    def route(self, facts: CaseFacts) -> RoutingDecision:
        found = match_route(
            self._rules_for(facts.category.code, facts.severity.level),
            facts.category.code,
            facts.severity.level,
            codes=facts.division.codes(),
            tier=facts.division.tier,
            network=facts.network,
        )
        rule = self.records["routing_rule"][found.rule] if found else None
        floor = SEVERITY_FLOOR[facts.severity.level]
        tier = max(facts.division.tier, floor, key=TIERS.index)
        departments: tuple[str, ...] = ()
        if rule is not None:
            departments = tuple(d for d in rule["departments"] if self.department(d))
        # Left to the grid worker only where the SLA allows self-handling the category; any other
        # case of the grid goes to its department like a street case.
        self_handle = tier in SELF_HANDLED_TIERS and self.allows_self_handle(facts)
        if not self_handle and not departments:
            unit = self.territorial_unit(facts)
            departments = (unit,) if unit else ()
        return RoutingDecision(
            tier=tier,
            self_handle=self_handle,
            departments=departments,
            order_kind="whistle" if rule is not None and rule.get("whistle") else "assign",
            rule_code=rule["code"] if rule else None,
            rule_version=str(rule["revision"]) if rule else None,
            sla=self.sla(facts),
            versions=self.versions(facts, rule),
            rule_set=self.rule_set().id,
        )

    def versions(self, facts: CaseFacts, rule: Mapping[str, Any] | None) -> Versions:
        grid = self.records.get("grid", {}).get(facts.division.grid or "")
        return Versions(
            rule_version=str(rule["revision"]) if rule else None,
            taxonomy_version=facts.category.taxonomy_version,
            grid_version=f"{grid['updated_at']}#{grid['revision']}" if grid else None,
        )

    def sla(self, facts: CaseFacts) -> Sla:
        """The most specific active policy (the registry view's `match_sla`), else the default."""
        key = ("sla", facts.category.code, facts.severity.level)
        if key not in self._memo:
            self._memo[key] = self._sla(facts.category.code, facts.severity.level)
        sla: Sla = self._memo[key]
        return sla

    def allows_self_handle(self, facts: CaseFacts) -> bool:
        """Whether the policy in force lets a grid worker resolve this case on the spot (第一时间处置)."""
        key = ("self_handle", facts.category.code, facts.severity.level)
        if key not in self._memo:
            policy = match_sla(self._all("sla_policy"), facts.category.code, facts.severity.level)
            self._memo[key] = allows_self_handle(policy, facts.category.code)
        allowed: bool = self._memo[key]
        return allowed

    def _sla(self, category: str, severity: int) -> Sla:
        p = match_sla(self._all("sla_policy"), category, severity)
        if p is None:
            return self.default_sla
        return Sla(
            code=p["code"],
            revision=int(p["revision"]),
            acknowledge_s=int(p["acknowledge_within_s"]),
            resolve_s=int(p["resolve_within_s"]),
            calendar=str(p.get("calendar", "24x7")),
            business_hours=p.get("business_hours"),
            verify_s=int(p["verify_within_s"]) if p.get("verify_within_s") else None,
        )

    def command_centre(self, tier: str, facts: CaseFacts) -> str | None:
        div = facts.division
        division_code = {"street": div.street, "district": div.district}.get(tier)
        if "centres" not in self._memo:
            centres = [d for d in self._all("department") if d["code"].endswith(self.command_suffix)]
            self._memo["centres"] = sorted(centres, key=lambda d: d["code"])
        for d in self._memo["centres"]:
            if not d["code"].endswith(self.command_suffix) or d.get("tier") != tier:
                continue
            if tier == "city" or (division_code and d.get("division_code") == division_code):
                return str(d["code"])
        return None

    def escalation(self, facts: CaseFacts, tier: str) -> tuple[str, str | None]:
        """The next tier above `tier` with a command centre, and that centre; at the top, the same
        tier and None (nobody left to whistle to)."""
        for up in TIERS[TIERS.index(tier) + 1 :]:
            centre = self.command_centre(up, facts)
            if centre:
                return up, centre
        return tier, None

    def supervisor(self, department: str | None) -> str | None:
        rec = self.department(department)
        parent = rec.get("parent_code") if rec else None
        return str(parent) if parent and self.department(parent) else None

    def territorial_unit(self, facts: CaseFacts) -> str | None:
        for tier in ("street", "district", "city"):
            centre = self.command_centre(tier, facts)
            if centre:
                return centre
        return None
