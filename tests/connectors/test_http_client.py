"""sources.http pieces on their own: Retry-After, backoff caps, redaction, header resolution, file names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import FetchError
from connectors.replay import FAST_HTTP
from sources.config import HttpOptions
from sources.http import Expect, HttpClient, PageGuard, Redactor, _Retryable, resolve_headers, retry_after_seconds
from sources.kinds._session import file_name

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
    (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0), ("soon", None), ("", None), (None, None),
])
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_backoff_honours_retry_after_up_to_the_cap() -> None:
    client = HttpClient("s", HttpOptions(retry_after_max=5), home_url="https://example.org")
    try:
        assert client._backoff(_Retryable("HTTP 429", retry_after=2)) == 2
        assert client._backoff(_Retryable("HTTP 429", retry_after=3600)) == 5
        assert client._backoff(_Retryable("HTTP 500")) is True  # stamina's exponential backoff with jitter
        assert client._backoff(ValueError("a bug")) is False
    finally:
        client.close()


def test_redactor_removes_plain_and_url_encoded_secrets() -> None:
    redact = Redactor(["a b/c"])
    assert redact("x a b/c y a%20b%2Fc z a+b%2Fc") == "x *** y *** z ***"
    assert Redactor([])("nothing to hide") == "nothing to hide"


def test_resolve_headers_records_secret_headers_as_stars() -> None:
    creds = resolve_headers("s", {"Authorization": "Apikey ${KEY}", "Accept": "text/csv"}, environ={"KEY": "k1"})
    assert creds.headers == {"Authorization": "Apikey k1", "Accept": "text/csv"}
    assert creds.recorded == {"Authorization": "***", "Accept": "text/csv"}
    assert creds.secret_headers == {"authorization"}
    assert creds.redact("Apikey k1") == "Apikey ***"
    with pytest.raises(FetchError, match="source 's': environment variable KEY is not set"):
        resolve_headers("s", {"Authorization": "${KEY}"}, environ={})


def test_page_guard_sees_the_same_page_in_any_parameter_order() -> None:
    client = HttpClient("s", HttpOptions(max_pages=10), home_url="https://example.org")
    guard = PageGuard(client)
    guard.check("https://example.org/a?x=1&y=2")
    with pytest.raises(FetchError, match=r"source 's': GET https://example.org/a\?y=2&x=1: paging loop"):
        guard.check("https://example.org/a?y=2&x=1")
    client.close()


def test_expect_for_format_allows_the_usual_types() -> None:
    assert "application/zip" in Expect.for_format("gtfs").content_types
    assert Expect.for_format("json").is_json and not Expect.for_format("csv").is_json
    assert Expect.for_format("csv", ["application/x-download"]).content_types == ("application/x-download",)


@pytest.mark.parametrize(("url", "fmt", "name"), [
    ("https://x.org/data/gtfs.zip", "gtfs", "gtfs.zip"),
    ("https://x.org/download/", "csv", "download.csv"),
    ("https://x.org/", "geojson", "payload.geojson"),
    ("https://x.org/a/..%2F..%2Fetc%2Fpasswd", "csv", "etc_passwd.csv"),
    ("https://x.org/meta.json", "json", "payload.json"),
    ("https://x.org/.hidden", "csv", "hidden.csv"),
])
def test_download_file_names_are_safe(url: str, fmt: str, name: str) -> None:
    assert file_name(url, fmt) == name


def test_in_memory_metadata_requests_are_parsed(server: HTTPServer) -> None:
    server.expect_request("/meta").respond_with_json({"ok": True})
    client = HttpClient("s", HttpOptions(**FAST_HTTP), home_url=server.url_for("/"))
    try:
        fetched = client.get(server.url_for("/meta"))
        assert fetched.data == {"ok": True} and fetched.path is None and fetched.content is not None
    finally:
        client.close()


def test_a_304_to_an_unconditional_request_is_an_error(server: HTTPServer, tmp_path: Path) -> None:
    server.expect_request("/x").respond_with_data(b"", status=304)
    client = HttpClient("s", HttpOptions(**FAST_HTTP), home_url=server.url_for("/"))
    try:
        with pytest.raises(FetchError, match=r"GET http://127.0.0.1:\d+/x: HTTP 304 .* not conditional"):
            client.get(server.url_for("/x"), dest=tmp_path / "x.json")
    finally:
        client.close()
