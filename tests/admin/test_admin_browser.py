"""The admin in a real headless Chromium (Debian's chromium + chromium-driver, via selenium).

The server (uvicorn) and the engine run in the test's event loop; every selenium call,
which blocks, runs in a thread. Screenshots of the overview and a session page are saved
to $CONVO_FSM_SCREENSHOTS (README's are made with CONVO_FSM_SCREENSHOTS=docs), else to the
test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from admin_kit import XSS, Kit, needs_dot, serving

from convo_fsm.admin import app

pytestmark = [pytest.mark.slow, needs_dot]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "browser-admin-token"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def driver() -> Any:
    if not Path(CHROMEDRIVER).exists():
        pytest.fail("chromedriver is missing: apt-get install chromium chromium-driver "
                    "(.ci/run installs them)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--lang=en-US"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CONVO_FSM_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


class Browser:
    """The driver, called from a thread so the event loop keeps serving."""

    def __init__(self, driver: Any, base: str) -> None:
        self.d = driver
        self.base = base

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self(self.d.get, self.base + path)

    async def js(self, script: str, *args: Any) -> Any:
        return await self(self.d.execute_script, script, *args)

    async def until(self, script: str, *args: Any, timeout: float = 10) -> Any:
        """Wait (bounded) until `script` returns something truthy; return it."""
        return await self(lambda: WebDriverWait(self.d, timeout, poll_frequency=0.05).until(
            lambda d: d.execute_script(script, *args)))

    async def no_alert(self) -> None:
        def check() -> None:
            try:
                alert = self.d.switch_to.alert
            except NoAlertPresentException:
                return
            raise AssertionError(f"an alert opened: {alert.text!r}")
        await self(check)


@pytest.fixture
async def site(driver: Any) -> AsyncIterator[tuple[Kit, Browser]]:
    kit = Kit()
    async with serving(app(kit.engine, metrics=kit.metrics, transcript=kit.transcript,
                           token=TOKEN)) as base:
        try:
            yield kit, Browser(driver, base)
        finally:  # close the page's event stream before the server stops
            await asyncio.to_thread(driver.get, "about:blank")


LIT = "const g = document.querySelector('#diagram g.node.state.current'); " \
      "return g && g.dataset.state;"
LIT_IS = "const g = document.querySelector('#diagram g.node.state.current'); " \
         "return g !== null && g.dataset.state === arguments[0];"


async def test_the_admin_in_a_real_browser(site: Any, tmp_path: Path) -> None:
    kit, b = site
    keys = [await kit.start(f"player{i}", level=i) for i in range(6)]
    evil = await kit.start(XSS[0], note=XSS[1])
    assert await kit.say(XSS[0], XSS[1])
    for key in keys[:2]:
        kit.engine.force(key, "reminded")
    await kit.clock.advance(15)

    # The overview: a heat map with each state's count, no script of a user's run.
    await b.open("/")
    counts = await b.until("""
        const cells = document.querySelectorAll('.spec[data-spec="quiz"] td.count');
        const svg = document.querySelector('.spec[data-spec="quiz"] svg');
        return svg && Object.fromEntries([...cells].map(c => [c.dataset.state, c.textContent]));
    """)
    assert counts == {"asking": "5", "reminded": "2", "done": "0"}
    heat = await b.js("""return [...document.querySelectorAll('g.node.state')].map(
        g => [g.dataset.state, g.querySelector('path,polygon').getAttribute('fill')]);""")
    fills = dict(heat)
    assert fills["done"] == "#ffffff" and fills["asking"] != fills["reminded"] != "#ffffff"
    await b.no_alert()
    out = shots(tmp_path)
    await b(b.d.save_screenshot, str(out / "admin-overview.png"))
    # The overview follows the engine too: a new session, and one moved on.
    late = await kit.start("late")
    kit.engine.force(late, "reminded")
    assert await b.until("""return document.getElementById('total').textContent === '8' &&
        document.querySelector('.spec td.count[data-state="reminded"]').textContent === '3'""")
    assert await b.until("""const g = document.querySelector(
        '.spec g.node.state[data-state="reminded"]');
        return g && g.textContent.includes('3 live')""")
    kit.engine.stop(late)

    # The list shows the user's key as text.
    await b.open("/sessions?q=script")
    assert await b.js("return document.querySelector('#sessions td a').textContent") == evil
    assert await b.js("return document.querySelectorAll('main img').length") == 0
    await b.no_alert()

    # One session: its state lit, the time left counting down, the data as text.
    await b.open("/session?key=" + quote(evil))
    assert await b.until(LIT) == "asking"
    assert await b.js("return document.getElementById('key').textContent") == evil
    data = await b.js("return document.getElementById('data').textContent")
    assert XSS[1] in data
    assert await b.js("return document.querySelectorAll('main img').length") == 0
    left = await b.js("return document.getElementById('left').textContent")
    assert left == "45s"  # 60 s state, 15 s gone (virtual clock)
    await b.no_alert()
    await b(b.d.save_screenshot, str(out / "admin-session.png"))

    # A change made by the engine shows without reloading: state, lit node, history.
    await b.js("window.__same_page = 1")
    assert await kit.say(XSS[0], "/next")
    assert await b.until("return document.getElementById('state').textContent === 'reminded'")
    assert await b.until(LIT_IS, "reminded")  # the new diagram, fetched by the page
    assert await b.js("return window.__same_page") == 1  # not reloaded
    assert await b.js("return document.getElementById('history').textContent") \
        == "asking → reminded"

    # Without the token, the stop button is refused and the session lives on.
    await b(b.d.find_element(By.ID, "stop").click)
    assert await b.until("return document.title === 'Refused' && "
                         "document.getElementById('message').textContent")
    assert kit.engine.session(evil) is not None

    # With the token (logged in): stop, and the page shows it ended.
    await b.open("/login?back=/sessions")
    await b(b.d.find_element(By.ID, "token").send_keys, TOKEN)
    await b(b.d.find_element(By.ID, "login-button").click)
    await b.until("return location.pathname === '/sessions'")
    await b.open("/session?key=" + quote(evil))
    await b.until(LIT)
    await b(b.d.find_element(By.ID, "stop").click)
    assert await b.until("const e = document.getElementById('ended'); "
                         "return e && !e.hidden && document.getElementById('done')")
    assert kit.engine.session(evil) is None

    # A session the engine ends while its page is open shows ended, live.
    await b.open("/session?key=" + quote(keys[3]))
    await b.until(LIT)
    assert await b.js("return document.getElementById('ended').hidden") is True
    assert await kit.say("player3", "42")  # its final state
    assert await b.until("return !document.getElementById('ended').hidden")
    await b.no_alert()
