"""The built site in a real browser: headless Chromium from the system packages.

Why the DevTools protocol over ``websocket-client`` rather than Playwright: the
system Chromium is all CI installs (``scripts/install_browser.sh``, Debian's
package, no browser download), and the checks here need five protocol calls
(navigate, evaluate, screenshot). ``websocket-client`` is a small pure-Python
package (already pulled in by the Jupyter stack); Playwright would add a Node
driver pinned to its own browser builds for no gain.

The site is served by ``http.server`` on 127.0.0.1 at a free port (search needs
HTTP: its worker fetches the index). Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 30.0


def find_chromium() -> str | None:
    """The system Chromium, or ``None``. ``CHROMIUM`` overrides the search."""
    names = (os.environ["CHROMIUM"],) if os.environ.get("CHROMIUM") else CHROMIUM_NAMES
    return next(filter(None, map(shutil.which, names)), None)


def _site_builder() -> Any:
    spec = importlib.util.spec_from_file_location(
        "course_site_tests", Path(__file__).with_name("test_site.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.built_site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        pass


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built site, served on 127.0.0.1 at a free port."""
    if find_chromium() is None:
        pytest.skip(
            "no Chromium on PATH (or at $CHROMIUM): "
            "run scripts/install_browser.sh (apt-get install chromium)"
        )
    site = _site_builder()(tmp_path_factory)
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class DevTools:
    """A minimal Chrome DevTools protocol client for one page target."""

    def __init__(self, websocket_url: str) -> None:
        import websocket  # websocket-client

        # Chromium refuses DevTools connections that carry an Origin it does not know.
        self._ws = websocket.create_connection(websocket_url, timeout=TIMEOUT, suppress_origin=True)
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply, keeping events that arrive meanwhile."""
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        reply = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = TIMEOUT) -> Any:
        """Poll ``expression`` until it is truthy; fail saying ``what`` never happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as error:  # the page navigated while we asked: ask again
                if "navigated" not in str(error) and "context" not in str(error):
                    raise
                value = None
            if value:
                return value
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    def open(self, url: str) -> None:
        """Navigate and wait until the page and its images have loaded."""
        self.call("Page.navigate", url=url)
        self.wait_for(
            f"location.href.startsWith({json.dumps(url.split('#')[0].split('?')[0])}) && "
            "document.readyState === 'complete'",
            f"{url} to load",
        )

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._ws.close()


@pytest.fixture(scope="module")
def browser(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """Headless Chromium with a throwaway profile, driven over DevTools."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    command = [
        find_chromium(),
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--remote-debugging-port=0",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"Chromium did not start its DevTools server:\n{stderr[-2000:]}")
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        client = DevTools(page["webSocketDebuggerUrl"])
        yield client
    finally:
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _lesson_urls(browser: DevTools, base_url: str) -> list[str]:
    browser.open(base_url + "lessons/")
    links = browser.evaluate(
        "[...document.querySelectorAll('.md-nav a.md-nav__link')]"
        ".map(a => a.href).filter(h => /\\/lessons\\/\\d\\d_[^/]+\\/$/.test(h))"
    )
    return list(dict.fromkeys(links))


def test_home_page_renders(browser: DevTools, base_url: str) -> None:
    browser.open(base_url)
    title = browser.evaluate("document.querySelector('h1').textContent")
    assert title.strip().startswith("Transfer learning in PyTorch")
    assert browser.evaluate("document.querySelectorAll('.md-nav a').length") > 10
    # The light/dark toggle is there.
    assert (
        browser.evaluate("document.querySelectorAll('[data-md-component=palette] input').length")
        == 2
    )
    browser.screenshot(SCREENSHOTS / "home.png")


def test_lesson_page_shows_code_and_a_plot(browser: DevTools, base_url: str) -> None:
    lessons = _lesson_urls(browser, base_url)
    if not lessons:
        pytest.skip("the site has no lesson pages yet (no executed notebooks in course/lessons/)")
    checked_plot = False
    for index, url in enumerate(lessons):
        browser.open(url)
        if index == 0:  # the top of a lesson: the note on which mode made the outputs
            assert browser.evaluate("document.querySelectorAll('.course-run-mode').length") == 1
            browser.screenshot(SCREENSHOTS / "lesson-top.png")
        highlighted = browser.evaluate(
            "document.querySelectorAll('.highlight-ipynb span.k, .highlight-ipynb span.kn,"
            " .highlight-ipynb span.nn').length"
        )
        assert highlighted > 0, f"{url}: no syntax-highlighted code"
        browser.wait_for(
            "[...document.querySelectorAll('.jp-OutputArea img')].every(i => i.complete)",
            f"the images of {url} to load",
        )
        plots = browser.evaluate(
            "[...document.querySelectorAll('.jp-OutputArea img')]"
            ".filter(i => i.naturalWidth > 0).length"
        )
        if plots and not checked_plot:
            browser.evaluate(
                "document.querySelector('.jp-OutputArea img').scrollIntoView({block: 'center'})"
            )
            time.sleep(0.6)  # let the header's title finish its scroll transition
            browser.screenshot(SCREENSHOTS / "lesson.png")
            checked_plot = True
    assert checked_plot, "no lesson page shows a plot that loads (naturalWidth > 0)"


def test_nav_leads_from_home_to_the_exercise_guide(browser: DevTools, base_url: str) -> None:
    browser.open(base_url)
    clicked = browser.evaluate(
        "(() => { const a = [...document.querySelectorAll('.md-nav a.md-nav__link')]"
        ".find(a => a.textContent.trim() === 'Exercise'); if (!a) return false;"
        # Click after this call returns: a navigation mid-call would cut the reply.
        " setTimeout(() => a.click(), 0); return true; })()"
    )
    assert clicked, "no 'Exercise' link in the home page's navigation"
    browser.wait_for(
        "location.pathname.endsWith('/exercise/') && document.readyState === 'complete'",
        "the exercise guide to open",
    )
    title = browser.evaluate("document.querySelector('h1').textContent")
    assert title.strip().startswith("Exercise")
    assert "course.check" in browser.evaluate("document.body.innerText")


def test_search_finds_requires_grad(browser: DevTools, base_url: str) -> None:
    browser.open(base_url + "?q=requires_grad")
    results = browser.wait_for(
        "[...document.querySelectorAll('.md-search-result__item')].map(e => e.innerText)",
        "search results for requires_grad",
    )
    assert any("requires_grad" in text for text in results), results
