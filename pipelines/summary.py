"""What `citykpi run` prints at the end: indicator rows by dimension and status, the quality checks
that warned or failed (each named in plain words), the scores with their exclusions grouped by
reason, and the release (or that nothing changed since the latest one)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from canonical.listing import first_and_more
from kpis.catalogue import load_catalogue
from publish.releases import Release
from warehouse.home import Home

STATUSES = ("computed", "missing", "failed_check", "not_applicable")
CITIES_SHOWN = 10  # a run over 1,000 cities names the first ten, not a thousand


def city_list(ids: Sequence[str]) -> str:
    """`a, b` or, past CITIES_SHOWN, `a, ..., j, and 990 more (1,000 cities)`."""
    return first_and_more(ids, CITIES_SHOWN, ", ") + (f" ({len(ids):,} cities)" if len(ids) > CITIES_SHOWN else "")


def summary_frame(values: pl.DataFrame) -> pl.DataFrame:
    """Rows per group (U4SSC dimension or 'SDG 11') and status; counts indicator x data point x year rows."""
    groups = pl.DataFrame(
        [{"indicator_id": i.id, "group": i.dimension if i.framework == "u4ssc" else "SDG 11"} for i in load_catalogue()]
    )
    joined = values.join(groups, on="indicator_id", how="left").with_columns(pl.col("group").fill_null("unknown"))
    counts = joined.pivot(on="status", index="group", values="indicator_id", aggregate_function="len")
    for status in STATUSES:
        if status not in counts.columns:
            counts = counts.with_columns(pl.lit(0, pl.UInt32).alias(status))
    order = {"Economy": 0, "Environment": 1, "Society and Culture": 2, "SDG 11": 3}
    return (counts.select("group", *STATUSES).fill_null(0)
            .with_columns(pl.col("group").replace_strict(order, default=9).alias("_order"))
            .sort("_order").drop("_order"))


def print_summary(home: Home, release: Release, seconds: float, stream: object = sys.stdout, *,
                  unchanged: bool = False) -> None:
    values = pl.read_parquet(release.path / "kpi_values.parquet")
    table = summary_frame(values)
    out = stream if hasattr(stream, "write") else sys.stdout
    header = f"{'dimension':<22}{'computed':>10}{'missing':>10}{'failed':>10}{'n/a':>8}"
    lines = ["", "Indicator rows (indicator x data point x year) by status:", header, "-" * len(header)]
    for row in table.iter_rows(named=True):
        lines.append(f"{row['group']:<22}{row['computed']:>10}{row['missing']:>10}{row['failed_check']:>10}"
                     f"{row['not_applicable']:>8}")
    totals = {s: int(table[s].sum()) for s in STATUSES}
    lines.append("-" * len(header))
    lines.append(f"{'total':<22}{totals['computed']:>10}{totals['missing']:>10}{totals['failed_check']:>10}"
                 f"{totals['not_applicable']:>8}")
    lines += ["", *quality_lines(home, release.manifest.get("quality")), *score_lines(release)]
    ids = [c["id"] for c in release.manifest["cities"]]
    lines += ["", f"Cities: {city_list(ids)}; years: {', '.join(map(str, release.manifest['years']))}"]
    if unchanged:
        lines.append(f"Nothing changed since release {release.release_id} (same inputs, code, config and data): "
                     "no new release written (`citykpi run --force` writes one anyway)")
    lines += [f"Release {release.release_id}: {release.path}", f"Finished in {seconds:.1f} s"]
    out.write("\n".join(lines) + "\n")


# ---- quality: the checks that did not pass, in words -------------------------------------------

SAMPLE_WIDTH = 110


def quality_lines(home: Home, quality: dict[str, Any] | None) -> list[str]:
    """'Quality checks: N passed, N warned, N failed' and one line per warned / failed check: city,
    table, what the check expects (its description), how many rows fail and the first of them."""

    if not quality:
        return []
    lines = [f"Quality checks: {quality.get('passed', 0)} passed, {quality.get('warned', 0)} warned, "
             f"{quality.get('failed', 0)} failed, {quality.get('skipped', 0)} skipped"]
    listed = [("failed", e) for e in quality.get("failed_checks", [])] + \
             [("warned", e) for e in quality.get("warned_checks", [])]
    if len({e["city_id"] for _, e in listed}) > CITIES_SHOWN:
        return lines + _grouped_check_lines(home, listed)
    details = _check_details(home, [e for _, e in listed])
    for status, entry in listed:
        lines += _check_lines(status, entry, details)
    if listed:
        lines.append("  (every failing row: quality_results in the warehouse; docs/quality.md explains each check)")
    return lines


def _check_lines(status: str, entry: dict[str, Any], details: dict[tuple[str, str, str, str], tuple[str, Any]]
                 ) -> list[str]:
    """A check that did not pass in one city: what it expects, how many rows fail, the first of them."""
    from pipelines.texttable import cut

    description, sample = details.get(_check_key(entry), ("", None))
    failing = entry.get("failing_count")
    count = f"{failing:,} failing" if isinstance(failing, int) else "failed"
    lines = [f"  {status} {entry['city_id']} {entry['table']}: expected {_expected(entry, description)}; "
             f"{count}{_gx_named(entry)}"]
    if sample:
        lines.append(f"    e.g. {cut(_sample_text(sample), SAMPLE_WIDTH)}")
    return lines


def _expected(entry: dict[str, Any], description: str) -> str:
    return description or entry.get("description") or entry["check"].replace("_", " ")


def _gx_named(entry: dict[str, Any]) -> str:
    # The GX expectation a data person can look up (Data Docs show it); raw check ids stay out.
    gx = entry.get("gx_expectations") or []
    return f" (GX {', '.join(gx)})" if gx else ""


def _grouped_check_lines(home: Home, listed: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Past CITIES_SHOWN cities with checks that did not pass: one entry per check with its cities and
    failing rows added up, and the first city's first failing row (a thousand cities would be thousands
    of lines)."""
    from pipelines.texttable import cut

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for status, entry in listed:
        groups.setdefault((status, entry["table"], entry["check"]), []).append(entry)
    details = _check_details(home, [entries[0] for entries in groups.values()])
    lines = []
    for (status, table, _), entries in groups.items():
        first = entries[0]
        if len(entries) == 1:
            lines += _check_lines(status, first, details)
            continue
        description, sample = details.get(_check_key(first), ("", None))
        counts = [e.get("failing_count") for e in entries]
        count = (f"{sum(c for c in counts if isinstance(c, int)):,} failing" if all(isinstance(c, int) for c in counts)
                 else "failed")
        cities = [e["city_id"] for e in entries]
        lines.append(f"  {status} {table} in {len(cities):,} cities: expected "
                     f"{_expected(first, description)}; {count}{_gx_named(first)}")
        lines.append(f"    cities: {first_and_more(cities, CITIES_SHOWN, ', ')}")
        if sample:
            lines.append(f"    e.g. {cut(first['city_id'] + ': ' + _sample_text(sample), SAMPLE_WIDTH)}")
    lines.append("  (every failing row of every city: quality_results in the warehouse; docs/quality.md explains "
                 "each check)")
    return lines


