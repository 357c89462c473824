"""The table printed at the end of a run: indicator rows by dimension and status, and the release path."""

from __future__ import annotations

import sys

import polars as pl

from kpis.catalogue import load_catalogue
from warehouse.home import Home
from warehouse.releases import Release

STATUSES = ("computed", "missing", "failed_check", "not_applicable")


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


def print_summary(home: Home, release: Release, seconds: float, stream: object = sys.stdout) -> None:
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
    cities = ", ".join(c["id"] for c in release.manifest["cities"])
    lines += ["", f"Cities: {cities}; years: {', '.join(map(str, release.manifest['years']))}",
              f"Release {release.release_id}: {release.path}", f"Finished in {seconds:.1f} s"]
    out.write("\n".join(lines) + "\n")
