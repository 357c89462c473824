"""The two payload layers every connector test runs over.

- `bundled`: small invented payloads in `tests/connectors/payloads/` (written by `make_payloads.py`
  there), in the same shapes as the real recordings; always present, so a user's checkout tests its
  connectors. Their expected figures are in `payloads/expected.json`.
- `shared`: the real recorded payloads in `../shared/fixtures/payloads` and the real New York exports
  in `../shared/fixtures/cities/new_york`, read in place; skipped with a clear reason when absent.
  Their expected figures are the literals below (facts about those recorded files).

Both layers use the same file names, so a test reads `payloads / "socrata" / ...` whichever it got.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_data import require_shared

BUNDLED_DIR = Path(__file__).resolve().parent / "payloads"
LAYERS = ("bundled", "shared")

# Facts about the real recorded files in ../shared (what the tests asserted before the bundled layer).
SHARED_EXPECTED: dict[str, Any] = {
    "socrata": {
        "page_size": 1000, "rows": 1001, "page_1_bytes": 79775, "max_bytes": 10_000,
        "first_row": ["100009424", "2016-09-21T15:45:00.000", "100", "0"],
        "last_row": ["100009424", "2016-10-02T01:45:00.000", "3", "0"],
    },
    "opendatasoft": {
        "sample": {"records": 2, "total_count": 137611, "first_population": "29278",
                   "second_alternate_names_start": '["Saint-Leger"'},
        "neighbourhoods": {"rows": 195, "page_size": 100, "pages": 2},
    },
    "ckan": {"package": "uk-continental-shelf-seabed-sediments-1-1-million-scale2",
             "resource_id": "7cc52d71-160c-4938-9154-78fee856955c", "resource_name": "BGS Homepage"},
    "laus_rows": 3521,
    "openaq": {"year": "2023", "after_newest": "2023-10-16T13:00:01Z", "values": [6.0, 7.5]},
    "fiware": {
        "first_building": {"id": "urn:ngsi-ld:Building:farm001", "name": "Victory Farm", "lon": 13.3505,
                           "lat": 52.5144},
        "building_names": ["Victory Farm", "Big Red Barn"], "first_store": "Bose Brucke Einkauf",
        "temporal": {"next_page": "urn:ngsi-ld:Animal:pig001", "newest": "2021-09-16T10:59:59.375Z",
                     "first_heart_row": ["urn:ngsi-ld:Animal:cow001", "Animal", "heartRate",
                                         "2021-09-16T10:59:59.329Z", "2021", "52"]},
    },
    "overpass": {"closed_way": "way/317146077"},
    "eurostat": {"jsonstat_1_geo": "IT", "jsonstat_1_rows": 69, "jsonstat_2_rows": 6 * 22 * 3 * 2 * 5,
                 "sdmx_ml_years": ["2012", "2013", "2014", "2015"], "sdmx_ml_first_value": "46526.2",
                 "sdmx_xs_rows": 60},
    "end_to_end": {"park_features": 2058, "water_rows": 42},
}


@dataclass(frozen=True)
class Layer:
    name: str

    @property
    def payloads(self) -> Path:
        if self.name == "bundled":
            return BUNDLED_DIR
        return require_shared("fixtures/payloads")

    @property
    def new_york(self) -> Path:
        if self.name == "bundled":
            return BUNDLED_DIR / "new_york"
        return require_shared("fixtures/cities/new_york")

    @property
    def expected(self) -> dict[str, Any]:
        if self.name == "bundled":
            data: dict[str, Any] = json.loads((BUNDLED_DIR / "expected.json").read_text(encoding="utf-8"))
            return data
        return SHARED_EXPECTED
