"""How a page built from a shared reading becomes this request's HTML: two strategies, one trick.

`PlainRender` is the reference: every request renders its templates itself, with its own CSRF
token, as any Flask app does.

`SharedRender` is the performance trick: the overview (with its live refresh) and the jobs page
are rendered once per reading (qadmin.web.snapshot) and frame, with a random slot (`CSRF_SLOT`)
where the CSRF token goes, and every session that views the same numbers gets that rendering
with its own token spliced into the slot (`SlottedHtml`). Those pages are what every open
browser asks for every few seconds, and their rows, tabs and menus are most of a view's cost; a
shared one costs a join and a dictionary lookup. The data readings are shared either way: the
strategies differ only in how often the same HTML is rendered.

The app config flag QADMIN_SHARED_RENDER picks one (default: shared); the two must answer byte
for byte the same, each session with its own token (tests/faces/web/test_web_render_paths.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from flask import Response, current_app, g, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from qadmin.errors import UsageError
from qadmin.web.access import current_identity
from qadmin.web.snapshot import Reading
from qadmin.web.state import backend_name

#: what a shared rendering holds where each request's own CSRF token goes: random, so no data
#: can contain it, and never sent as it is
CSRF_SLOT = "csrf-slot-" + secrets.token_hex(16)


def csrf_token() -> str:
    """The templates' `csrf_token()`: the slot while a shared rendering is made, nothing on bearer
    requests (they need no CSRF token, and making one would write a session cookie into every
    scripted read), else Flask-WTF's token of this session."""
    if g.get("qadmin_csrf_slot"):
        return CSRF_SLOT
    return "" if g.get("via_bearer") else str(generate_csrf())


class SlottedHtml:
    """Rendered HTML with a slot for the CSRF token wherever a form needs one; none when it was
    rendered for one request, with that request's token in it already."""

    def __init__(self, html: str) -> None:
        self._parts = html.split(CSRF_SLOT)
        self._encoded: list[bytes] | None = None

    def for_request(self) -> Markup:
        """The HTML with this request's token in every slot."""
        return Markup(str(escape(csrf_token())).join(self._parts))

    def with_slot(self) -> Markup:
        """The rendering with its slots kept, to be put inside a bigger shared rendering."""
        return Markup(CSRF_SLOT.join(self._parts))

    def response(self) -> Response:
        """A whole page as this request's response: encoded to UTF-8 once for all the views
        that share it (a page of rows is some 35 kB, and encoding that much text with any
        non-ASCII character in it takes longer than Flask's whole handling of the request),
        the token joined in as bytes."""
        encoded = self._encoded
        if encoded is None:
            encoded = self._encoded = [part.encode("utf-8") for part in self._parts]
        body = str(escape(csrf_token())).encode("ascii", "xmlcharrefreplace").join(encoded)
        return Response(body, mimetype="text/html")


class PageRender(Protocol):
    """How the pages built from a shared reading are rendered (`page_render` picks one)."""

    def part(
        self, reading: Reading[Any], key: Hashable, template: str, context: Callable[[], dict[str, Any]]
    ) -> SlottedHtml:
        """`template` rendered with `context()`: a page's body, or a live refresh's partial.
        `key` says what `context()` is made from besides the reading."""
        ...

    def page(self, reading: Reading[Any], key: Hashable, template: str, body: SlottedHtml) -> ResponseReturnValue:
        """`template` (a page of base.html) around `body`, as this request's response."""
        ...


class PlainRender:
    """The reference: every request renders its own page, with its own CSRF token."""

    def part(
        self, reading: Reading[Any], key: Hashable, template: str, context: Callable[[], dict[str, Any]]
    ) -> SlottedHtml:
        return SlottedHtml(render_template(template, **context()))

    def page(self, reading: Reading[Any], key: Hashable, template: str, body: SlottedHtml) -> ResponseReturnValue:
        return render_template(template, body=body.for_request())


class SharedRender:
    """The trick: rendered once per reading, key and frame for every session, each request's
    CSRF token spliced in afterwards. A template it renders must show nothing of the request
    but that token, or what `page_chrome` keys the whole page by."""

    def part(
        self, reading: Reading[Any], key: Hashable, template: str, context: Callable[[], dict[str, Any]]
    ) -> SlottedHtml:
        return reading.derive(key, lambda: _render_with_slots(template, **context()))

    def page(self, reading: Reading[Any], key: Hashable, template: str, body: SlottedHtml) -> ResponseReturnValue:
        """The whole page rendered once per reading, `key` and frame (`page_chrome`) for all the
        views that would render the same. A page with flashed messages waiting is rendered for
        its request alone."""
        chrome = page_chrome()
        if chrome is None:
            return PLAIN.page(reading, key, template, body)
        whole = reading.derive(
            ("whole page", template, key, chrome), lambda: _render_with_slots(template, body=body.with_slot())
        )
        return whole.response()


PLAIN = PlainRender()
SHARED = SharedRender()


def page_render() -> PageRender:
    """This app's strategy: shared unless QADMIN_SHARED_RENDER is false."""
    return SHARED if current_app.config.get("QADMIN_SHARED_RENDER", True) else PLAIN


def _render_with_slots(template: str, **context: Any) -> SlottedHtml:
    """A template rendered for every request alike, the CSRF token of its forms left as a slot."""
    g.qadmin_csrf_slot = True
    try:
        return SlottedHtml(render_template(template, **context))
    finally:
        g.pop("qadmin_csrf_slot", None)


def page_chrome() -> tuple[Hashable, ...] | None:
    """All that a page's frame (base.html: the header, the switcher, the footer) shows of the
    request but its CSRF token, as a key for sharing a rendering of the whole page; None when
    the page must be rendered for this request alone (flashed messages wait in its session).

    Keep it in step with base.html and templating's `_shared_context`: a value the frame shows
    and this key leaves out would show one request's value to another."""
    if "_flashes" in session:
        return None
    try:
        current = backend_name()
    except UsageError:
        return None
    config = current_app.config
    identity = current_identity()
    return (
        request.endpoint,
        current,
        session.get("user"),
        bool(session.get("auth")),
        bool(config["QADMIN_READ_ONLY"]),
        config["QADMIN_REFRESH"],
        # the header's name and role, whether it shows (a proxy's user) with a log-out button, and
        # whether actions show (templating)
        (identity.name, identity.role, identity.source) if identity is not None else None,
    )
