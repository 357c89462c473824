"""Secrets: only from environment variables named in the config, sent only to the source's origin,
and never in meta.json, snapshot records, log lines (any logger, any level) or error messages."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from canonical.errors import ConfigError, FetchError
from connectors.replay import FAST_HTTP, Handler, Scripted, fetch, make_city, socrata_rows
from sources.config import LoadedConfig

TOKEN = "s3cr3t/App+Token=value"  # characters that change when URL-encoded, to catch encoded leaks
DATASET = "abcd-1234"
PATH = f"/resource/{DATASET}.json"
ROWS = [{"year": 2019, "value": 1}, {"year": 2020, "value": 2}]


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)
    yield TOKEN


def city(tmp_path: Path, server: HTTPServer) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "rows", "kind": "socrata", "target": "observations",
        "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET},
        "http": {**FAST_HTTP, "headers": {"X-App-Token": "${SOCRATA_APP_TOKEN}", "Accept": "application/json"}},
        "observations": {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}},
    }])


def needs_token(handler: Handler) -> Handler:
    def handle(request: Request) -> Response:
        if request.headers.get("X-App-Token") != TOKEN:
            return Response(b'{"message":"missing token","error":true}', status=403, content_type="application/json")
        return handler(request)

    return handle


def all_text(home: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in home.rglob("*") if p.is_file())


def test_token_is_sent_but_never_recorded_or_logged(tmp_path: Path, server: HTTPServer, home: Path, token: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore, stamina
    server.expect_request(PATH).respond_with_handler(Scripted(
        lambda r: Response("busy", status=503), needs_token(socrata_rows(ROWS))))
    snapshot = fetch(city(tmp_path, server), home)
    assert all(req.headers.get("X-App-Token") == token for req, _ in server.log)
    meta = json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["request"]["headers"] == {"X-App-Token": "***", "Accept": "application/json"}
    assert snapshot.request["headers"]["X-App-Token"] == "***"
    for encoded in (token, "s3cr3t%2FApp%2BToken%3Dvalue", "s3cr3t"):
        assert encoded not in all_text(home)
        assert encoded not in caplog.text
        assert encoded not in json.dumps(snapshot.record())
    assert "stamina.retry_scheduled" in caplog.text or "attempt 1 of 3" in caplog.text


def test_a_server_echoing_the_token_is_redacted_from_the_error(tmp_path: Path, server: HTTPServer, home: Path,
                                                               token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.expect_request(PATH).respond_with_data(
        f'{{"message": "token {token} is not valid for this domain", "error": true}}', status=403,
        content_type="application/json")
    with pytest.raises(FetchError) as info:
        fetch(city(tmp_path, server), home)
    message = str(info.value)
    assert "source 'rows': GET http://127.0.0.1" in message and "HTTP 403" in message
    assert "token *** is not valid" in message
    assert token not in message and token not in caplog.text


def test_a_missing_environment_variable_names_it(tmp_path: Path, server: HTTPServer, home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCRATA_APP_TOKEN", raising=False)
    with pytest.raises(FetchError, match=r"source 'rows': environment variable SOCRATA_APP_TOKEN is not set"):
        fetch(city(tmp_path, server), home)
    assert not (home / "raw").exists()  # nothing staged before the configuration was usable


def test_the_token_is_not_sent_to_another_origin(tmp_path: Path, server: HTTPServer, home: Path,
                                                 token: str) -> None:
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request(PATH).respond_with_handler(socrata_rows(ROWS))
        server.expect_request(PATH).respond_with_handler(
            lambda r: Response(status=302, headers={"Location": other.url_for(PATH) + "?" + r.query_string.decode()}))
        snapshot = fetch(city(tmp_path, server), home)
        assert snapshot.new
        assert server.log[0][0].headers.get("X-App-Token") == token
        assert other.log and all("X-App-Token" not in req.headers for req, _ in other.log)
        assert all(req.headers.get("Accept") == "application/json" for req, _ in other.log)
    finally:
        other.clear()
        other.stop()


@pytest.mark.parametrize(("headers", "message"), [
    ({"X-App-Token": "literal-token"}, "carries a credential: put it in an environment variable"),
    ({"Authorization": "Apikey abc"}, "carries a credential"),
    ({"X-App-Token": "${not valid}"}, r"write an environment reference as \$\{NAME\}"),
])
def test_credentials_in_the_config_are_rejected(tmp_path: Path, headers: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.http\.headers: .*" + message):
        make_city(tmp_path / "city", [{
            "id": "rows", "kind": "socrata", "target": "observations",
            "socrata": {"domain": "data.example.org", "dataset": DATASET}, "http": {"headers": headers},
            "observations": {"year_field": "year", "variables": {"value": {"variable": "population",
                                                                          "unit": "person"}}},
        }])


def test_a_secret_in_a_url_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"a location never holds a secret"):
        make_city(tmp_path / "city", [{
            "id": "f", "kind": "http", "target": "transit_feed", "format": "gtfs",
            "location": "https://example.org/gtfs.zip?key=${GTFS_KEY}"}])


@pytest.mark.parametrize(("value", "message"), [
    (TOKEN + "\n", r"environment variable SOCRATA_APP_TOKEN ends with a control character \(U\+000A; a trailing "
                   r"newline\?\)"),
    ("ab\rcd", r"environment variable SOCRATA_APP_TOKEN has at position 3 a control character \(U\+000D"),
    ("tökén", r"environment variable SOCRATA_APP_TOKEN has a non-ASCII character at position 2 \(U\+00F6\); "
              r"HTTP headers carry ASCII"),
], ids=["trailing-newline", "carriage-return", "non-ascii"])
def test_an_unusable_secret_is_refused_without_showing_it(tmp_path: Path, server: HTTPServer, home: Path,
                                                          monkeypatch: pytest.MonkeyPatch, value: str,
                                                          message: str) -> None:
    monkeypatch.setenv("SOCRATA_APP_TOKEN", value)
    with pytest.raises(FetchError, match=r"source 'rows': " + message) as info:
        fetch(city(tmp_path, server), home)
    assert value.strip() not in str(info.value)
    assert not server.log  # refused before any request
    assert not (home / "raw").exists()


def test_every_form_of_a_secret_is_redacted() -> None:
    from base64 import b64encode
    from urllib.parse import quote, quote_plus

    from sources.http import Redactor

    secret = "us'er:pa ss/w+rd\\x"
    basic = b64encode(b"alice:hunter2-pw").decode()
    redact = Redactor([secret, basic])
    for form in (secret, repr(secret), json.dumps(secret), quote(secret, safe=""), quote_plus(secret),
                 b64encode(secret.encode()).decode(), f"Basic {basic}", "alice:hunter2-pw", "hunter2-pw"):
        assert "***" in redact(f"<{form}>"), form
        for part in ("pa ss", "hunter2", basic):
            assert part not in redact(f"<{form}>"), form
    assert redact.data({"url": f"https://x/?t={quote(secret, safe='')}", "h": [basic]}) == \
        {"url": "https://x/?t=***", "h": ["***"]}


@pytest.mark.parametrize("location", [
    "https://user:pa55@example.org/data.csv", "https://example.org/data.csv?api_key=abc",
    "https://example.org/data.csv?format=csv&token=abc", "https://example.org/data.csv?access_token=abc",
    "https://example.org/data.csv?KEY=abc", "https://example.org/data.csv?$$app_token=abc",
])
def test_a_literal_credential_in_a_url_is_refused(tmp_path: Path, location: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]: .*the location holds (a user name or password|the "
                                          r"credential parameter).*credentials never go in the config"):
        make_city(tmp_path / "city", [{"id": "f", "kind": "http", "target": "transit_feed", "format": "gtfs",
                                        "location": location}])


def test_a_literal_credential_in_an_api_base_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"the 'ckan' block's URL holds a user name or password"):
        make_city(tmp_path / "city", [{
            "id": "c", "kind": "ckan", "target": "observations",
            "ckan": {"base_url": "https://admin:pw@data.example.org", "package": "p", "resource": "r"},
            "observations": {"year_field": "year", "variables": {"v": {"variable": "population", "unit": "person"}}}}])


def test_meta_json_holds_no_secret_even_when_the_server_echoes_it(tmp_path: Path, server: HTTPServer, home: Path,
                                                                  token: str) -> None:
    """A token echoed in recorded response headers (ETag, Link) and in the next-page URL is written as ***;
    the body is kept byte for byte (docs/connectors.md says what the landing zone may hold)."""
    body = json.dumps([{"year": 2019, "value": 1, "echo": token}])

    def handle(request: Request) -> Response:
        return Response(body, content_type="application/json",
                        headers={"ETag": f'"{token}"', "Link": f"<{server.url_for(PATH)}?t={token}>; rel=next"})

    server.expect_request(PATH).respond_with_handler(handle)
    snapshot = fetch(city(tmp_path, server), home)
    meta_text = (snapshot.path.parent / "meta.json").read_text(encoding="utf-8")
    for form in (token, json.dumps(token)[1:-1], "s3cr3t%2FApp%2BToken%3Dvalue"):
        assert form not in meta_text
    assert '"***"' in meta_text
    assert token in snapshot.path.read_text(encoding="utf-8")  # exact bytes in the landing zone
