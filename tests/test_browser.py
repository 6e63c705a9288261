"""The built site in a real browser: headless Chromium from the system packages.

Why the DevTools protocol over ``websocket-client`` rather than Playwright: the
system Chromium is all CI installs (``scripts/install_browser.sh``, Debian's
package, no browser download), and the checks here need five protocol calls
(navigate, evaluate, screenshot). ``websocket-client`` is a small pure-Python
package (already pulled in by the Jupyter stack); Playwright would add a Node
driver pinned to its own browser builds for no gain.

The site is served by ``http.server`` on 127.0.0.1 at a free port (search needs
HTTP: its worker fetches the index); any request the browser makes to another host
fails the tests, so the site works offline. Each lesson is checked at 1280 px and at
390 px (a phone), light and dark, and a screenshot of each is saved under
``artifacts/screenshots/`` for a person to look at.
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
        self._forgets_palette = False
        self._width = 1280
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Network.enable")

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since the last call, then forget them."""
        self.evaluate("0")  # read the events that arrived since the last reply
        urls = [
            event["params"]["request"]["url"]
            for event in self._events
            if event.get("method") == "Network.requestWillBeSent"
        ]
        self._events.clear()
        return urls

    def set_view(self, width: int, dark: bool) -> None:
        """A viewport ``width`` px wide, light or dark preferred.

        A narrow desktop window stands in for a phone: the site's layout depends on the
        width only, and headless Chromium's mobile emulation paints text that scrolls
        inside a box past the box's edge in screenshots, which misleads a reviewer.
        """
        self._width = width
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        scheme = "dark" if dark else "light"
        self.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": scheme}],
        )
        # Material remembers the last palette in localStorage, and writes it on every page
        # load: forget it before each page's scripts run, so every page follows the
        # preferred scheme, as on a first visit.
        if not self._forgets_palette:
            self.call(
                "Page.addScriptToEvaluateOnNewDocument",
                source="try { localStorage.clear(); } catch (e) {}",
            )
            self._forgets_palette = True

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

    def poll(self, expression: str, timeout: float = TIMEOUT) -> Any:
        """The first truthy value of ``expression`` within ``timeout`` s, else None."""
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
        return None

    def wait_for(self, expression: str, what: str, timeout: float = TIMEOUT) -> Any:
        """Poll ``expression`` until it is truthy; fail saying ``what`` never happened."""
        value = self.poll(expression, timeout)
        if not value:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        return value

    def wait_for_scheme(self, url: str, dark: bool) -> None:
        """Wait until the page shows the palette the reader prefers; fail only on the site.

        Material picks the palette in its script after load: from a palette stored in
        localStorage, else from ``matchMedia``. Twice on a loaded CI machine a lesson stayed
        light although dark was emulated, and passed on reruns: the page had not seen the
        emulated preference, or saw a palette the previous page had stored. Those are the
        browser's races, not the site's: re-emulate, forget the palette, reload, and wait
        again. The site fails this check only if it ignores a preference its page sees.
        """
        scheme = "slate" if dark else "default"
        shows = f"document.body.getAttribute('data-md-color-scheme') === '{scheme}'"
        preference = "dark" if dark else "light"
        page_state = (
            "({sees: matchMedia('(prefers-color-scheme: " + preference + ")').matches,"
            " stored: Object.keys(localStorage).filter(k => k.endsWith('__palette'))"
            ".map(k => localStorage.getItem(k))})"
        )
        seen: list[dict[str, Any]] = []
        for _ in range(3):
            if self.poll(shows, TIMEOUT / 3):
                return
            state = self.evaluate(page_state)
            seen.append(state)
            if state["sees"] and not state["stored"]:
                break  # the page sees the preference, nothing overrides it: the site's fault
            self.set_view(self._width, dark)
            self.evaluate("localStorage.clear()")
            self.call("Page.reload", ignoreCache=True)
            self.wait_for("document.readyState === 'complete'", f"{url} to reload")
        pytest.fail(
            f"{url} does not show the {preference} palette the reader prefers "
            f"(what the page saw on each try: {seen})"
        )

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
        time.sleep(0.3)  # let transitions (header title, palette) settle
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


# --------------------------------------------------------------------------- layout

VIEWS = [(1280, False), (390, False), (1280, True), (390, True)]

