"""The grid registry's client side: the changelog-fed view every service keeps (`RegistryView`) and
the business rules the services apply to its records (routing, SLA matching, deadlines on China's
working-day calendar). The shared library `onegrid` holds mechanisms only; these rules live here so
the registry and the services that decide with them read one copy."""

from registry_client.rules import (
    CHINA_STANDARD_TIME,
    Json,
    Route,
    admits,
    allows_self_handle,
    calendar_version,
    due_at,
    match_route,
    match_sla,
    working_calendar,
)
from registry_client.view import SPATIAL_KINDS, ChangeListener, RegistryView, cells_from_records

__all__ = [
    "CHINA_STANDARD_TIME",
    "SPATIAL_KINDS",
    "ChangeListener",
    "Json",
    "RegistryView",
    "Route",
    "admits",
    "allows_self_handle",
    "calendar_version",
    "cells_from_records",
    "due_at",
    "match_route",
    "match_sla",
    "working_calendar",
]
