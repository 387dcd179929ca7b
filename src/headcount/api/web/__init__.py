"""Server-rendered pages: the attendee event page and the organizer dashboard.

Jinja2 templates plus a few small vanilla scripts; no front-end build. The pages read the
same public REST endpoints any integrator would, so they cannot show a different truth.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from headcount.api.web.pages import router

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/web/static"


def install(app: FastAPI) -> None:
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="web-static")
    app.include_router(router)
