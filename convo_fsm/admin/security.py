"""Who may act: the admin token, login cookies, and the cross-site request checks.

- Reading needs nothing (the pages are read-only without the token; bind to 127.0.0.1).
- Acting (every POST) needs the token: either `Authorization: Bearer TOKEN` (scripts;
  a browser never adds that header to a cross-site request), or a login cookie made by
  posting the token to `/login`. A cookie-authenticated POST must also carry the login's
  CSRF token in its form and come from this origin (`Origin`, else `Referer`); the cookie
  is HttpOnly and SameSite=Strict. Anything else: 403.
- `read_only`: no login, no act, whatever the token.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = ["COOKIE", "Guard"]

COOKIE = "convo_fsm_admin"
_MAX_LOGINS = 1000


class Guard:
    def __init__(self, token: str | None, *, read_only: bool = False) -> None:
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            raise ValueError("an admin token must be a str of at least 8 characters")
        self.token = secrets.token_urlsafe(24) if token is None else token
        self.generated = token is None
        self.read_only = read_only
        self._logins: OrderedDict[str, str] = OrderedDict()  # cookie value -> CSRF token

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def login(self) -> tuple[str, str]:
        """A new login: (cookie value, CSRF token). The oldest logins are forgotten."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._logins[sid] = csrf
        while len(self._logins) > _MAX_LOGINS:
            self._logins.popitem(last=False)
        return sid, csrf

    def logout(self, request: Request) -> None:
        self._logins.pop(request.cookies.get(COOKIE, ""), None)

    def csrf_for(self, request: Request) -> str | None:
        """The CSRF token of the request's login, or None (not logged in, or read-only)."""
        if self.read_only:
            return None
        return self._logins.get(request.cookies.get(COOKIE, ""))

    def same_origin(self, request: Request) -> bool:
        """Whether the request says it comes from a page of this server."""
        here = (request.url.scheme, request.headers.get("host", request.url.netloc))
        origin = request.headers.get("origin")
        if origin is not None:
            if origin == "null":
                return False
            o = urlsplit(origin)
            return (o.scheme, o.netloc) == here
        referer = request.headers.get("referer")
        if referer is None:
            return False
        r = urlsplit(referer)
        return (r.scheme, r.netloc) == here

    def may_act(self, request: Request, form_csrf: str | None) -> str | None:
        """None if the request may act; else why not (for the 403 page)."""
        if self.read_only:
            return "this admin is read-only"
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return None if self.token_ok(auth[7:].strip()) else "wrong token"
        csrf = self.csrf_for(request)
        if csrf is None:
            return "log in with the admin token first"
        if form_csrf is None or not hmac.compare_digest(form_csrf.encode(), csrf.encode()):
            return "missing or wrong CSRF token"
        if not self.same_origin(request):
            return "cross-site request refused"
        return None
