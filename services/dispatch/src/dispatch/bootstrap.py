"""Composition root of the dispatch service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from onegrid.service import create_app
from onegrid.topics import CASES, DISPATCH_FEEDBACK
from onegrid.wiring import wire

from dispatch.api import router
from dispatch.inbox import CaseInbox
from dispatch.settings import Settings


def bootstrap(settings: Settings | None = None) -> tuple[FastAPI, Settings]:
    settings = settings or Settings()
    w = wire(settings, migrations=Path(__file__).parent / "migrations")
    inbox = CaseInbox(w.engine)
    w.add_loop(name="cases", topics=[CASES, DISPATCH_FEEDBACK], handler=inbox.handle)
    app = create_app(w.runtime, title="OneGrid dispatch (闭合运转)", routers=[router(w.engine)])
    return app, settings
