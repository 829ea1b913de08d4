"""The admin web app: Starlette (ASGI), served by uvicorn, pages rendered by Jinja2.

Starlette because it is a small maintained ASGI toolkit with streaming responses (the
Server-Sent Events here), a test client, and nothing else we do not use; an ASGI app also
mounts into whatever ASGI server a bot already runs (`Mount("/admin", app(...))`).

Routes (GET ones read, POST ones act; see `security` for who may act):

    /                        overview: each spec's diagram as a heat map, counts
    /sessions?q=&spec=&state=&page=&per=   the list, by time left, paginated
    /session?key=K           one session: lit diagram, time left, data, history, transcript
    /events/session?key=K    SSE: the session's snapshot whenever it changes
    /events/overview         SSE: live counts per spec and state (every second)
    /diagram/heat?spec=NAME  the heat map SVG; /diagram/live?spec=NAME&state=S the lit one
    /metrics                 Prometheus text format
    POST /login /logout /act/stop /act/force /act/deadline

No route reads or writes a file: templates are loaded once, at import, from this package.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from convo_fsm.admin.diagrams import DiagramError, heat_svg, live_svg
from convo_fsm.admin.security import COOKIE, Guard
from convo_fsm.admin.source import AdminError, EngineSource, Source, StoreSource
from convo_fsm.session import Session
from convo_fsm.spec import Spec

if TYPE_CHECKING:
    from convo_fsm.engine import Engine
    from convo_fsm.metrics import Metrics
    from convo_fsm.storage.base import Store
    from convo_fsm.testing.transcript import Transcript

__all__ = ["LOCAL_HOSTS", "AdminApp", "app", "store_app"]

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("convo_fsm.admin", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          auto_reload=False)
# Loaded once here, so no request ever opens a file.
_TEMPLATES = {name: _ENV.get_template(name)
              for name in ("base.html", "overview.html", "sessions.html", "session.html",
                           "login.html", "message.html")}

PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_PAGE = 10**9  # a page number past any list (offsets stay within SQLite's integers)
SSE_POLL = 0.2  # seconds between checks of a watched session (state changes show within 1 s)


def _left(session: Session, now: float) -> float | None:
    left = session.seconds_left(now)
    return None if left is None else round(left, 3)


def _fmt_left(left: float | None) -> str:
    if left is None:
        return "-"
    s = math.ceil(left)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _snapshot(session: Session | None, now: float) -> dict[str, Any]:
    if session is None:
        return {"alive": False}
    return {"alive": True, "key": session.key, "spec": session.spec, "state": session.state,
            "seconds_left": _left(session, now), "generation": session.generation,
            "history": list(session.history),
            "data": json.dumps(session.data, indent=2, ensure_ascii=False, sort_keys=True)}


class _LiveCollector:
    """`live_sessions{spec,state}` from the source's last listing (no Metrics hook)."""

    def __init__(self, namespace: str = "convo_fsm") -> None:
        self.namespace = namespace
        self.counts: Counter[tuple[str, str]] = Counter()

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(f"{self.namespace}_live_sessions",
                                   "Live sessions by spec and state.", labels=["spec", "state"])
        for (spec, state), n in sorted(self.counts.items()):
            family.add_metric([spec, state], n)
        yield family


