"""Writes the bundled replay payloads beside this file: small, invented, deterministic.

Each file mirrors the shape of the real recording of the same name in ../shared/fixtures/payloads
(field names, envelopes, paging metadata, content types) but every value is made up here: no real
file or row is copied. `expected.json` (written by hand, not by this script) states the figures the
tests expect from these files. Run `python tests/connectors/payloads/make_payloads.py` after editing;
`tests/connectors/test_bundled_payloads.py` fails when the committed files differ from this output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _json(data: Any, indent: int | None = 2) -> bytes:
    return (json.dumps(data, indent=indent, ensure_ascii=False) + "\n").encode("utf-8")


# ---- socrata: SODA /resource pages (a JSON array per page, every value a string) -----------------

SOCRATA_PAGE_SIZE = 80  # rows on the first page; the second page holds one row


def _soda_page(rows: list[dict[str, str]]) -> bytes:
    # The recorded pages put one row a line with a leading comma, as SODA streams them.
    return ("[" + "\n,".join(json.dumps(r, separators=(",", ":")) for r in rows) + "]\n").encode("utf-8")


def socrata() -> dict[str, bytes]:
    start = datetime(2016, 9, 26, 0, 0)
    rows = [{"id": "300007", "date": (start + timedelta(minutes=15 * i)).strftime("%Y-%m-%dT%H:%M:%S.000"),
             "counts": str((i * 37 + 11) % 97), "status": "0"} for i in range(SOCRATA_PAGE_SIZE + 1)]
    return {"socrata/sodapy_resource_bike_counts_page_1.json": _soda_page(rows[:SOCRATA_PAGE_SIZE]),
            "socrata/sodapy_resource_bike_counts_page_2.json": _soda_page(rows[SOCRATA_PAGE_SIZE:])}


BUILDERS: list[Callable[[], dict[str, bytes]]] = [socrata]


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for builder in BUILDERS:
        files.update(builder())
    return files


def main(out: Path = HERE) -> None:
    for relative, body in build().items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
