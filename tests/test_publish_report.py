"""The release's HTML report in a real browser: headless Chromium opens it from disk, offline.

Chromium is driven over the DevTools protocol (a websocket on 127.0.0.1), which tells console
errors and uncaught exceptions apart from ordinary log lines. For the overview and a city page,
at 1400 px and at 390 px (a phone), the test fails on any console error, on a chart that did not
render or rendered without data marks, on sideways scrolling of the page, and on any request that
leaves the release folder (the report must work offline). Screenshots go to the folder named by
$CITYKPI_REPORT_SCREENSHOTS, else `report-screenshots/` under pytest's base temporary folder (the
path is printed): look at them.

Needs Debian's `chromium` (/usr/bin/chromium); skipped with a reason when it is not installed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                                                           "(Debian: apt-get install chromium)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]
# Limits against a hang only (each wait ends on its condition): a loaded machine renders slowly.
RENDER_TIMEOUT = 300.0
CALL_TIMEOUT = 120.0


class DevTools:
    """A minimal DevTools protocol client over one flattened page session."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, timeout: float = CALL_TIMEOUT, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for a while (vegaEmbed renders asynchronously after load)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def problems(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                          for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log error: {params['entry']['text']} ({params['entry'].get('url', '')})")
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@contextmanager
def chromium_page(profile: Path) -> Iterator[DevTools]:
    from websockets.sync.client import connect

    assert CHROMIUM is not None
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--remote-debugging-address=127.0.0.1", "--window-size=1400,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + RENDER_TIMEOUT
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if match := re.search(r"DevTools listening on (ws://\S+)", line):
                url = match.group(1)
        assert url, "Chromium did not print its DevTools address"
        with connect(url, max_size=64 * 1024 * 1024, open_timeout=CALL_TIMEOUT) as ws:
            browser = DevTools(ws)
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            browser.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                browser.call(f"{domain}.enable")
            yield browser
            browser.session = None
            browser.call("Browser.close")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=CALL_TIMEOUT)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-city release that has a previous release: overview plus one page per city."""
    from test_publish_multicity import two_city_home

    from pipelines.steps import publish
    from publish.releases import load_release
    from sources.config import load_city_config
    from warehouse.home import Home

    home = Home(tmp_path_factory.mktemp("report") / "home")
    shutil.copytree(two_city_home(tmp_path_factory.getbasetemp()).root, home.root, symlinks=True)
    cities = load_release(home, "latest").manifest["cities"]
    release = publish(home, [load_city_config(Path(c["config"])) for c in cities], "report-test")
    assert release.manifest["previous_release"]
    return release.path


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CITYKPI_REPORT_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "report-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


STATE = """(() => {
    const divs = [...document.querySelectorAll('div.chart')];
    return {charts: divs.length, ready: document.readyState,
            svgs: divs.filter(d => d.querySelector('svg.marks')).length,
            empty: divs.filter(d => d.querySelector('svg.marks') && !d.querySelector('g.role-mark > *'))
                       .map(d => d.id),
            narrow: divs.filter(d => d.querySelector('svg.marks')
                                     && d.querySelector('svg.marks').getBoundingClientRect().width < 100)
                        .map(d => d.id),
            scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth,
            height: document.documentElement.scrollHeight};
})()"""
# The page's widest element, to name what scrolls sideways.
WIDEST = """(() => { let worst = null, right = 0;
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.right > right && getComputedStyle(el.parentElement).overflowX !== 'auto') { right = r.right; worst = el; }
    }
    return worst ? worst.tagName + '#' + worst.id + '.' + worst.className + ' ' + right : null; })()"""


def open_and_check(page: DevTools, path: Path, width: int, shots: Path, name: str) -> dict[str, Any]:
    """Open `path` at `width` px, wait until every chart rendered, check it, save screenshots."""
    page.events.clear()
    page.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
              mobile=width < 600)
    page.call("Page.navigate", url=path.as_uri())
    state: dict[str, Any] = {}
    deadline = time.monotonic() + RENDER_TIMEOUT
    while time.monotonic() < deadline:
        page.pump(0.3)
        # While the page is being replaced (the second width navigates to the same file again) the old
        # context is gone and the evaluation returns nothing: that is "not ready yet", not a result.
        current = page.evaluate(STATE)
        if not isinstance(current, dict):
            continue
        state = current
        if state["ready"] == "complete" and state["svgs"] == state["charts"]:
            break
    assert state, f"{name}: the page never answered within {RENDER_TIMEOUT} s: {page.problems()}"
    assert state["charts"] > 0, f"{name}: no chart on the page"
    assert state["svgs"] == state["charts"], f"{name}: {state['svgs']} of {state['charts']} charts rendered: " \
                                             f"{page.problems()}"
    assert state["empty"] == [], f"{name}: charts without data marks: {state['empty']}"
    assert state["narrow"] == [], f"{name}: charts drawn (almost) without width: {state['narrow']}"
    page.pump(0.3)
    assert page.problems() == [], f"{name} at {width} px"
    remote = [u for u in page.requests() if not u.startswith(("file:", "data:", "about:"))]
    assert remote == [], f"{name}: the report fetched {remote}"
    assert state["scrollWidth"] <= state["width"], (
        f"{name} scrolls sideways at {width} px ({state['scrollWidth']} > {state['width']}): {page.evaluate(WIDEST)}")
    # The top of the page (title, contents, City Snapshot or overview), and the whole page up to 12,000 px.
    for suffix, height in (("top", 2400), ("page", min(int(state["height"]), 12_000))):
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        png = shots / f"{name}-{width}-{suffix}.png"
        png.write_bytes(base64.b64decode(shot["data"]))
        assert png.stat().st_size > 10_000, f"{png} is nearly blank"
    return state


def test_report_pages_render_at_desktop_and_phone_width(release: Path, screenshots: Path, tmp_path: Path) -> None:
    overview, city = release / "report.html", release / "report" / "demo-city.html"
    for page_path in (overview, city):
        text = page_path.read_text(encoding="utf-8")
        # Offline by construction: no script, stylesheet or image is loaded from anywhere.
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?:", text), "a remote resource"
        assert "vegaEmbed" in text and "<script src=" in text and len(text) < 2_000_000
    with chromium_page(tmp_path / "profile") as page:
        for width in (1400, 390):
            state = open_and_check(page, overview, width, screenshots, "overview")
            assert state["charts"] >= 4, state  # coverage, score spread, cities side by side, roll-ups
            state = open_and_check(page, city, width, screenshots, "demo-city")
            assert state["charts"] >= 20, state  # bands, trends per indicator, district maps
            facts = page.evaluate("""(() => ({
                title: document.querySelector('h1').textContent,
                first: document.querySelector('nav.toc + section, nav.toc ~ section').id,
                toc: document.querySelectorAll('nav.toc a').length,
                sections: document.querySelectorAll('section.indicator').length,
                maps: document.querySelectorAll('div.chart[data-chart^="map-"] g.role-mark path').length,
                targets: document.querySelectorAll('div.chart[data-chart^="trend-"] g.mark-rule.role-mark line')
                    .length,
                better: document.querySelectorAll('td.yoy-better').length,
                worse: document.querySelectorAll('td.yoy-worse').length,
                files: [...document.querySelectorAll('#files a')].map(a => a.getAttribute('href')),
                arrows: document.querySelectorAll('#city-snapshot td.arrow').length}))()""")
            assert facts["title"] == "Demoville: city indicators 2022–2024", facts["title"]
            assert facts["first"] == "city-snapshot"
            assert facts["toc"] > 50 and facts["sections"] > 50, facts
            assert facts["maps"] >= 12, facts  # the 12 districts of the PM maps
            assert facts["targets"] >= 3, facts
            assert facts["better"] + facts["worse"] > 5, facts
            assert facts["arrows"] > 5, facts
            assert "../kpi_values.parquet" in facts["files"] and "../manifest.json" in facts["files"]
            assert "../u4ssc/demo-city-2024.xlsx" in facts["files"]
            assert not any("twin-city-" in f for f in facts["files"])
            missing = [f for f in facts["files"] if not (city.parent / f).exists()]
            assert missing == [], f"links to files that are not in the release: {missing}"
        # Print: navigation hidden, folded parts opened; the city's report prints as a PDF annex.
        page.call("Emulation.setEmulatedMedia", media="print")
        assert page.evaluate("getComputedStyle(document.querySelector('nav.toc')).display") == "none"
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        assert page.evaluate("[...document.querySelectorAll('details')].every(d => d.open)")
        pdf = page.call("Page.printToPDF", timeout=120.0, printBackground=True, paperWidth=8.27, paperHeight=11.69)
        annex = screenshots / "demo-city.pdf"
        annex.write_bytes(base64.b64decode(pdf["data"]))
        assert annex.read_bytes().startswith(b"%PDF") and annex.stat().st_size > 50_000
    print(f"\nreport screenshots: {screenshots}")