# Each check returns a list of problems, [] when the page is fine.
_PAGE_OVERFLOW = """
(() => {
  const doc = document.documentElement;
  return doc.scrollWidth > window.innerWidth + 1
    ? [`the page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`] : [];
})()
"""
_OUTPUTS_SCROLL = """
(() => {
  const problems = [];
  for (const pre of document.querySelectorAll('.jp-OutputArea-output pre')) {
    const style = getComputedStyle(pre);
    const box = pre.getBoundingClientRect();
    const text = pre.textContent.slice(0, 40).replace(/\\s+/g, ' ');
    // Phones scroll outputs sideways; wider windows wrap them between words (never
    // inside a short token: no break-all, no anywhere).
    const ok = window.innerWidth < 720 ? ['pre'] : ['pre', 'pre-wrap'];
    if (!ok.includes(style.whiteSpace))
      problems.push(`output wraps (${style.whiteSpace}): ${text}`);
    if (style.wordBreak === 'break-all' || style.overflowWrap === 'anywhere')
      problems.push(`output may break inside a number: ${text}`);
    if (box.right > window.innerWidth + 1) problems.push(`output sticks out: ${text}`);
    if (pre.scrollWidth > pre.clientWidth + 1 && !['auto', 'scroll'].includes(style.overflowX))
      problems.push(`output clipped without a scrollbar: ${text}`);
  }
  return problems;
})()
"""
_COPY_BUTTON_LANE = """
(() => {
  const problems = [];
  for (const editor of document.querySelectorAll('.jp-InputArea-editor')) {
    const button = editor.querySelector('.zeroclipboard-container');
    const pre = editor.querySelector('.highlight-ipynb pre');
    if (!button || !pre || button.offsetWidth === 0) continue;
    const textRight = pre.getBoundingClientRect().right
      - parseFloat(getComputedStyle(pre).paddingRight);
    if (textRight > button.getBoundingClientRect().left + 1)
      problems.push(`code runs under the copy button: ${pre.textContent.slice(0, 40)}`);
  }
  return problems;
})()
"""
_PROMPTS_NARROW = """
(() => [...document.querySelectorAll('.jp-InputPrompt, .jp-OutputPrompt')]
  .filter(p => p.offsetWidth > 48)
  .slice(0, 3).map(p => `a prompt ${p.offsetWidth} px wide: ${p.textContent.trim()}`))()
"""
_DARK_FIGURES = """
(() => {
  const problems = [];
  if (document.body.getAttribute('data-md-color-scheme') !== 'slate')
    problems.push('dark mode was asked for but the page is not in the slate scheme');
  for (const img of document.querySelectorAll('.jp-OutputArea-output img')) {
    const [r, g, b] = (getComputedStyle(img).backgroundColor.match(/[\\d.]+/g) || [0, 0, 0])
      .map(Number);
    const alpha = (getComputedStyle(img).backgroundColor.match(/[\\d.]+/g) || []).length > 3
      ? Number(getComputedStyle(img).backgroundColor.match(/[\\d.]+/g)[3]) : 1;
    if (alpha < 0.9 || 0.2126 * r + 0.7152 * g + 0.0722 * b < 200)
      problems.push(`a figure without a light backing in dark mode: ${img.src.slice(0, 50)}`);
  }
  return problems;
})()
"""


# Sideways scrolling may hide code or words, never a number: for every table and every
# output or message block whose box scrolls, the part out of view must hold no digit.
_HIDDEN_NUMBERS = """
(() => {
  const problems = [];
  const digit = /\\d/;
  for (const table of document.querySelectorAll('.md-content table')) {
    const box = table.closest('.md-typeset__scrollwrap, .jp-OutputArea-output') || table;
    if (box.scrollWidth <= box.clientWidth + 1) continue;
    const right = box.getBoundingClientRect().right;
    const cell = [...table.querySelectorAll('td, th')].find(
      c => c.getBoundingClientRect().right > right + 1 && digit.test(c.textContent));
    if (cell) problems.push(`a number out of view: ${cell.textContent.trim().slice(0, 40)}`);
  }
  const blocks = '.md-content .jp-OutputArea-output pre, .md-content .admonition pre, '
    + '.md-content .course-lesson-facts';
  for (const pre of document.querySelectorAll(blocks)) {
    if (pre.scrollWidth <= pre.clientWidth + 1) continue;
    const probe = document.createElement('span');
    probe.textContent = 'M'.repeat(20);
    pre.appendChild(probe);
    const width = probe.getBoundingClientRect().width / 20;
    probe.remove();
    const style = getComputedStyle(pre);
    const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const columns = Math.floor(inner / width);
    const hidden = pre.textContent.split('\\n').map(l => l.slice(columns)).find(t => digit.test(t));
    if (hidden !== undefined)
      problems.push(`a number out of view in an output: ...${hidden.trim().slice(0, 40)}`);
  }
  return problems;
})()
"""
#: The pages whose figures students read: every lesson, and these.
KEY_PAGES = ("", "start/", "lessons/", "exercise/", "results/", "reference/course/")


def test_no_number_needs_sideways_scrolling_at_1280px(browser: DevTools, base_url: str) -> None:
    """Key pages at 1280 px: tables and outputs show every number without scrolling."""
    browser.set_view(1280, False)
    urls = [base_url + path for path in KEY_PAGES] + _lesson_urls(browser, base_url)
    problems = []
    for url in urls:
        browser.open(url)
        name = url[len(base_url) :].strip("/") or "home"
        problems += [f"{name}: {p}" for p in browser.evaluate(_HIDDEN_NUMBERS)]
    assert not problems, "\n".join(problems)


