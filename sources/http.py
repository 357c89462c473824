"""The HTTP client every networked source kind uses (httpx for transport, stamina for retries).

What it guarantees, so the kinds only describe a platform's paging:
- a timeout on every request; retries with exponential backoff and jitter on timeouts, connection
  errors, 5xx, 408, 202 ("still processing") and 429, honouring `Retry-After` (seconds or an
  HTTP date, capped by `http.retry_after_max`); bounded attempts and total retry time;
- the body is streamed to its landing file with a size limit (`http.max_bytes`) and hashed;
- the content type is checked: an HTML error page served with 200 where JSON is expected is an
  error, and so is any other type the format does not allow;
- conditional requests (If-None-Match / If-Modified-Since) from the previous snapshot's recorded
  response headers: a 304 reuses the previous snapshot's bytes for that URL;
- secrets come only from environment variables referenced as `${NAME}` in `http.headers`; they
  are sent only to the source's own origin (dropped on redirects elsewhere) and redacted from
  every log line, error message and recorded header (`***`).
Every failure is a FetchError naming the source and the URL.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import logging
import os
import shutil
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import stamina

from canonical.errors import TOO_DEEP, FetchError
from sources.config import SECRET_REF, HttpOptions
from sources.deadline import Deadline
from sources.deadline import install as install_deadline
from sources.landing import CHUNK, Page, Snapshot

log = logging.getLogger("citykpi.http")

REDACTED = "***"
# Response headers worth keeping with each page: validators for the next conditional request,
# and what the platforms say about freshness and counts.
RECORDED_HEADERS = ("content-type", "content-length", "content-encoding", "etag", "last-modified", "date",
                    "x-soda2-truth-last-modified", "x-soda2-data-out-of-date", "x-soda2-fields",
                    "x-soda2-types", "ngsild-results-count", "fiware-total-count", "content-range", "link",
                    "page-size", "next-page")
JSON_TYPES = ("application/json", "text/json", "application/geo+json", "application/vnd.geo+json",
              "application/ld+json", "text/plain")  # text/plain: some portals; the body is parsed anyway
FORMAT_TYPES: dict[str, tuple[str, ...]] = {
    "json": JSON_TYPES,
    "geojson": JSON_TYPES,
    "ngsi-ld": JSON_TYPES,
    "csv": ("text/csv", "text/plain", "application/csv", "text/comma-separated-values", "application/vnd.ms-excel",
            "application/octet-stream", "binary/octet-stream"),
    "excel": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/vnd.ms-excel",
              "application/zip", "application/octet-stream", "binary/octet-stream"),
    "parquet": ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet",
                "application/octet-stream", "binary/octet-stream"),
    "xml": ("application/xml", "text/xml", "application/vnd.sdmx.structurespecificdata+xml",
            "application/vnd.sdmx.genericdata+xml", "application/octet-stream"),
    "gtfs": ("application/zip", "application/x-zip-compressed", "application/x-zip", "application/octet-stream",
             "binary/octet-stream"),
}
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class Expect:
    """What a response must be: its label in messages, allowed content types, whether it is JSON."""

    label: str
    content_types: tuple[str, ...]
    is_json: bool

    @classmethod
    def for_format(cls, fmt: str, override: Iterable[str] | None = None) -> Expect:
        types = tuple(t.lower() for t in override) if override else FORMAT_TYPES.get(fmt, ())
        return cls(fmt.upper() if fmt != "excel" else "Excel", types, fmt in ("json", "geojson", "ngsi-ld"))


JSON = Expect.for_format("json")


class Redactor:
    """Replaces every secret with *** in any text, in every form it may take there: raw, as Python
    and JSON escape it (repr, meta.json), URL-encoded, base64 (a Basic auth header), and, for a
    secret that is itself base64 of `user:password`, the decoded pair and the password alone."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants = {v for s in secrets if s for v in _variants(s) if len(v) >= 4 or v == s}
        self._secrets = sorted(variants, key=len, reverse=True)  # longest first: no partial leftovers

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def data(self, value: Any) -> Any:
        """A JSON-able structure with every string redacted (what goes into meta.json)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _variants(secret: str) -> set[str]:
    forms = {secret}
    try:
        decoded = base64.b64decode(secret, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if ":" in decoded and decoded.isprintable():  # the secret is a Basic credential: user:password
        forms |= {decoded, decoded.split(":", 1)[1]}
    for form in list(forms):
        forms |= {repr(form)[1:-1], json.dumps(form)[1:-1], urllib.parse.quote(form, safe=""),
                  urllib.parse.quote_plus(form), base64.b64encode(form.encode()).decode()}
    return {f for f in forms if f}


def check_secret(source_id: str, name: str, value: str) -> None:
    """An environment secret must be one line of printable ASCII (what an HTTP header can carry).

    The message never shows the value: a stray newline from `echo $TOKEN > file` or a pasted
    non-ASCII character is named by position only."""
    for index, char in enumerate(value):
        if ord(char) < 0x20 or ord(char) == 0x7F:
            last = index == len(value) - 1
            where = "ends with" if last else f"has at position {index + 1}"
            hint = "; a trailing newline?" if last and char in "\r\n" else ""
            raise FetchError(f"source {source_id!r}: environment variable {name} {where} a control character "
                             f"(U+{ord(char):04X}{hint}); remove it (values are sent as one header line)")
        if ord(char) > 0x7E:
            raise FetchError(f"source {source_id!r}: environment variable {name} has a non-ASCII character at "
                             f"position {index + 1} (U+{ord(char):04X}); HTTP headers carry ASCII only")


@dataclass(frozen=True)
class Credentials:
    headers: dict[str, str]          # what is sent
    recorded: dict[str, str]         # what may be written down: secret-bearing values are ***
    secret_headers: frozenset[str]   # lower-case names of headers carrying a secret
    redact: Redactor


def resolve_headers(source_id: str, headers: Mapping[str, str],
                    environ: Mapping[str, str] | None = None) -> Credentials:
    """Fill `${NAME}` references from the environment. A missing variable is a FetchError."""
    env = os.environ if environ is None else environ
    sent: dict[str, str] = {}
    recorded: dict[str, str] = {}
    secret_names: set[str] = set()
    secrets: list[str] = []

    def value_of(match: Any) -> str:
        name = match.group(1)
        if not env.get(name):
            raise FetchError(f"source {source_id!r}: environment variable {name} is not set "
                             f"(referenced in http.headers)")
        check_secret(source_id, name, env[name])
        secrets.append(env[name])
        return env[name]

    for name, template in headers.items():
        sent[name] = SECRET_REF.sub(value_of, template)
        if SECRET_REF.search(template):
            secret_names.add(name.lower())
            recorded[name] = REDACTED
        else:
            recorded[name] = template
    return Credentials(sent, recorded, frozenset(secret_names), Redactor(secrets))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


class _Retryable(Exception):
    """A failure worth another try; carries the server's Retry-After when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class Fetched:
    """One successful response: landed in `path` (or held in `content`), hashed, maybe parsed."""

    url: str
    status: int
    headers: dict[str, str]
    sha256: str
    size: int
    path: Path | None = None
    content: bytes | None = None
    reused_from: str | None = None
    data: Any = field(default=None, repr=False)  # the parsed JSON when JSON was expected

    def page(self) -> Page:
        assert self.path is not None
        return Page(file=self.path.name, url=self.url, status=self.status, headers=self.headers,
                    sha256=self.sha256, bytes=self.size, reused_from=self.reused_from)


