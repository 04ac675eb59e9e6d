"""A hostile web page in a real browser (Chromium) against a JARVIS on loopback, default settings.

The page is served from another local origin (another port), as any site the user visits
could be. It tries what needs no CORS preflight: a plain form POST, ``no-cors`` fetches with
a ``text/plain`` body (an import, a call, a training run); and DNS rebinding: its own name
(``evil.test``, mapped to 127.0.0.1 by the browser's resolver rules) on the server's port.
Every attempt reaches the server and is refused; the store's rows are the same before and
after.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers.live_server import LiveServer
from helpers.store_rows import IMPORT_LINE as LINE
from helpers.store_rows import row_counts

PAGE = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="poison" method="POST" enctype="text/plain" target="sink"
      action="TARGET/v1/admin/import?task=create_next_level">
  <input type="hidden" name='{"x":"' value='"}'>
</form>
<script>
  const target = "TARGET";
  window.attack = async () => {
    const plain = {"Content-Type": "text/plain"};
    const tries = [
      [target + "/v1/admin/import", LINE],
      [target + "/v1/tasks/create_next_level/call",
       JSON.stringify({input: {last_levels: [], difficulty: 3}})],
      [target + "/v1/admin/tasks/create_next_level/train", ""],
    ];
    for (const [url, body] of tries) {
      await fetch(url, {method: "POST", mode: "no-cors", headers: plain, body});
    }
    document.getElementById("poison").submit();
    return tries.length + 1;
  };
</script>
</body></html>
"""


@pytest.fixture
def hostile(site: LiveServer) -> Iterator[str]:
    """The attacker's page, served from another origin (another port of this machine)."""
    body = PAGE.replace("TARGET", site.url).replace("LINE", repr(LINE)).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def refused(site: LiveServer) -> float:
    text = httpx.get(f"{site.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "jarvis_rejected_total"
    )


def test_cross_site_form_and_no_cors_requests_change_nothing(
    site: LiveServer, hostile: str, page: Any
) -> None:
    before, refused_before = row_counts(site.rt.store), refused(site)
    page.goto(hostile)
    sent = page.evaluate("window.attack()")
    page.wait_for_timeout(500)  # the form's navigation of the iframe
    assert refused(site) - refused_before == sent  # each reached the server, each refused
    assert row_counts(site.rt.store) == before


def test_a_rebinding_page_reads_nothing(site: LiveServer, page: Any) -> None:
    port = site.url.rsplit(":", 1)[1]
    before = row_counts(site.rt.store)
    response = page.goto(f"http://evil.test:{port}/api/overview")
    assert response is not None and response.status == 403
    assert "host_not_allowed" in page.content() and "create_next_level" not in page.content()
    # the page is now "same-origin" with the server, as far as the browser knows
    status = page.evaluate(
        """async () => [
            (await fetch("/api/tasks/create_next_level/calls")).status,
            (await fetch("/v1/admin/tasks/create_next_level/train", {method: "POST"})).status,
        ]"""
    )
    assert status == [403, 403]
    assert row_counts(site.rt.store) == before


def test_the_dashboard_itself_still_works(site: LiveServer, page: Any) -> None:
    page.goto(f"{site.url}/")
    status = page.evaluate(
        """async () => (await fetch("/v1/tasks/create_next_level/call", {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({input: {last_levels: [], difficulty: 2}})})).status"""
    )
    assert status == 200
