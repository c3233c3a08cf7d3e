"""Intake HTTP API."""

from __future__ import annotations

from fastapi import APIRouter


def router() -> APIRouter:
    r = APIRouter(tags=["intake"])
    return r