@dataclass(frozen=True)
class _Previous:
    snapshot_id: str
    path: Path
    headers: dict[str, str]


class HttpClient:
    """GET with retries, limits, content checks and conditional requests, for one source."""

    def __init__(self, source_id: str, options: HttpOptions | None, *, home_url: str,
                 previous: Snapshot | None = None, transport: httpx.BaseTransport | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.source_id = source_id
        self.options = options or HttpOptions()
        self.credentials = resolve_headers(source_id, self.options.headers)
        # Platform headers a kind always sends (Accept, Link, Fiware-Service): never secrets.
        self.fixed_headers = dict(headers or {})
        self.redact = self.credentials.redact
        self._home = origin(home_url)
        self._previous = _previous_pages(previous)
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.options.timeout), follow_redirects=True, max_redirects=10,
            headers={"User-Agent": "citykpi (open city data to KPIs)"}, transport=transport,
            event_hooks={"request": [self._keep_secrets_home]})
        self._deadline = Deadline()
        install_deadline(self._client, self._deadline)
        self._source_ends = time.monotonic() + self.options.source_deadline

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        """The full URL as requested and recorded (parameters encoded, secrets redacted)."""
        full = httpx.URL(url, params=_clean_params(params)) if params else httpx.URL(url)
        return self.redact(str(full))

    def error(self, url: str, message: str) -> FetchError:
        return FetchError(self.redact(f"source {self.source_id!r}: GET {url}: {message}"))

    def get(self, url: str, params: Mapping[str, Any] | None = None, *, expect: Expect = JSON,
            dest: Path | None = None) -> Fetched:
        """Fetch `url` into `dest` (a landing file; conditional on the previous snapshot) or memory."""
        full = httpx.URL(url, params=_clean_params(params)) if params else httpx.URL(url)
        shown = self.redact(str(full))
        previous = self._previous.get(shown) if dest is not None else None
        options = self.options
        tries = 0
        try:
            for attempt in stamina.retry_context(
                    on=self._backoff, attempts=options.attempts, timeout=options.retry_total,
                    wait_initial=options.retry_wait_initial, wait_max=options.retry_wait_max,
                    wait_jitter=options.retry_jitter):
                with attempt:
                    tries += 1
                    return self._attempt(full, shown, expect, dest, previous, tries)
        except _Retryable as exc:
            raise self.error(shown, f"{exc.reason}; gave up after {tries} attempt(s)") from None
        raise AssertionError("unreachable: stamina either returns or raises")

    # ---- one attempt ------------------------------------------------------------------------

    def _attempt(self, full: httpx.URL, shown: str, expect: Expect, dest: Path | None,
                 previous: _Previous | None, tries: int) -> Fetched:
        headers = {**self.fixed_headers, **self.credentials.headers}
        now = time.monotonic()
        if now >= self._source_ends:
            raise self.error(shown, f"fetching this source took longer than http.source_deadline "
                                    f"({self.options.source_deadline:g} s); stopping")
        self._deadline.at = min(now + self.options.deadline, self._source_ends)
        if previous is not None:
            if "etag" in previous.headers:
                headers["If-None-Match"] = previous.headers["etag"]
            if "last-modified" in previous.headers:
                headers["If-Modified-Since"] = previous.headers["last-modified"]
        try:
            with self._client.stream("GET", full, headers=headers) as response:
                fetched = self._handle(response, shown, expect, dest, previous, tries)
        except httpx.TimeoutException as exc:
            if time.monotonic() >= self._source_ends:
                raise self.error(shown, f"fetching this source took longer than http.source_deadline "
                                        f"({self.options.source_deadline:g} s); stopping") from None
            if time.monotonic() >= self._deadline.at:
                raise self._retry(shown, f"the request took longer than http.deadline ({self.options.deadline:g} s; "
                                         "the server sends too slowly)", tries) from None
            raise self._retry(shown, f"timed out after {self.options.timeout:g} s ({type(exc).__name__})",
                              tries) from None
        except httpx.TransportError as exc:
            raise self._retry(shown, f"connection failed ({type(exc).__name__}: {exc})", tries) from None
        except httpx.HTTPError as exc:  # too many redirects, undecodable content-encoding, ...
            raise self.error(shown, f"{type(exc).__name__}: {exc}") from None
        finally:
            self._deadline.at = None
        log.info("source %r: GET %s -> %s (%s bytes%s)", self.source_id, shown, fetched.status, fetched.size,
                 ", unchanged" if fetched.reused_from else "")
        if expect.is_json and fetched.data is None:
            fetched.data = self._parse_json(fetched, shown)
        return fetched

    def _handle(self, response: httpx.Response, shown: str, expect: Expect, dest: Path | None,
                previous: _Previous | None, tries: int) -> Fetched:
        status = response.status_code
        if status == 304:
            if previous is None:
                raise self.error(shown, "HTTP 304 Not Modified to a request that was not conditional")
            assert dest is not None
            return self._revalidated(response, shown, dest, previous)
        if status in (202, 408, 429) or status >= 500:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            raise self._retry(shown, f"HTTP {status} {response.reason_phrase}".rstrip()
                              + (f" (Retry-After {response.headers['retry-after']})" if wait is not None else ""),
                              tries, wait)
        if not 200 <= status < 300 or status == 204:
            raise self.error(shown, f"HTTP {status} {response.reason_phrase}: {self._snippet(response)}")
        self._check_type(response, shown, expect)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.options.max_bytes:
            raise self.error(shown, f"response of {int(length):,} bytes exceeds http.max_bytes "
                                    f"({self.options.max_bytes:,})")
        digest, size, content = self._receive(response, shown, dest)
        if size == 0:
            raise self.error(shown, f"empty response body (HTTP {status}) where {expect.label} was expected")
        head = content[:512] if content is not None else _head(dest)
        mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
        # Sniffed when the type is missing or says nothing (text/plain, octet-stream).
        if mime in ("", "text/plain", "application/octet-stream", "binary/octet-stream") and _looks_like_html(head):
            raise self.error(shown, f"served an HTML page (HTTP {status}) where {expect.label} was expected")
        return Fetched(url=shown, status=status, headers=self._recorded(response), sha256=digest, size=size,
                       path=dest, content=content)

    def _receive(self, response: httpx.Response, shown: str, dest: Path | None) -> tuple[str, int, bytes | None]:
        """Stream the (decoded) body into `dest` or memory, hashing and enforcing the size limit."""
        digest = hashlib.sha256()
        size = 0
        chunks: list[bytes] = []
        handle = dest.open("wb") if dest is not None else None
        try:
            for chunk in response.iter_bytes(CHUNK):
                size += len(chunk)
                if size > self.options.max_bytes:
                    raise self.error(shown, f"response exceeds http.max_bytes ({self.options.max_bytes:,} bytes)")
                digest.update(chunk)
                if handle is not None:
                    handle.write(chunk)
                else:
                    chunks.append(chunk)
        finally:
            if handle is not None:
                handle.close()
        # A failed attempt leaves a partial file; the next attempt reopens it with "wb", and a failed
        # fetch discards the whole staging folder.
        return digest.hexdigest(), size, None if handle is not None else b"".join(chunks)

    def _revalidated(self, response: httpx.Response, shown: str, dest: Path, previous: _Previous) -> Fetched:
        """304: the previous snapshot's bytes for this URL are still current; reuse them."""
        shutil.copyfile(previous.path, dest)
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        headers = {**previous.headers, **self._recorded(response)}
        for volatile in ("content-length", "content-encoding"):  # a 304 carries no body
            if volatile in previous.headers:
                headers[volatile] = previous.headers[volatile]
        return Fetched(url=shown, status=304, headers=headers, sha256=digest, size=dest.stat().st_size,
                       path=dest, reused_from=previous.snapshot_id)

    def _check_type(self, response: httpx.Response, shown: str, expect: Expect) -> None:
        raw = response.headers.get("content-type")
        if raw is None:
            return  # sniffed after the body arrives
        mime = raw.split(";")[0].strip().lower()
        if mime in HTML_TYPES:
            raise self.error(shown, f"served an HTML page (HTTP {response.status_code}, {mime}) where "
                                    f"{expect.label} was expected: {self._snippet(response)}")
        json_like = expect.is_json and mime.endswith("+json")
        if expect.content_types and mime not in expect.content_types and not json_like:
            raise self.error(shown, f"unexpected content type {mime!r} where {expect.label} was expected "
                                    f"(allowed: {', '.join(expect.content_types)}; set http.content_types "
                                    "if the portal labels it differently)")

    def _parse_json(self, fetched: Fetched, shown: str) -> Any:
        if fetched.content is not None:
            body = fetched.content
        else:
            assert fetched.path is not None
            body = fetched.path.read_bytes()
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise self.error(shown, f"response is not UTF-8 JSON: {exc}") from None
        try:
            return json.loads(text)
        except RecursionError:
            raise self.error(shown, f"JSON {TOO_DEEP}") from None
        except json.JSONDecodeError as exc:
            hint = " (truncated?)" if not text.rstrip().endswith(("]", "}")) else ""
            raise self.error(shown, f"invalid JSON{hint}: {exc.msg} at line {exc.lineno} column {exc.colno} "
                                    f"({fetched.size:,} bytes received)") from None

    # ---- helpers ----------------------------------------------------------------------------

    def _retry(self, shown: str, reason: str, tries: int, retry_after: float | None = None) -> _Retryable:
        log.warning("source %r: GET %s: %s (attempt %d of %d)", self.source_id, shown, self.redact(reason), tries,
                    self.options.attempts)
        return _Retryable(self.redact(reason), retry_after)

    def _backoff(self, exc: BaseException) -> bool | float:
        """stamina's hook: retry only _Retryable; a server's Retry-After (capped) replaces the backoff."""
        if not isinstance(exc, _Retryable):
            return False
        if exc.retry_after is not None:
            return min(exc.retry_after, self.options.retry_after_max)
        return True

    def _recorded(self, response: httpx.Response) -> dict[str, str]:
        return {name: self.redact(response.headers[name]) for name in RECORDED_HEADERS if name in response.headers}

    def _snippet(self, response: httpx.Response) -> str:
        """The start of an error body, one line, for the message (bodies of errors are small)."""
        try:
            text = b"".join(_limited(response.iter_bytes(), 2048)).decode("utf-8", "replace")
        except httpx.HTTPError:
            return "(body unreadable)"
        text = " ".join(text.split())
        return self.redact(text[:300] + ("..." if len(text) > 300 else "")) or "(empty body)"

    def _keep_secrets_home(self, request: httpx.Request) -> None:
        """Never send a secret header to another origin (a redirect to a CDN, a foreign next link)."""
        if origin(request.url) != self._home:
            for name in self.credentials.secret_headers:
                request.headers.pop(name, None)


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _limited(chunks: Iterable[bytes], limit: int) -> Iterable[bytes]:
    taken = 0
    for chunk in chunks:
        yield chunk[: limit - taken]
        taken += len(chunk)
        if taken >= limit:
            return


