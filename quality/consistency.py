"""The U4SSC verifier's consistency checks over the inputs (`observations`), issue #15.

The U4SSC Verification Manual (2022, p32, general checks) asks verifiers to confirm that the
Transportation Mode Share values (EC:I:T:4A) and the Solid Waste treatment shares (EN:EN:WA:1C)
"add to ~100 % (+/- 2 %)", and that wastewater treatment levels nest: every cubic metre that
received tertiary treatment received secondary and primary treatment too (EN:EN:WS:4C;
`wastewater_treated_m3` is "at least the given level", canonical/variables.yaml), so
tertiary <= secondary <= primary.

The checks run on the observations the KPIs read, per year and area, so a failure names the rows
and the KPIs computed from them become `failed_check` with the check as the reason:

- `<family>_share_sum_at_most_100` (error, blocking): the parts of one total exceed it by more than
  the tolerance (2 percentage points, the VM's +/- 2 %). Parts of a total cannot add up to more than
  it: at least one part or the total is wrong, and which one cannot be told, so every part is marked.
- `<family>_share_sum_near_100` (warning): every catalogue data point is present and they add up to
  less than 100 % - 2 points. Reported only: a mode or treatment outside the catalogue's list
  (motorcycles, composting reported apart) leaves a real gap.
- `wastewater_treatment_levels_nested` (error, blocking): tertiary > secondary or secondary >
  primary (beyond a relative 1e-9, rounding) is impossible by the variable's definition; the three
  rows of the year and area are marked.
"""

from __future__ import annotations

from dataclasses import dataclass

from canonical.sqltext import literal
from quality.model import Check, QueryCheck

TABLE = "observations"
SHARE_TOLERANCE_POINTS = 2.0  # VM p32: "should add to ~100 % (+/- 2 %)"
_NESTED_SLACK = 1e-9          # relative: tertiary may equal secondary up to rounding


@dataclass(frozen=True)
class ShareFamily:
    name: str
    part: str                  # variable of the parts (by data point)
    total: str                 # variable of the whole
    data_points: tuple[str, ...]
    label: str


FAMILIES = (
    ShareFamily("mode", "commuters_by_main_mode", "commuters_total",
                ("private vehicle", "public transport", "walking", "cycling", "para transport"),
                "transportation mode shares (EC:I:T:4A)"),
    ShareFamily("waste_treatment", "solid_waste_treated_t", "solid_waste_total_t",
                ("landfill", "burnt", "incinerated", "open dump", "recycled", "other"),
                "solid waste treatment shares (EN:EN:WA:1C)"),
)


def _sums(family: ShareFamily) -> str:
    """Per year and area: the sum of the parts, how many catalogue data points they cover, the total."""
    points = "[" + ", ".join(literal(p) for p in family.data_points) + "]"
    return f"""(SELECT p.year, p.area_type, p.area_id, sum(p.value) AS parts,
                       count(DISTINCT p.data_point) FILTER (WHERE list_contains({points}, p.data_point)) AS covered,
                       any_value(t.value) AS total
                FROM observations p JOIN observations t
                  ON t.city_id = p.city_id AND t.year = p.year AND t.area_type = p.area_type
                 AND t.area_id = p.area_id AND t.variable = {literal(family.total)} AND t.data_point IS NULL
                WHERE p.city_id = $city AND p.variable = {literal(family.part)} AND p.data_point IS NOT NULL
                  AND t.value > 0
                GROUP BY p.year, p.area_type, p.area_id)"""


def share_checks(family: ShareFamily) -> tuple[QueryCheck, QueryCheck]:
    sums = _sums(family)
    percent = "round(100 * parts / total, 2)"
    complete = f"covered = {literal(len(family.data_points))}"
    over = f"100 * parts / total > 100 + {literal(SHARE_TOLERANCE_POINTS)}"
    under = f"{complete} AND 100 * parts / total < 100 - {literal(SHARE_TOLERANCE_POINTS)}"
    columns = f"year, area_type, area_id, parts, total, {percent} AS percent"
    flag = f"""SELECT o.rowid, 'the parts add up to ' || {percent} || ' % of ' || {literal(family.total)}
               || ' ' || s.year AS detail
               FROM observations o JOIN {sums} s ON o.year = s.year AND o.area_type = s.area_type
                AND o.area_id = s.area_id
               WHERE o.city_id = $city AND o.variable = {literal(family.part)} AND o.data_point IS NOT NULL
                 AND {over}"""
    return (
        QueryCheck(TABLE, f"{family.name}_share_sum_at_most_100", "error",
                   f"{family.label}: the parts add up to at most 100 % + {SHARE_TOLERANCE_POINTS:g} points of "
                   f"{family.total} (U4SSC VM p32)",
                   failing_sql=f"SELECT {columns} FROM {sums} WHERE {over} ORDER BY ALL",
                   evaluated_sql=f"SELECT count(*) FROM {sums}", flag_sql=flag),
        QueryCheck(TABLE, f"{family.name}_share_sum_near_100", "warning",
                   f"{family.label}: with every data point present the parts add up to at least 100 % - "
                   f"{SHARE_TOLERANCE_POINTS:g} points of {family.total} (U4SSC VM p32)",
                   failing_sql=f"SELECT {columns} FROM {sums} WHERE {under} ORDER BY ALL",
                   evaluated_sql=f"SELECT count(*) FROM {sums} WHERE {complete}"),
    )


def wastewater_check() -> QueryCheck:
    levels = """(SELECT year, area_type, area_id,
                        max(value) FILTER (WHERE data_point = 'primary') AS "primary",
                        max(value) FILTER (WHERE data_point = 'secondary') AS secondary,
                        max(value) FILTER (WHERE data_point = 'tertiary') AS tertiary
                 FROM observations WHERE city_id = $city AND variable = 'wastewater_treated_m3'
                 GROUP BY ALL)"""
    bad = (f"tertiary > secondary * (1 + {_NESTED_SLACK}) OR secondary > \"primary\" * (1 + {_NESTED_SLACK}) "
           f"OR tertiary > \"primary\" * (1 + {_NESTED_SLACK})")
    evaluable = ('(CAST("primary" IS NOT NULL AS INTEGER) + CAST(secondary IS NOT NULL AS INTEGER) '
                 '+ CAST(tertiary IS NOT NULL AS INTEGER)) >= 2')
    return QueryCheck(
        TABLE, "wastewater_treatment_levels_nested", "error",
        "wastewater treated at tertiary <= secondary <= primary level (each level includes the next; EN:EN:WS:4C)",
        failing_sql=f'SELECT year, area_type, area_id, "primary", secondary, tertiary FROM {levels} '
                    f"WHERE {bad} ORDER BY ALL",
        evaluated_sql=f"SELECT count(*) FROM {levels} WHERE {evaluable}",
        flag_sql=f"""SELECT o.rowid, 'treatment levels not nested: primary ' || coalesce(CAST(l."primary" AS VARCHAR),
                            '-') || ', secondary ' || coalesce(CAST(l.secondary AS VARCHAR), '-') || ', tertiary '
                            || coalesce(CAST(l.tertiary AS VARCHAR), '-') AS detail
                     FROM observations o JOIN {levels} l ON o.year = l.year AND o.area_type = l.area_type
                      AND o.area_id = l.area_id
                     WHERE o.city_id = $city AND o.variable = 'wastewater_treated_m3' AND ({bad})""")


def consistency_checks() -> tuple[Check, ...]:
    return (*(c for family in FAMILIES for c in share_checks(family)), wastewater_check())
