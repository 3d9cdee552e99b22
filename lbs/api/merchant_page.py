"""The merchant's page in a browser: its funnel, hours, deals, CSV and reviews (GET /merchant)."""

from __future__ import annotations

from flask import render_template
from flask_openapi3 import APIBlueprint

pages = APIBlueprint("merchant_pages", __name__)


@pages.get("/merchant", doc_ui=False)
def merchant_page() -> str:
    """The same page for everyone: its script reads the numbers with the API key the merchant
    pastes in, which stays in the tab (sessionStorage) and travels only in a header."""
    return render_template("merchant.html")