def _head(path: Path | None) -> bytes:
    if path is None:
        return b""
    with path.open("rb") as handle:
        return handle.read(512)


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip().lower()
    if start.startswith(b"<?xml"):  # XHTML error pages (Overpass) start with an XML declaration
        return b"<!doctype html" in start or b"<html" in start
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _previous_pages(snapshot: Snapshot | None) -> dict[str, _Previous]:
    """The previous snapshot's pages by URL, with the validators recorded for each."""
    if snapshot is None:
        return {}
    meta_path = snapshot.path.parent / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    out: dict[str, _Previous] = {}
    for page in meta.get("pages", []):
        headers = {k.lower(): v for k, v in page.get("headers", {}).items()}
        if page.get("url") and ("etag" in headers or "last-modified" in headers):
            out[page["url"]] = _Previous(snapshot.snapshot_id, snapshot.path.parent / page["file"], headers)
    return out


class PageGuard:
    """Bounds a paged fetch: at most `max_pages`, and no URL twice (a `next` link that loops)."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        self.seen: set[str] = set()

    def check(self, url: str) -> None:
        key = _canonical(url)
        if key in self.seen:
            raise self.client.error(url, f"paging loop: this page was already fetched "
                                         f"(after {len(self.seen)} page(s)); the server's next link repeats")
        if len(self.seen) >= self.client.options.max_pages:
            raise self.client.error(url, f"more than http.max_pages ({self.client.options.max_pages}) pages; "
                                         "stopping (raise http.max_pages if the source really is that large)")
        self.seen.add(key)


def _canonical(url: str) -> str:
    """The same page however its query parameters are ordered."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", query, ""))
