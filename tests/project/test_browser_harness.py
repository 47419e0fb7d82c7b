"""The browser harness: Debian chromium via Playwright loads a page served on loopback."""

import http.server
import threading
from functools import partial

import pytest

pytestmark = pytest.mark.browser

HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>qadmin harness</title></head>
<body><h1 id="greeting">hello</h1>
<button id="b" onclick="document.getElementById('greeting').textContent='clicked'">go</button>
</body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def static_site(tmp_path):
    (tmp_path / "index.html").write_bytes(HTML)
    handler = partial(_QuietHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_page_title_and_click(page, static_site):
    page.goto(static_site)
    assert page.title() == "qadmin harness"
    page.click("#b")
    assert page.text_content("#greeting") == "clicked"
