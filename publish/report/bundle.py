"""The Vega, Vega-Lite and vega-embed JavaScript, written once per release as `report/vega.js`.

Every page of the report loads that one file with a relative `<script src>`, so the report opens
offline (a city officer's laptop, an archive) and a release with many city pages holds the
JavaScript once, not once per page. The bundle comes from `vl-convert-python` (the bundle Altair's
own `inline=True` uses); nothing is fetched from a CDN.

Bundling takes about a second, so it is kept in `<home>/cache/` keyed by the vl-convert and
Vega-Lite versions, and `prefetch_bundle` lets the release start it early.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from functools import cache
from pathlib import Path

_bundle_lock = threading.Lock()


def _bundle_key() -> tuple[str, str]:
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    return str(getattr(vl_convert, "__version__", "unknown")), vl_version_for_vl_convert()


@cache
def _bundle_from(cache_dir: Path | None) -> str:
    import vl_convert

    vlc_version, vl_version = _bundle_key()
    cached = cache_dir / f"vega-embed-vlc{vlc_version}-vl{vl_version}.js" if cache_dir else None
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle(vl_version=vl_version)  # type: ignore[call-arg]  # snippet is optional
    if cached is not None:
        # Write-then-rename: a run killed mid-write leaves no truncated bundle for the next one.
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".vega-", suffix=".js")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(bundle)
        os.replace(tmp, cached)
    return bundle


def vega_bundle(cache_dir: Path | None = None) -> str:
    """The Vega + Vega-Lite + vega-embed JavaScript (globals vega, vegaLite, vegaEmbed)."""
    with _bundle_lock:
        return _bundle_from(cache_dir)


def prefetch_bundle(cache_dir: Path | None) -> threading.Thread:
    """Start building the bundle in the background (vl-convert releases the GIL while it bundles)."""
    def warm() -> None:
        # A failure here is raised again by the report's own call, where the run reports it.
        with contextlib.suppress(Exception):
            vega_bundle(cache_dir)

    thread = threading.Thread(target=warm, name="vega-bundle", daemon=True)
    thread.start()
    return thread
