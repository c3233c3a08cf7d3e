"""Who may do what: roles, the permission table (resource x action -> roles), the authenticated
`Principal` and the scope it may see by the grid hierarchy.

Scope codes are division or grid codes, which nest by prefix (GB/T 2260 district 6 digits, street 9,
community 12, grid 15, micro-grid 18), so "in scope" is "the case's most specific code starts with
one of the principal's codes". A 6-digit code of a whole city (`321000`) or province (`320000`)
covers its districts (prefix `3210`, `32`). Departments are scoped by department code. Admins and
auditors are not scoped; every other role needs at least one code of its kind.

This module is pure: services use `ScopeFilter` to put the scope into their own queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    GRID_WORKER = "grid_worker"  # 网格员: the grid(s) named in scope
    COMMUNITY_OPERATOR = "community_operator"
    STREET_OPERATOR = "street_operator"
    DISTRICT_OPERATOR = "district_operator"
    CITY_OPERATOR = "city_operator"  # the command centre
    DEPARTMENT_OPERATOR = "department_operator"  # a department's people or its system
    AUDITOR = "auditor"
    ADMIN = "admin"
    BI_READER = "bi_reader"
    OPEN311_CLIENT = "open311_client"  # an app or hotline system submitting residents' requests
    LEGACY_SYSTEM = "legacy_system"  # a legacy network's system pushing its records to the bridges


OPERATORS = frozenset(
    {Role.COMMUNITY_OPERATOR, Role.STREET_OPERATOR, Role.DISTRICT_OPERATOR, Role.CITY_OPERATOR}
)
DIVISION_SCOPED = OPERATORS | {Role.GRID_WORKER, Role.BI_READER}
DEPARTMENT_SCOPED = frozenset({Role.DEPARTMENT_OPERATOR})
UNSCOPED = frozenset({Role.ADMIN, Role.AUDITOR, Role.OPEN311_CLIENT, Role.LEGACY_SYSTEM})
# Roles that see reporters' names, phones and id numbers (of cases in their scope).
PERSONAL_DATA_ROLES = OPERATORS | {Role.GRID_WORKER, Role.ADMIN}
_ANY_STAFF = OPERATORS | {
    Role.GRID_WORKER,
    Role.DEPARTMENT_OPERATOR,
    Role.AUDITOR,
    Role.BI_READER,
    Role.ADMIN,
}

# (action, resource) -> roles allowed; admin is allowed everything (see `permits`).
PERMISSIONS: dict[tuple[str, str], frozenset[Role]] = {
    ("read", "cases"): OPERATORS | {Role.GRID_WORKER, Role.DEPARTMENT_OPERATOR, Role.AUDITOR},
    ("act", "cases"): OPERATORS | {Role.GRID_WORKER},
    ("feedback", "cases"): frozenset({Role.DEPARTMENT_OPERATOR}),
    ("read", "deliveries"): frozenset({Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR}),
    ("read", "registry"): _ANY_STAFF,
    ("write", "registry"): frozenset(),
    ("rotate", "webhook_secrets"): frozenset(),  # the city's administrators only
    ("read", "audit.trail"): frozenset({Role.AUDITOR}),
    ("read", "audit.story"): OPERATORS | {Role.GRID_WORKER, Role.AUDITOR},
    ("read", "metrics"): (OPERATORS - {Role.COMMUNITY_OPERATOR})
    | {Role.GRID_WORKER, Role.DEPARTMENT_OPERATOR, Role.AUDITOR, Role.BI_READER},
    ("read", "console"): OPERATORS,
    ("replay", "console"): frozenset({Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR}),
    ("read", "open311"): _ANY_STAFF | {Role.OPEN311_CLIENT},
    ("submit", "open311"): frozenset({Role.OPEN311_CLIENT}),
    ("submit", "legacy"): frozenset({Role.LEGACY_SYSTEM}),
    # A patrol report (巡查上报) from the grid worker's app, for a grid of the worker's own scope.
    ("report", "patrol"): frozenset({Role.GRID_WORKER}),
}

DIVISION_CODE = re.compile(r"^[0-9]{6}([0-9]{3}){0,4}$")
DEPARTMENT_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


def personal_data_refusal(role: Role) -> str:
    """The one answer (403 detail) everywhere personal data is asked for by a role without the right."""
    return f"this carries personal data, not shown to role {role}"


class NotPermitted(PermissionError):
    """The principal may not do this; the message says why (it is shown to the caller)."""


def division_prefix(code: str) -> str:
    """The prefix every code inside `code` starts with: `321000` -> `3210`, `320000` -> `32`."""
    if len(code) == 6:
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


@dataclass(frozen=True)
class Principal:
    """Who is calling: from a verified token (`via` = "jwt") or an API key ("api_key")."""

    subject: str
    role: Role
    divisions: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    via: str = "jwt"

    def __post_init__(self) -> None:
        for code in self.divisions:
            if not DIVISION_CODE.match(code):
                raise ValueError(f"scope code {code[:20]!r} is not a division or grid code")
        for code in self.departments:
            if not DEPARTMENT_CODE.match(code):
                raise ValueError(f"department {code[:40]!r} is not a department code")
        if self.role in DIVISION_SCOPED and not self.divisions:
            raise ValueError(f"role {self.role} needs at least one division or grid code in its scope")
        if self.role in DEPARTMENT_SCOPED and not self.departments:
            raise ValueError(f"role {self.role} needs at least one department")

    def permits(self, action: str, resource: str) -> bool:
        if (action, resource) not in PERMISSIONS:
            raise KeyError(f"no permission {action} {resource} is defined")
        return self.role == Role.ADMIN or self.role in PERMISSIONS[(action, resource)]

    @property
    def unrestricted(self) -> bool:
        """Sees every division and department (admin, auditor)."""
        return self.role in UNSCOPED

    @property
    def sees_personal_data(self) -> bool:
        return self.role in PERSONAL_DATA_ROLES

    def scope(self) -> ScopeFilter:
        if self.unrestricted:
            return ScopeFilter(unrestricted=True)
        if self.role in DEPARTMENT_SCOPED:
            return ScopeFilter(departments=self.departments)
        return ScopeFilter(prefixes=tuple(sorted({division_prefix(c) for c in self.divisions})))

    def admits_division(self, code: str | None) -> bool:
        return self.scope().admits(division=code)


@dataclass(frozen=True)
class ScopeFilter:
    """The rows a principal may see, as values for a query: cases whose most specific division code
    starts with one of `prefixes`, or whose department is one of `departments`. Nothing matches an
    empty filter (fail closed)."""

    unrestricted: bool = False
    prefixes: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()

    @property
    def like_patterns(self) -> list[str]:
        """`prefixes` as SQL LIKE patterns (codes are digits: nothing to escape)."""
        return [p + "%" for p in self.prefixes]

    def sql(
        self, *, division: str, department: str | None = None, param: str = "scope"
    ) -> tuple[str, dict[str, object]]:
        """A WHERE fragment with named parameters (SQLAlchemy `text`): `division` and `department`
        are SQL expressions of the row's most specific division code and its department(s)."""
        if self.unrestricted:
            return "TRUE", {}
        parts: list[str] = []
        params: dict[str, object] = {}
        if self.prefixes:
            parts.append(f"({division}) LIKE ANY(CAST(:{param}_prefixes AS text[]))")
            params[f"{param}_prefixes"] = self.like_patterns
        if self.departments and department is not None:
            parts.append(department.replace(":departments", f"CAST(:{param}_departments AS text[])"))
            params[f"{param}_departments"] = list(self.departments)
        return ("(" + " OR ".join(parts) + ")") if parts else "FALSE", params

    def admits(self, *, division: str | None = None, departments: tuple[str, ...] | list[str] = ()) -> bool:
        """The same rule in Python, for a single row already read."""
        if self.unrestricted:
            return True
        if division and any(division.startswith(p) for p in self.prefixes):
            return True
        return any(d in self.departments for d in departments)
