"""The release's HTML report in a real browser: headless Chromium opens it from disk, offline.

Chromium is driven over the DevTools protocol (a websocket on 127.0.0.1), which tells console
errors and uncaught exceptions apart from ordinary log lines. The test fails on any of them, on
a chart that did not render to SVG, and on any request that leaves the file (the report must
work offline). It leaves a screenshot next to the test's temporary files (its path is printed).

Needs Debian's `chromium` (/usr/bin/chromium); skipped with a reason when it is not installed.
"""

from __future__ import annotations

import base64
import json
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
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                                                          "(Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]
RENDER_TIMEOUT = 30.0


class DevTools:
    """A minimal DevTools protocol client over one flattened page session."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, timeout: float = 15.0, **params: Any) -> dict[str, Any]:
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
                             "--remote-debugging-address=127.0.0.1", "--window-size=1200,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if match := re.search(r"DevTools listening on (ws://\S+)", line):
                url = match.group(1)
        assert url, "Chromium did not print its DevTools address"
        with connect(url, max_size=64 * 1024 * 1024, open_timeout=10) as ws:
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
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a two-city release that has a previous release: every section has a chart."""
    from test_publish_multicity import two_city_home

    from pipelines.steps import publish
    from sources.config import load_city_config
    from warehouse.home import Home
    from warehouse.releases import load_release

    home = Home(tmp_path_factory.mktemp("report") / "home")
    shutil.copytree(two_city_home(tmp_path_factory.getbasetemp()).root, home.root, symlinks=True)
    cities = load_release(home, "latest").manifest["cities"]
    release = publish(home, [load_city_config(Path(c["config"])) for c in cities], "report-test")
    assert release.manifest["previous_release"]
    return release.path / "report.html"


def test_report_renders_in_headless_chromium_without_errors(report: Path, tmp_path: Path) -> None:
    text = report.read_text(encoding="utf-8")
    # Offline by construction: no script, stylesheet or image is loaded from anywhere.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?:", text), "report loads a remote resource"

    with chromium_page(tmp_path / "profile") as page:
        page.call("Page.navigate", url=report.as_uri())
        charts = 0
        deadline = time.monotonic() + RENDER_TIMEOUT
        while time.monotonic() < deadline:
            page.pump(0.3)
            state = page.evaluate("""(() => {
                const divs = [...document.querySelectorAll('div.chart')];
                return {charts: divs.length, svgs: divs.filter(d => d.querySelector('svg.marks')).length,
                        ready: document.readyState};
            })()""")
            charts = state["charts"]
            if state["ready"] == "complete" and charts and state["svgs"] == charts:
                break
        assert charts >= 5, f"expected coverage, cities, two SDG and the change charts, found {charts}"
        assert state["svgs"] == charts, f"only {state['svgs']} of {charts} charts rendered: {page.problems()}"
        marks = page.evaluate("document.querySelectorAll('div.chart svg.marks path, div.chart svg.marks rect, "
                              "div.chart svg.marks circle').length")
        assert marks > 50, f"charts rendered almost nothing ({marks} marks)"
        # The City Snapshot (issue #9): one block per city with its band chart, then the comparison.
        snapshot = page.evaluate("""(() => {
            const section = document.getElementById('city-snapshot');
            if (!section) return null;
            const cell = section.querySelector('td.band');
            return {cities: [...section.querySelectorAll('div.city-snapshot')].map(d => d.dataset.city),
                    charts: section.querySelectorAll('div.chart').length,
                    svgs: section.querySelectorAll('div.chart svg.marks').length,
                    comparison: !!section.querySelector('#snapshot-comparison svg.marks'),
                    disclaimer: section.querySelector('.disclaimer').textContent,
                    bandCells: section.querySelectorAll('td.band').length,
                    arrows: section.querySelectorAll('td.arrow').length,
                    fill: cell ? getComputedStyle(cell).backgroundColor : null};
        })()""")
        assert snapshot is not None, "no City Snapshot section"
        assert snapshot["cities"] == ["demo-city", "twin-city"]
        assert snapshot["charts"] == snapshot["svgs"] == 3, snapshot  # bands per city + the comparison
        assert snapshot["comparison"]
        assert "NOT the official U4SSC benchmark" in snapshot["disclaimer"]
        assert snapshot["bandCells"] > 20 and snapshot["arrows"] > 10, snapshot
        assert snapshot["fill"] and snapshot["fill"] != "rgba(0, 0, 0, 0)"
        page.pump(0.5)
        assert page.problems() == []
        remote = [u for u in page.requests() if not u.startswith(("file:", "data:", "about:"))]
        assert remote == [], f"the report fetched {remote}"
        height = page.evaluate("document.documentElement.scrollHeight")
        page.call("Emulation.setDeviceMetricsOverride", width=1200, height=min(int(height), 4000),
                  deviceScaleFactor=1, mobile=False)
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        box = page.evaluate("(() => { const r = document.getElementById('city-snapshot').getBoundingClientRect(); "
                            "return [r.y + window.scrollY, r.height]; })()")
        section = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": box[0], "width": 1200, "height": min(box[1], 4000), "scale": 1})
    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    assert png.stat().st_size > 20_000
    snapshot_png = tmp_path / "city_snapshot.png"
    snapshot_png.write_bytes(base64.b64decode(section["data"]))
    assert snapshot_png.stat().st_size > 20_000
    print(f"\nreport screenshot: {png} ({charts} charts); City Snapshot: {snapshot_png}")
