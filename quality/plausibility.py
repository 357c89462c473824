"""Plausibility rules over `kpi_values`, from the U4SSC verification guidance (warnings, never blocking).

The U4SSC Verification Manual (2022) asks verifiers to question values that contradict each other
or the usual range: fixed broadband cannot exceed household Internet access, potable water cannot
exceed basic water supply, smart electricity meters usually roll out before smart water meters,
SMEs are usually > 95 % of enterprises, R&D spending is usually < 5 % of city GDP, access to
electricity and household sanitation are usually >= 90 %, and a KPI rarely moves by more than a
bound from one year to the next. A rule whose inputs are not all computed is `skipped` (not passed):
there was nothing to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from canonical.sqltext import ident, literal
from quality.metadata import sql_literal
from quality.model import QueryCheck, TableSuite

TABLE = "kpi_values"
Op = Literal["<=", ">=", "<", ">"]
_OPS: dict[str, str] = {"<=": "<=", ">=": ">=", "<": "<", ">": ">"}  # SQL text only from here
_VALUES = ("(SELECT year, indicator_id, value FROM kpi_values WHERE city_id = $city AND status = 'computed' "
           "AND data_point IS NULL AND list_contains($years, year))")


@dataclass(frozen=True)
class Compare:
    name: str
    left: str               # indicator id
    op: Op
    right: str | float      # indicator id (same year) or a threshold
    description: str

    def check(self) -> QueryCheck:
        if isinstance(self.right, str):
            base = f"""FROM {_VALUES} l JOIN {_VALUES} r ON r.year = l.year
                       WHERE l.indicator_id = {sql_literal(self.left)} AND r.indicator_id = {sql_literal(self.right)}"""
            failing = (f'SELECT l.year, l.value AS {ident(self.left)}, r.value AS {ident(self.right)} {base} '
                       f"AND NOT (l.value {_OPS[self.op]} r.value) ORDER BY l.year")
        else:
            base = f"FROM {_VALUES} l WHERE l.indicator_id = {sql_literal(self.left)}"
            failing = (f'SELECT l.year, l.value AS {ident(self.left)} {base} '
                       f"AND NOT (l.value {_OPS[self.op]} {literal(float(self.right))}) "
                       "ORDER BY l.year")
        return QueryCheck(TABLE, self.name, "warning", self.description, failing_sql=failing,
                          evaluated_sql=f"SELECT count(*) {base}")


RULES: tuple[Compare, ...] = (
    Compare("plausible_fixed_broadband_le_internet", "EC:ICT:ICT:2C", "<=", "EC:ICT:ICT:1C",
            "fixed broadband subscriptions (EC:ICT:ICT:2C) <= household Internet access (EC:ICT:ICT:1C)"),
    Compare("plausible_potable_le_basic_water", "EC:I:WS:2C", "<=", "EC:I:WS:1C",
            "potable water supply (EC:I:WS:2C) <= basic water supply (EC:I:WS:1C)"),
    Compare("plausible_smart_electricity_ge_water_meters", "EC:ICT:ES:1C", ">=", "EC:ICT:WS:1C",
            "smart electricity meters (EC:ICT:ES:1C) usually >= smart water meters (EC:ICT:WS:1C)"),
    Compare("plausible_sme_share_above_95", "EC:P:IN:3A", ">", 95.0,
            "small and medium-sized enterprises (EC:P:IN:3A) usually > 95 % of enterprises"),
    Compare("plausible_rd_share_below_5", "EC:P:IN:1C", "<", 5.0,
            "R&D expenditure (EC:P:IN:1C) usually < 5 % of city GDP"),
    Compare("plausible_electricity_access_ge_90", "EC:I:ES:3C", ">=", 90.0,
            "access to electricity (EC:I:ES:3C) usually >= 90 % of households"),
    Compare("plausible_sanitation_ge_90", "EC:I:WS:5C", ">=", 90.0,
            "household sanitation (EC:I:WS:5C) usually >= 90 % of households"),
)


def year_over_year() -> QueryCheck:
    """|value_t - value_t-1| > bound * |value_t-1| for computed values of consecutive years ($bound:
    QualitySettings.yoy_bound, default 0.5 = 50 %). A move away from 0 counts as beyond any bound."""
    pairs = """FROM (SELECT indicator_id, data_point, year, value FROM kpi_values
                     WHERE city_id = $city AND status = 'computed') c
               JOIN (SELECT indicator_id, data_point, year, value FROM kpi_values
                     WHERE city_id = $city AND status = 'computed') p
               ON p.indicator_id = c.indicator_id AND p.data_point IS NOT DISTINCT FROM c.data_point
                  AND p.year = c.year - 1"""
    return QueryCheck(
        TABLE, "plausible_year_over_year", "warning",
        "a KPI value changes by at most the configured bound (default 50 %) from one year to the next",
        failing_sql=f"""SELECT c.indicator_id, c.data_point, c.year, p.value AS previous, c.value,
                               round((c.value - p.value) / nullif(abs(p.value), 0), 4) AS relative_change
                        {pairs} WHERE abs(c.value - p.value) > $bound * abs(p.value)
                        ORDER BY c.indicator_id, c.data_point NULLS FIRST, c.year""",
        evaluated_sql=f"SELECT count(*) {pairs}")


def plausibility_suite() -> TableSuite:
    return TableSuite(TABLE, (*(rule.check() for rule in RULES), year_over_year()))
