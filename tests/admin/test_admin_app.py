"""The admin app through HTTP (httpx on the ASGI app, same event loop as the engine)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from admin_kit import QUIZ, XSS, Kit, needs_dot

from convo_fsm.admin import AdminApp, app

ORIGIN = "http://admin.test"
TOKEN = "s3cret-admin-token"


@pytest.fixture
async def kit() -> Kit:
    return Kit()


def client(admin: AdminApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=admin), base_url=ORIGIN)


Web = tuple[Kit, AdminApp, httpx.AsyncClient]


@pytest.fixture
async def web(kit: Kit) -> AsyncIterator[Web]:
    admin = app(kit.engine, metrics=kit.metrics, transcript=kit.transcript, token=TOKEN)
    async with client(admin) as c:
        yield kit, admin, c


async def login(c: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await c.post("/login", data={"token": token, "back": "/"},
                        headers={"origin": ORIGIN})


async def csrf_of(c: httpx.AsyncClient, key: str) -> str:
    page = await c.get("/session", params={"key": key})
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found is not None
    return found.group(1)


# -- escaping ----------------------------------------------------------------------------------
async def test_every_page_shows_what_a_chat_user_wrote_as_text(web: Web) -> None:
    kit, _, c = web
    keys = [await kit.start(f"{XSS[0]}", note=XSS[1]), await kit.start(f"{XSS[1]}")]
    assert await kit.say(XSS[0], XSS[1])  # a message kept in data and the transcript
    pages = [await c.get("/"), await c.get("/sessions"), await c.get("/sessions?q=script")]
    pages += [await c.get("/session", params={"key": k}) for k in keys]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text
        assert "<img src=x" not in page.text
        assert 'onerror=alert(2)>' not in page.text.replace("&gt;", "")
        # The only scripts are ours, each with this response's nonce.
        nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])
        assert nonce is not None
        for tag in re.findall(r"<script[^>]*>", page.text):
            assert f'nonce="{nonce.group(1)}"' in tag
    listing = pages[1].text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in listing
    one = pages[3].text
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in one  # data, shown as JSON text
    assert "bot: you said &#34;&gt;&lt;img" in one  # the transcript's reply


# -- who may act ------------------------------------------------------------------------------
async def test_an_action_without_the_token_is_refused_and_changes_nothing(web: Web) -> None:
    kit, _, c = web
    key = await kit.start("alice")
    for headers in ({}, {"origin": ORIGIN}, {"authorization": "Bearer wrong-token"}):
        r = await c.post("/act/stop", data={"key": key, "csrf": "x"}, headers=headers)
        assert r.status_code == 403
    r = await login(c, "wrong-token-!")
    assert r.status_code == 403 and "convo_fsm_admin" not in r.headers.get("set-cookie", "")
    assert kit.engine.session(key) is not None
    page = await c.get("/session", params={"key": key})
    assert 'id="login"' in page.text and 'value=""' in page.text  # no CSRF token to use


async def test_a_logged_in_form_post_needs_its_csrf_token_and_this_origin(web: Web) -> None:
    kit, _, c = web
    key = await kit.start("alice")
    r = await login(c)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = await csrf_of(c, key)
    assert csrf
    refused = [
        await c.post("/act/stop", data={"key": key}, headers={"origin": ORIGIN}),
        await c.post("/act/stop", data={"key": key, "csrf": csrf + "x"},
                     headers={"origin": ORIGIN}),
        await c.post("/act/stop", data={"key": key, "csrf": csrf},
                     headers={"origin": "http://evil.test"}),
        await c.post("/act/stop", data={"key": key, "csrf": csrf},
                     headers={"referer": "http://evil.test/x"}),
        await c.post("/act/stop", data={"key": key, "csrf": csrf}),  # neither header
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert kit.engine.session(key) is not None
    ok = await c.post("/act/stop", data={"key": key, "csrf": csrf},
                      headers={"referer": f"{ORIGIN}/session?key=x"})
    assert ok.status_code == 303 and "done=stopped" in ok.headers["location"]
    assert kit.engine.session(key) is None
    page = await c.get(ok.headers["location"])
    assert 'id="ended"' in page.text and 'id="ended" hidden' not in page.text


async def test_a_cross_site_login_is_refused(web: Web) -> None:
    _, _, c = web
    r = await c.post("/login", data={"token": TOKEN}, headers={"origin": "http://evil.test"})
    assert r.status_code == 403 and "set-cookie" not in r.headers


async def test_the_bearer_token_acts_without_a_cookie(web: Web) -> None:
    kit, _, c = web
    key = await kit.start("alice")
    r = await c.post("/act/force", data={"key": key, "state": "reminded"},
                     headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 303
    session = kit.engine.session(key)
    assert session is not None and session.state == "reminded"


async def test_read_only_hides_every_action_and_refuses_even_the_token(kit: Kit) -> None:
    key = await kit.start("alice")
    admin = app(kit.engine, metrics=kit.metrics, token=TOKEN, read_only=True)
    async with client(admin) as c:
        page = await c.get("/session", params={"key": key})
        assert "/act/" not in page.text and "read-only" in page.text
        assert (await login(c)).status_code == 403
        r = await c.post("/act/stop", data={"key": key},
                         headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403
    assert kit.engine.session(key) is not None


async def test_a_generated_token_is_long_and_random(kit: Kit) -> None:
    a, b = app(kit.engine), app(kit.engine)
    assert a.guard.generated and len(a.guard.token) >= 24 and a.guard.token != b.guard.token
    with pytest.raises(ValueError, match="at least 8"):
        app(kit.engine, token="short")


async def test_login_redirects_only_to_this_server(web: Web) -> None:
    _, _, c = web
    for back in ("//evil.test/", "http://evil.test/", "/\\evil.test"):
        r = await c.post("/login", data={"token": TOKEN, "back": back},
                         headers={"origin": ORIGIN})
        assert r.headers["location"] == "/"


# -- acts -------------------------------------------------------------------------------------
async def test_force_offers_and_accepts_only_declared_states(web: Web) -> None:
    kit, _, c = web
    key = await kit.start("alice")
    await login(c)
    csrf = await csrf_of(c, key)
    page = await c.get("/session", params={"key": key})
    offered = re.findall(r'<option value="([^"]+)">\1</option>',
                         page.text.split('id="force-state"')[1].split("</select>")[0])
    assert offered == [s.name for s in QUIZ.states]
    h = {"origin": ORIGIN}
    bad = await c.post("/act/force", data={"key": key, "csrf": csrf, "state": "nowhere"},
                       headers=h)
    assert bad.status_code == 400 and "no state &#39;nowhere&#39;" in bad.text
    assert kit.engine.session(key).state == "asking"  # type: ignore[union-attr]
    await c.post("/act/force", data={"key": key, "csrf": csrf, "state": "reminded"}, headers=h)
    assert kit.engine.session(key).state == "reminded"  # type: ignore[union-attr]
    await c.post("/act/force", data={"key": key, "csrf": csrf, "state": "done"}, headers=h)
    assert kit.engine.session(key) is None  # a final state ends it


async def test_the_deadline_can_be_extended_set_and_removed(web: Web) -> None:
    kit, _, c = web
    key = await kit.start("alice")
    await kit.clock.advance(20)  # 40 s left in "asking"
    await login(c)
    csrf = await csrf_of(c, key)

    async def act(**form: str) -> httpx.Response:
        return await c.post("/act/deadline", data={"key": key, "csrf": csrf, **form},
                            headers={"origin": ORIGIN})

    def left() -> float | None:
        s = kit.engine.session(key)
        assert s is not None
        return s.seconds_left(kit.clock.now())

    assert (await act(mode="extend", seconds="100")).status_code == 303
    assert left() == pytest.approx(140)
    assert (await act(mode="set", seconds="5")).status_code == 303
    assert left() == pytest.approx(5)
    for bad in ("-1", "nan", "inf", "soon", ""):
        assert (await act(mode="set", seconds=bad)).status_code == 400
    assert left() == pytest.approx(5)
    assert (await act(mode="none")).status_code == 303
    assert left() is None
    await kit.clock.advance(3600)
    assert kit.engine.session(key) is not None  # no deadline: nothing fired


async def test_acting_on_a_key_without_a_session_says_so(web: Web) -> None:
    _, _, c = web
    r = await c.post("/act/stop", data={"key": "nobody"},
                     headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and "no live session on &#39;nobody&#39;" in r.text


# -- the list ---------------------------------------------------------------------------------
async def test_sessions_are_searched_sorted_by_time_left_and_paginated(web: Web) -> None:
    kit, _, c = web
    keys = [await kit.start(f"user{i:03d}") for i in range(120)]
    now = kit.clock.now()
    for i, key in enumerate(keys):  # user000 has the most time left, user119 the least
        kit.engine.set_deadline(key, now + 1000 - i)
    kit.engine.set_deadline(keys[5], None)  # no deadline: last
    kit.engine.force(keys[7], "reminded")   # re-armed: 30 s left, first
    r = await c.get("/sessions", params={"per": 50})
    shown = re.findall(r'<td class="mono"><a href="[^"]+">([^<]+)</a>', r.text)
    assert len(shown) == 50 and "120</span> sessions" in r.text and "page 1 of 3" in r.text
    assert shown[0] == keys[7] and shown[1] == keys[119] and shown[2] == keys[118]
    last = await c.get("/sessions", params={"per": 50, "page": 3})
    tail = re.findall(r'<td class="mono"><a href="[^"]+">([^<]+)</a>', last.text)
    assert len(tail) == 20 and tail[-1] == keys[5] and 'id="next"' not in last.text
    everything = shown + re.findall(
        r'<td class="mono"><a href="[^"]+">([^<]+)</a>',
        (await c.get("/sessions", params={"per": 50, "page": 2})).text) + tail
    assert sorted(everything) == sorted(keys)  # each once, none lost between pages
    found = await c.get("/sessions", params={"q": "USER00"})
    assert "10</span> sessions" in found.text
    state = await c.get("/sessions", params={"state": "reminded", "spec": "quiz"})
    assert "1</span> sessions" in state.text and keys[7] in state.text
    none = await c.get("/sessions", params={"spec": "other"})
    assert "0</span> sessions" in none.text
    assert (await c.get("/sessions", params={"page": "x"})).status_code == 400


# -- diagrams ---------------------------------------------------------------------------------
@needs_dot
async def test_the_session_page_lights_its_state_and_the_overview_counts(web: Web) -> None:
    kit, _, c = web
    keys = [await kit.start(f"u{i}") for i in range(3)]
    kit.engine.force(keys[0], "reminded")
    page = await c.get("/session", params={"key": keys[0]})
    lit = re.findall(r'<g id="node\d+" class="node state current" data-state="([^"]+)">', page.text)
    assert lit == ["reminded"]
    block = page.text.split('data-state="reminded">')[1].split("</g>")[0]
    assert 'fill="#fff3b0"' in block
    overview = (await c.get("/")).text
    asking = overview.split('class="node state" data-state="asking">')[1].split("</g>")[0]
    reminded = overview.split('class="node state" data-state="reminded">')[1].split("</g>")[0]
    assert ">2 live</text>" in asking and ">1 live</text>" in reminded
    done = overview.split('class="node state" data-state="done">')[1].split("</g>")[0]
    assert ">0 live</text>" in done and 'fill="#ffffff"' in done
    live = await c.get("/diagram/live", params={"spec": "quiz", "state": "asking"})
    assert live.headers["content-type"].startswith("image/svg+xml")
    assert 'class="node state current" data-state="asking"' in live.text
    assert (await c.get("/diagram/live", params={"spec": "quiz", "state": "x"})).status_code \
        == 404
    assert (await c.get("/diagram/heat", params={"spec": "nope"})).status_code == 404


# -- mounting ---------------------------------------------------------------------------------
async def test_mounted_under_a_prefix_every_link_form_and_redirect_keeps_it(kit: Kit) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    key = await kit.start("alice")
    admin = app(kit.engine, metrics=kit.metrics, token=TOKEN)
    bot = Starlette(routes=[Route("/", lambda r: PlainTextResponse("the bot")),
                            Mount("/admin", admin)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bot),
                                 base_url=ORIGIN) as c:
        assert (await c.get("/")).text == "the bot"
        overview = (await c.get("/admin/")).text
        links = re.findall(r'(?:href|action)="([^"]+)"', overview)
        assert links and all(link.startswith("/admin/") for link in links), links
        assert 'const ROOT = "/admin";' in overview
        listing = (await c.get("/admin/sessions")).text
        assert f'href="/admin/session?key={key.replace(":", "%3A")}"' in listing
        r = await c.post("/admin/login", data={"token": TOKEN, "back": "/sessions"},
                         headers={"origin": ORIGIN})
        assert r.status_code == 303 and r.headers["location"] == "/admin/sessions"
        assert "path=/admin" in r.headers["set-cookie"].lower()
        page = await c.get("/admin/session", params={"key": key})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        r = await c.post("/admin/act/stop", data={"key": key, "csrf": csrf.group(1)},
                         headers={"origin": ORIGIN})
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/session?")
        assert kit.engine.session(key) is None


async def test_no_route_serves_files(web: Web) -> None:
    _, admin, c = web
    paths = sorted({getattr(r, "path", "") for r in admin.asgi.routes})
    assert paths == ["/", "/act/deadline", "/act/force", "/act/stop", "/diagram/heat",
                     "/diagram/live", "/events/overview", "/events/session", "/login",
                     "/logout", "/metrics", "/session", "/sessions"]
    for url in ("/diagram/heat?spec=../../etc/passwd", "/diagram/live?spec=/etc/passwd&state=x",
                "/static/../../etc/passwd", "/templates/base.html"):
        r = await c.get(url)
        assert r.status_code == 404 and "root:" not in r.text


async def test_allowed_hosts_refuse_a_rebound_dns_name(kit: Kit) -> None:
    from convo_fsm.admin import LOCAL_HOSTS

    await kit.start("alice")
    admin = app(kit.engine, token=TOKEN, allowed_hosts=LOCAL_HOSTS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                 base_url="http://127.0.0.1:8377") as c:
        assert (await c.get("/sessions")).status_code == 200
        assert (await c.get("/sessions", headers={"host": "localhost:8377"})).status_code == 200
        evil = await c.get("/sessions", headers={"host": "rebound.evil.test"})
        assert evil.status_code == 400 and "local:user:alice" not in evil.text
        assert (await c.get("/metrics", headers={"host": "rebound.evil.test"})).status_code \
            == 400