def _check_key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(entry.get("run_id")), entry["city_id"], entry["table"], entry["check"])


def _check_details(home: Home, entries: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], tuple[str, Any]]:
    """(description, first sample row) of each listed check from quality_results (empty when unreadable)."""
    if not entries or not home.warehouse_path.exists():
        return {}
    found: dict[tuple[str, str, str, str], tuple[str, Any]] = {}
    try:
        with home.warehouse(read_only=True) as con:
            for entry in entries:
                row = con.execute("""SELECT description, sample FROM quality_results WHERE run_id = ? AND city_id = ?
                                     AND table_name = ? AND check_name = ?""", list(_check_key(entry))).fetchone()
                if row:
                    samples = json.loads(row[1]) if row[1] else []
                    found[_check_key(entry)] = (row[0], samples[0] if samples else None)
    except duckdb.Error:
        return found  # the summary still names the checks; their details are in the release's report
    return found


def _sample_text(sample: Any) -> str:
    if isinstance(sample, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in sample.items() if v is not None)
    return str(sample)


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ---- scores: exclusions grouped by reason -------------------------------------------------------

# Reason as scoring writes it -> (plain words, where to look).
EXCLUSION_HINTS: tuple[tuple[str, str], ...] = (
    ("no target in force", "have no target (see `citykpi targets CONFIG`, or add rows to <config stem>.targets.csv)"),
    ("lower-is-better target without a worst value",
     "have a lower-is-better target without a worst value (set `worst` in the targets table)"),
)


def exclusion_reason(reason: str) -> str:
    """An exclusion reason in plain words, without row-specific detail, so that equal reasons group.
    Only the first reason counts: a KPI without a value is excluded for that, whatever its target."""
    first = (reason or "no reason given").split("; ")[0]
    status = re.match(r"no computed value \(status (\w+)", first)
    if status:
        return f"have no computed value ({status.group(1)}: see `citykpi coverage CONFIG`)"
    return next((words for start, words in EXCLUSION_HINTS if first.startswith(start)), first)


def score_lines(release: Release) -> list[str]:
    """'Scores: scored N, excluded M: a have ..., b have ...' from the release's kpi_scores."""
    files = [f for f in release.files("scores") if f.suffix == ".parquet"]
    if not files:
        return []
    scores = pl.read_parquet(files[0], columns=["status", "status_reason"])
    scored = scores.filter(pl.col("status") == "scored").height
    excluded = scores.filter(pl.col("status") == "excluded")
    line = f"Scores (U4SSC KPI x data point x year): scored {scored}, excluded {excluded.height}"
    if excluded.height:
        groups = Counter(exclusion_reason(r) for r in excluded["status_reason"].to_list())
        line += ": " + "; ".join(f"{n} data point{'s' if n != 1 else ''} {words}" for words, n in groups.most_common())
    return [line]
