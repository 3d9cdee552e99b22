"""/merchant: one static page for everyone whose script and style come from this server (no
CDN, no inline script, under a policy that forbids both), and whose key field can never put
the key in a URL. What it shows with a key is tests/e2e/test_merchant_page.py's."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from flask.testing import FlaskClient


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.found and self.found[-1][0] == "script" and data.strip():
            self.inline_script = True


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def test_the_page_loads_its_own_script_and_style_only(client: FlaskClient) -> None:
    response = client.get("/merchant")
    html = response.get_data(as_text=True)
    tags = parsed(html)

    assert response.status_code == 200 and response.mimetype == "text/html"
    scripts = [attrs.get("src") for tag, attrs in tags.found if tag == "script"]
    styles = [attrs.get("href") for tag, attrs in tags.found if tag == "link"]
    assert scripts == ["/static/merchant.js"] and styles == ["/static/merchant.css"]
    assert not tags.inline_script and not any("style" in attrs for _, attrs in tags.found)
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers either
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe" not in policy
    assert "blob:" in policy  # the CSV is saved from a blob: URL
    for path in ("/static/merchant.js", "/static/merchant.css"):
        asset = client.get(path)
        text = asset.get_data(as_text=True).replace("http://www.w3.org/2000/svg", "")  # a name, not a place
        assert asset.status_code == 200 and "https://" not in text and "http://" not in text, path


def test_the_key_field_has_no_name_so_no_form_can_send_it(client: FlaskClient) -> None:
    tags = parsed(client.get("/merchant").get_data(as_text=True))

    key = next(attrs for tag, attrs in tags.found if tag == "input" and attrs.get("id") == "api-key")
    assert "name" not in key and key.get("type") == "password" and key.get("autocomplete") == "off"
    # Only sessionStorage holds it, and only as a header does it leave.
    script = client.get("/static/merchant.js").get_data(as_text=True)
    assert "localStorage" not in script and "document.cookie" not in script
    assert 'headers.Authorization = "Bearer " + storedKey()' in script


def test_text_from_the_api_is_never_parsed_as_html(client: FlaskClient) -> None:
    script = client.get("/static/merchant.js").get_data(as_text=True)

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert 'parseFromString(text, "image/svg+xml")' in script
