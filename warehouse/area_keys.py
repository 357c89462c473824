"""Area keys must meet: values published per district (or any area type) must name polygons the city
has, or the district roll-ups and maps would silently use a subset (issue #13: a table keyed by
district names beside polygons keyed by codes summed nothing and said nothing).

Checked inside the load's transaction, after the sources are written: an error rolls the load back.
Area types without polygons are not checked (nothing to match against).
"""

from __future__ import annotations

import duckdb

from canonical.errors import SourceDataError


def _shown(ids: list[str], limit: int = 8) -> str:
    more = len(ids) - limit
    return ", ".join(repr(i) for i in ids[:limit]) + (f" and {more} more" if more > 0 else "")


def check_area_keys(con: duckdb.DuckDBPyConnection, city_id: str) -> None:
    """Raise SourceDataError naming the unmatched keys of the first source whose area ids match no polygon."""
    rows = con.execute("""
        SELECT o.source_id, o.area_type, list(DISTINCT o.area_id ORDER BY o.area_id), any_value(o.source_record)
        FROM observations o
        WHERE o.city_id = $city AND o.derivation IS NULL AND o.area_type <> 'city'
          AND EXISTS (SELECT 1 FROM core_areas a WHERE a.city_id = $city AND a.area_type = o.area_type)
          AND NOT EXISTS (SELECT 1 FROM core_areas a WHERE a.city_id = $city AND a.area_type = o.area_type
                          AND a.area_id = o.area_id)
        GROUP BY ALL ORDER BY ALL LIMIT 1""", {"city": city_id}).fetchall()
    if not rows:
        return
    source_id, area_type, unmatched, record = rows[0]
    polygons = con.execute("""SELECT source_id, list(area_id ORDER BY area_id), list(name ORDER BY area_id)
                              FROM core_areas WHERE city_id = ? AND area_type = ? GROUP BY ALL ORDER BY ALL LIMIT 1""",
                           [city_id, area_type]).fetchall()[0]
    areas_source, ids, names = polygons
    hint = ""
    by_name = {str(n).strip().casefold(): i for i, n in zip(ids, names, strict=True) if n is not None}
    if sum(u.strip().casefold() in by_name for u in unmatched) >= len(unmatched) / 2:
        hint = ("; they look like the polygons' names, not their ids: map the table's code column as "
                "area_field, or key the polygons by name (areas.id_field)")
    elif {u.lstrip("0") for u in unmatched} & {i.lstrip("0") for i in ids}:
        hint = "; they match polygon ids once leading zeros are ignored: publish both with the same padding"
    raise SourceDataError(
        str(record).split(" row ")[0], f"{len(unmatched)} {area_type} id(s) match no polygon of source "
        f"{areas_source!r}: {_shown(unmatched)} (polygon ids: {_shown(ids, 5)}){hint}", source_id=source_id)