class AdminApp:
    """The admin over one `Source`. `asgi` is the Starlette app."""

    def __init__(self, source: Source, *, token: str | None = None, read_only: bool = False,
                 metrics: Metrics | None = None,
                 allowed_hosts: Sequence[str] | None = None) -> None:
        self.source = source
        self.guard = Guard(token, read_only=read_only)
        self.metrics = metrics
        self._live_collector: _LiveCollector | None = None
        self._counted: tuple[float, int, Counter[tuple[str, str]]] = (-math.inf, 0, Counter())
        if metrics is not None:
            self.registry = metrics.registry
        else:
            self.registry = CollectorRegistry(auto_describe=False)
            self._live_collector = _LiveCollector()
            self.registry.register(self._live_collector)
        self.asgi = Starlette(routes=[
            Route("/", self.overview),
            Route("/sessions", self.sessions),
            Route("/session", self.session),
            Route("/events/session", self.session_events),
            Route("/events/overview", self.overview_events),
            Route("/diagram/heat", self.diagram_heat),
            Route("/diagram/live", self.diagram_live),
            Route("/metrics", self.metrics_page),
            Route("/login", self.login_page),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/act/stop", self.act_stop, methods=["POST"]),
            Route("/act/force", self.act_force, methods=["POST"]),
            Route("/act/deadline", self.act_deadline, methods=["POST"]),
        ], middleware=[] if allowed_hosts is None else [
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts),
                       www_redirect=False)])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)

    # -- rendering ---------------------------------------------------------------------------
    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(16)
        root = _root(request)
        body = _TEMPLATES[name].render(
            nonce=nonce, csrf=self.guard.csrf_for(request), read_only=self.guard.read_only,
            source_kind=self.source.kind, root=root, path=_path(request), **context)
        return HTMLResponse(body, status, headers=_headers(nonce))

    def _message(self, request: Request, status: int, title: str, text: str) -> Response:
        return self._page(request, "message.html", status, title=title, text=text)

    async def _svg(self, render: Callable[[], str]) -> Markup | None:
        """A diagram to put inline. Graphviz runs in a thread (a new picture takes tens of
        milliseconds; the engine's loop must not wait for it)."""
        try:
            return Markup(await asyncio.to_thread(render))  # Graphviz's; every label escaped
        except DiagramError:
            return None

    # -- pages -------------------------------------------------------------------------------
    async def _counts(self, max_age: float = 0.0) -> tuple[int, Counter[tuple[str, str]]]:
        """(live sessions, per (spec, state)); `max_age`: a count that recent is reused (the
        overview's event streams share one count a second, however many pages are open)."""
        now = time.monotonic()
        if max_age > 0 and now - self._counted[0] < max_age:
            return self._counted[1], self._counted[2]
        total, c = await self.source.counts()
        self._counted = (now, total, c)
        if self._live_collector is not None:
            self._live_collector.counts = c
        return total, c

    async def overview(self, request: Request) -> Response:
        total, c = await self._counts()
        specs = []
        for name in sorted({*self.source.spec_names(), *(s for s, _ in c)}):
            spec = self.source.spec(name)
            per_state = {state: n for (sp, state), n in c.items() if sp == name}
            svg = (None if spec is None else
                   await self._svg(functools.partial(heat_svg, spec, per_state)))
            states = [st.name for st in spec.states] if spec is not None else sorted(per_state)
            specs.append({"name": name, "svg": svg, "total": sum(per_state.values()),
                          "states": [(st, per_state.get(st, 0)) for st in states]})
        recent = self.source.recent()
        return self._page(request, "overview.html", specs=specs, total=total,
                          recent=_recent_rows(recent))

    async def sessions(self, request: Request) -> Response:
        p = request.query_params
        text, spec, state = p.get("q", ""), p.get("spec", ""), p.get("state", "")
        try:
            page = min(MAX_PAGE, max(1, int(p.get("page", "1"))))
            per = min(MAX_PER_PAGE, max(1, int(p.get("per", str(PER_PAGE)))))
        except ValueError:
            return self._message(request, 400, "Bad page", "page and per must be whole numbers")
        result = await self.source.page(text=text, spec=spec, state=state,
                                        offset=(page - 1) * per, limit=per)
        now = self.source.now()
        pages = max(1, math.ceil(result.total / per))

        root = _root(request)

        def link(n: int) -> str:
            return root + "/sessions?" + urlencode({"q": text, "spec": spec, "state": state,
                                             "page": n, "per": per})

        return self._page(
            request, "sessions.html", q=text, spec=spec, state=state, total=result.total,
            page=page, pages=pages, per=per, specs=self.source.spec_names(),
            prev=link(page - 1) if page > 1 else None,
            next=link(page + 1) if page < pages else None,
            rows=[{"key": s.key, "spec": s.spec, "state": s.state,
                   "left": _left(s, now), "left_text": _fmt_left(_left(s, now)),
                   "href": root + "/session?" + urlencode({"key": s.key})}
                  for s in result.rows])

    async def session(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        if not key:
            return self._message(request, 400, "No key", "give the session's key: ?key=...")
        s = await self.source.get(key)
        now = self.source.now()
        spec = None if s is None else self.source.spec(s.spec)
        svg = (None if s is None or spec is None or s.state not in spec.by_name
               else await self._svg(functools.partial(live_svg, spec, s.state)))
        return self._page(
            request, "session.html", key=key, s=s, snap=_snapshot(s, now),
            left_text=_fmt_left(None if s is None else _left(s, now)), svg=svg,
            states=[] if spec is None else [st.name for st in spec.states],
            transcript=self.source.transcript(key), done=request.query_params.get("done"))

    # -- live updates ------------------------------------------------------------------------
    async def session_events(self, request: Request) -> Response:
        key = request.query_params.get("key", "")

        async def stream() -> AsyncIterator[str]:
            last = None
            beat = 0
            while True:
                snap = _snapshot(await self.source.get(key), self.source.now())
                seen = {k: v for k, v in snap.items() if k != "seconds_left"}
                if seen != last:
                    last = seen
                    yield f"event: session\ndata: {json.dumps(snap)}\n\n"
                    beat = 0
                elif (beat := beat + 1) * SSE_POLL >= 15:
                    yield ": keep-alive\n\n"
                    beat = 0
                await asyncio.sleep(SSE_POLL)

        return _sse(request, stream())

    async def overview_events(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                total, c = await self._counts(max_age=0.9)
                payload = {"total": total,
                           "counts": [[sp, st, n] for (sp, st), n in sorted(c.items())]}
                if payload != last:
                    last = payload
                    yield f"event: counts\ndata: {json.dumps(payload)}\n\n"
                await asyncio.sleep(1.0)

        return _sse(request, stream())

    async def diagram_heat(self, request: Request) -> Response:
        spec = self.source.spec(request.query_params.get("spec", ""))
        if spec is None:
            return PlainTextResponse("no such spec", 404)
        _, c = await self._counts(max_age=0.9)
        per_state = {state: n for (sp, state), n in c.items() if sp == spec.name}
        return await _svg_response(functools.partial(heat_svg, spec, per_state))

    async def diagram_live(self, request: Request) -> Response:
        spec = self.source.spec(request.query_params.get("spec", ""))
        state = request.query_params.get("state", "")
        if spec is None or state not in spec.by_name:
            return PlainTextResponse("no such spec or state", 404)
        return await _svg_response(functools.partial(live_svg, spec, state))

    async def metrics_page(self, request: Request) -> Response:
        if self._live_collector is not None:
            await self._counts()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    # -- login and acts ----------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        if self.guard.read_only:
            return self._message(request, 403, "Read-only", "this admin is read-only")
        return self._page(request, "login.html", error=None,
                          back=_local(request.query_params.get("back", "/")))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        back = _local(str(form.get("back", "/")))
        if self.guard.read_only:
            return self._message(request, 403, "Read-only", "this admin is read-only")
        if not self.guard.same_origin(request):
            return self._message(request, 403, "Refused", "cross-site request refused")
        if not self.guard.token_ok(_str(form.get("token"))):
            return self._page(request, "login.html", 403, error="wrong token", back=back)
        sid, _ = self.guard.login()
        response = RedirectResponse(_root(request) + back, 303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict",
                            path=_root(request) or "/",
                            secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        refused = self.guard.may_act(request, _str(form.get("csrf")))
        if refused is not None:
            return self._message(request, 403, "Refused", refused)
        self.guard.logout(request)
        response = RedirectResponse(_root(request) + "/", 303)
        response.delete_cookie(COOKIE, path=_root(request) or "/")
        return response

    async def _act(self, request: Request) -> tuple[Any, str] | Response:
        form = await request.form()
        refused = self.guard.may_act(request, _str(form.get("csrf")))
        if refused is not None:
            return self._message(request, 403, "Refused", refused)
        key = _str(form.get("key"))
        if not key:
            return self._message(request, 400, "No key", "the form names no session key")
        return form, key

    def _done(self, request: Request, key: str, what: str) -> Response:
        return RedirectResponse(_root(request) + "/session?" + urlencode({"key": key,
                                                                           "done": what}), 303)

    async def act_stop(self, request: Request) -> Response:
        got = await self._act(request)
        if isinstance(got, Response):
            return got
        _, key = got
        try:
            await self.source.stop(key)
        except AdminError as exc:
            return self._message(request, 404, "Not stopped", str(exc))
        return self._done(request, key, "stopped")

    async def act_force(self, request: Request) -> Response:
        got = await self._act(request)
        if isinstance(got, Response):
            return got
        form, key = got
        try:
            await self.source.force(key, _str(form.get("state")) or "")
        except AdminError as exc:
            return self._message(request, 400, "Not forced", str(exc))
        return self._done(request, key, "forced")

    async def act_deadline(self, request: Request) -> Response:
        got = await self._act(request)
        if isinstance(got, Response):
            return got
        form, key = got
        mode = _str(form.get("mode")) or "set"
        raw = (_str(form.get("seconds")) or "").strip()
        session = await self.source.get(key)
        if session is None:
            return self._message(request, 404, "No session", f"no live session on {key!r}")
        now = self.source.now()
        try:
            if mode == "none":
                deadline = None
            else:
                seconds = float(raw)
                if not math.isfinite(seconds) or seconds < 0 or seconds > 10 * 365 * 86400:
                    raise ValueError
                if mode == "extend":
                    base = session.deadline if session.deadline is not None else now
                    deadline = max(base, now) + seconds
                elif mode == "set":
                    deadline = now + seconds
                else:
                    return self._message(request, 400, "Bad mode", f"unknown mode {mode!r}")
        except ValueError:
            return self._message(request, 400, "Bad deadline",
                                 f"seconds must be a number from 0 to ten years, got {raw!r}")
        try:
            await self.source.set_deadline(key, deadline)
        except AdminError as exc:
            return self._message(request, 404, "Not changed", str(exc))
        return self._done(request, key, "deadline")


def _root(request: Request) -> str:
    """Where the app is mounted ("" at the server's root, "/admin" under `Mount("/admin")`)."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _path(request: Request) -> str:
    """The request's path below the mount point."""
    path: str = request.scope.get("path", "/")
    root = _root(request)
    return path[len(root):] or "/" if root and path.startswith(root) else path


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _local(path: str) -> str:
    """Only a path on this server (no scheme, no host, no `//`): no open redirect."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path \
        else "/"


def _headers(nonce: str) -> dict[str, str]:
    return {"Content-Security-Policy":
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


async def _svg_response(render: Callable[[], str]) -> Response:
    try:
        svg = await asyncio.to_thread(render)
    except DiagramError as exc:
        return PlainTextResponse(str(exc), 503)
    return Response(svg, media_type="image/svg+xml",
                    headers={"Content-Security-Policy": "default-src 'none'; style-src "
                             "'unsafe-inline'", "X-Content-Type-Options": "nosniff"})


def _sse(request: Request, events: AsyncIterator[str]) -> Response:
    async def until_gone() -> AsyncIterator[str]:
        async for chunk in events:
            if await request.is_disconnected():
                return
            yield chunk

    return StreamingResponse(until_gone(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _recent_rows(recent: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    if recent is None:
        return None
    specs = sorted({*recent["started"], *(s for s, _ in recent["ended"])})
    return [{"spec": sp, "started": recent["started"].get(sp, 0),
             "errors": recent["errors"].get(sp, 0),
             "ended": sorted((r, n) for (s, r), n in recent["ended"].items() if s == sp)}
            for sp in specs]


def app(engine: Engine, *, token: str | None = None, read_only: bool = False,
        metrics: Metrics | None = None, transcript: Transcript | None = None,
        specs: Iterable[Spec] = (), allowed_hosts: Sequence[str] | None = None) -> AdminApp:
    """The admin of a running `engine`, an ASGI app (serve it with uvicorn, or mount it).

    `metrics`: the engine's `Metrics` trace hook (counters on /metrics, the last hour's
    counts, and a fast list at 100k sessions); `transcript`: a `Transcript` it traces into
    (shown per session). `token`: the admin token (generated if None: read it from
    `.guard.token`). `read_only`: no actions at all. `allowed_hosts`: the only `Host` names
    answered (others get 400; e.g. `LOCAL_HOSTS` against DNS rebinding when serving on
    127.0.0.1); None answers any.

    Serve it in the engine's own event loop (the pages call the engine directly)."""
    return AdminApp(EngineSource(engine, metrics=metrics, transcript=transcript, specs=specs),
                    token=token, read_only=read_only, metrics=metrics,
                    allowed_hosts=allowed_hosts)


def store_app(store: Store, specs: Iterable[Spec], *, token: str | None = None,
              read_only: bool = False, allowed_hosts: Sequence[str] | None = None) -> AdminApp:
    """The admin of the sessions kept in `store` (what `convo-fsm serve` runs)."""
    return AdminApp(StoreSource(store, specs), token=token, read_only=read_only,
                    allowed_hosts=allowed_hosts)


# The names a browser on this machine uses for a server bound to the loopback address.
LOCAL_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]", "::1")