def _external(urls: list[str], base_url: str) -> list[str]:
    """The URLs that leave the site: not on the test server, not data: or blob:."""
    return [
        url for url in urls if not url.startswith((base_url, "data:", "blob:", "about:", "chrome"))
    ]


@pytest.mark.parametrize(
    ("width", "dark"), VIEWS, ids=[f"{w}px-{'dark' if d else 'light'}" for w, d in VIEWS]
)
def test_lessons_read_well_at_every_width(
    browser: DevTools, base_url: str, width: int, dark: bool
) -> None:
    """No clipped text, no page overflow, no request off the site, a screenshot of each."""
    lessons = _lesson_urls(browser, base_url)
    if not lessons:
        pytest.skip("the site has no lesson pages yet (no executed notebooks in course/lessons/)")
    browser.set_view(width, dark)
    browser.requested_urls()
    problems: list[str] = []
    try:
        for url in lessons:
            browser.open(url)
            browser.wait_for_scheme(url, dark)  # first: it may reload the page
            browser.wait_for(
                "[...document.querySelectorAll('.jp-OutputArea img')].every(i => i.complete)",
                f"the images of {url} to load",
            )
            checks = [_PAGE_OVERFLOW, _OUTPUTS_SCROLL, _COPY_BUTTON_LANE]
            if width < 600:
                checks.append(_PROMPTS_NARROW)
            if dark:
                checks.append(_DARK_FIGURES)
            name = url.rstrip("/").rsplit("/", 1)[-1]
            for check in checks:
                problems += [f"{name} at {width} px: {p}" for p in browser.evaluate(check)]
            facts = browser.evaluate(
                "(document.querySelector('.course-lesson-facts') || {}).innerText || ''"
            )
            if "Time to run" not in facts or "Download this notebook" not in facts:
                problems.append(f"{name}: no opening box with time to run and download link")
            problems += [
                f"{name}: request off the site: {u}"
                for u in _external(browser.requested_urls(), base_url)
            ]
            scheme = "dark" if dark else "light"
            browser.screenshot(SCREENSHOTS / f"{name}-{width}px-{scheme}.png")
            # A second shot where the first wide output sits, for a person to check.
            if browser.evaluate(
                "(() => { const pre = [...document.querySelectorAll('.jp-OutputArea-output pre')]"
                ".find(p => p.scrollWidth > p.clientWidth); if (!pre) return false;"
                " pre.scrollIntoView({block: 'center'}); return true; })()"
            ):
                browser.screenshot(SCREENSHOTS / f"{name}-{width}px-{scheme}-wide-output.png")
    finally:
        browser.set_view(1280, False)
    assert not problems, "\n".join(problems)


def test_no_request_leaves_the_site(browser: DevTools, base_url: str) -> None:
    """Home, results, reference and a search: every request stays on 127.0.0.1."""
    browser.requested_urls()
    external = []
    for path in ("", "start/", "results/", "reference/course/", "exercise/", "?q=freezing"):
        browser.open(base_url + path)
        if path.startswith("?q="):
            browser.wait_for(
                "document.querySelectorAll('.md-search-result__item').length",
                "search results",
            )
        time.sleep(0.5)  # late requests: fonts and icons load after 'complete'
        external += [
            f"{path or 'home'}: {u}" for u in _external(browser.requested_urls(), base_url)
        ]
    assert not external, "requests that leave the site:\n" + "\n".join(external)


def test_search_result_titles_are_clean(browser: DevTools, base_url: str) -> None:
    """No "In [4]: Copied!" or pilcrows in search results: prompts are not indexed."""
    browser.open(base_url + "?q=freezing")
    titles = browser.wait_for(
        "[...document.querySelectorAll('.md-search-result__article h1,"
        " .md-search-result__article h2')].map(e => e.innerText)",
        "search results for 'freezing'",
    )
    snippets = browser.evaluate(
        "[...document.querySelectorAll('.md-search-result__article')].map(e => e.innerText)"
    )
    dirty = [t for t in titles + snippets if any(w in t for w in ("In [", "Copied!", "¶"))]
    assert titles, "no search result for 'freezing'"
    assert not dirty, f"search results show prompts or copy-button text: {dirty[:5]}"


def test_other_pages_fit_a_phone(browser: DevTools, base_url: str) -> None:
    """Home, guides, results and reference: no page wider than a 390 px window."""
    browser.set_view(390, True)
    problems = []
    try:
        for path in ("", "start/", "lessons/", "exercise/", "results/", "reference/course/"):
            browser.open(base_url + path)
            problems += [f"/{path}: {p}" for p in browser.evaluate(_PAGE_OVERFLOW)]
            name = path.strip("/").replace("/", "-") or "home"
            browser.screenshot(SCREENSHOTS / f"page-{name}-390px-dark.png")
    finally:
        browser.set_view(1280, False)
    assert not problems, "\n".join(problems)
