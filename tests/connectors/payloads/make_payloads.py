"""Writes the bundled replay payloads beside this file: small, invented, deterministic.

Each file mirrors the shape of the real recording of the same name in ../shared/fixtures/payloads
(field names, envelopes, paging metadata, content types) but every value is made up here: no real
file or row is copied. `expected.json` (written by hand, not by this script) states the figures the
tests expect from these files. Run `python tests/connectors/payloads/make_payloads.py` after editing;
`tests/connectors/test_bundled_payloads.py` fails when the committed files differ from this output.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zipfile
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


# ---- opendatasoft: Explore v2.1 `records` envelope, an error body; NYC-shaped exports ---------------


def _place(name: str, ascii_name: str, alternates: list[str], geoname_id: int, lat: float, lon: float,
           modified: str, dem: int, population: int) -> dict[str, Any]:
    # Key order as the Explore API serves GeoNames records.
    return {"admin1_code": "93", "elevation": None, "name": name, "modification_date": modified,
            "alternate_names": alternates, "feature_class": "P", "admin3_code": "042", "cou_name_en": "France",
            "coordinates": {"lat": lat, "lon": lon}, "country_code_2": None, "geoname_id": str(geoname_id),
            "feature_code": "PPL", "label_en": "France", "dem": dem, "country_code": "FR", "ascii_name": ascii_name,
            "timezone": "Europe/Paris", "admin2_code": "13", "admin4_code": "13999", "population": population}


def opendatasoft() -> dict[str, bytes]:
    records = {"total_count": 48213, "results": [
        _place("Valbrune-sur-Orme", "Valbrune-sur-Orme", ["Valbrune", "Valbrune-sur-Orme"], 9100001,
               43.5123, 5.2871, "2020-05-14", 212, 18342),
        _place("Saint-Émeric-des-Prés", "Saint-Emeric-des-Pres",
               ["Saint-Emeric", "Saint-Emeric-des-Pres", "Saint-Émeric-des-Prés"], 9100002,
               44.0871, 4.9312, "2018-11-02", 87, 2406),
        _place("Roquelune", "Roquelune", [], 9100003, 43.2210, 6.0045, "2021-07-30", 455, 951)]}
    quota = {"errorcode": 10002, "reset_time": "2024-03-02T00:00:00Z", "limit_time_unit": "day",
             "call_limit": 5000, "error": "Too many requests on the domain. Please contact the domain administrator."}
    return {"opendatasoft/ods-openapi-v2.1_example_records-v2.1.json": _json(records, indent=1),
            "opendatasoft/ods-openapi-v2.1_example_429_quota.json": _json(quota, indent=1)}


BROADBAND_COLUMNS = [  # the first columns of the NYC Internet Master Plan export, names as published
    "Neighborhood Tabulation Area Code (NTA Code)", "Neighborhood Tabulation Area Name (NTA NAME)", "Borough Name",
    "Total Population", "Population Density (per Sq. Mi.)", "Total Number of Households", "Area (Sq. Mi.)",
    "Street Mileage", "Home Broadband Adoption (Percentage of Households)",
    "Home Broadband Adoption by Quartiles (High, Medium-High, Medium-Low, Low)"]
QUARTILES = ["High", "Medium-High", "Medium-Low", "Low"]


def _csv(header: list[str], rows: list[list[Any]], *, bom: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


def new_york_exports() -> dict[str, bytes]:
    boroughs = ["Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"]
    broadband = []
    for n in range(12):
        population = 20_000 + (n * 7919) % 60_000
        area = round(0.4 + (n * 13 % 17) / 10, 2)
        households = population * 10 // 27
        broadband.append([f"ZZ{n + 1:02d}", f"Invented Heights {n + 1}", boroughs[n % 5], f"{population:,}",
                          f"{round(population / area):,}", f"{households:,}", area, round(area * 21.5, 1),
                          f"{60 + (n * 11) % 35}%", QUARTILES[n % 4]])
    districts = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"boro_cd": code, "shape_area": area, "shape_leng": length},
         "geometry": {"type": "MultiPolygon", "coordinates": [[[
             [lon, lat], [lon + 0.02, lat], [lon + 0.02, lat + 0.015], [lon, lat + 0.015], [lon, lat]]]]}}
        for code, area, length, lon, lat in [("901", "46510233.118", "27410.5521", -73.95, 40.70),
                                             ("902", "38120087.904", "24987.0316", -73.93, 40.70)]]}
    water = []
    for year in range(2005, 2021):  # population and consumption, thousands separators as published
        population = 8_150_000 + (year - 2005) * 14_250 + (year * 37) % 5_000
        consumption = 1_120 - (year - 2005) * 9.5
        water.append([year, f"{population:,}", f"{consumption:,.1f}".replace(".0", ""),
                      round(consumption * 1_000_000 / population)])
    return {"new_york/Internet_Master_Plan__Adoption_and_Infrastructure_Data_by_Neighborhood.csv":
            _csv(BROADBAND_COLUMNS, broadband, bom=True),
            "new_york/community-districts.geojson": _json(districts),
            "new_york/Water_Consumption_in_the_City_of_New_York.csv": _csv(
                ["Year", "New York City Population", "NYC Consumption(Million gallons per day)",
                 "Per Capita(Gallons per person per day)"], water, bom=True),
            "new_york/nyc_parks.geojson": _parks()}


def _parks() -> bytes:
    """A FeatureCollection in the NYC Parks export's layout: GDAL's one-feature-a-line GeoJSON, CRS84."""
    parks = [("X901", "Invented Commons", "Manhattan", -73.9800, 40.7300, 0.0040, 0.0030),
             ("X902", "Millpond Green", "Brooklyn", -73.9500, 40.6800, 0.0030, 0.0020),
             ("X903", "Harbour Playground", "Queens", -73.8700, 40.7400, 0.0010, 0.0008),
             ("X904", "Ridge Woods", "Bronx", -73.8800, 40.8600, 0.0060, 0.0045),
             ("X905", "Lighthouse Field", "Staten Island", -74.1200, 40.5900, 0.0025, 0.0030)]
    features = []
    for code, name, borough, lon, lat, dlon, dlat in parks:
        ring = [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]
        properties = {"GISPROPNUM": code, "PARK_NAME": name, "BOROUGH": borough, "ADDRESS": "",
                      "LOCATION": f"{name} (invented)", "ACRES": round(dlon * dlat * 85.1 * 111.0 * 247.1, 3),
                      "TYPECATEGORY": "Neighborhood Park", "SUBCATEGORY": "Neighborhood Plgd", "WATERFRONT": "False",
                      "ZIPCODE": "", "COMMUNITYBOARD": "", "COUNCILDISTRICT": ""}
        feature = {"type": "Feature", "properties": properties,
                   "geometry": {"type": "Polygon", "coordinates": [ring]}}
        features.append(json.dumps(feature, ensure_ascii=False).replace('{"', '{ "').replace('"}', '" }'))
    head = ('{\n"type": "FeatureCollection",\n"name": "nyc_parks",\n'
            '"crs": { "type": "name", "properties": { "name": "urn:ogc:def:crs:OGC:1.3:CRS84" } },\n"features": [\n')
    return (head + ",\n".join(features) + "\n]\n}\n").encode("utf-8")


# ---- ckan: package_show envelope (help/success/result) with one resource; a LAUS-shaped CSV ---------

CKAN_PACKAGE_ID = "3f6a2c1e-8b4d-4c7a-9e21-6d5b0a7f4c13"
CKAN_RESOURCE_ID = "0b7e5d2a-1c4f-4e6b-9a3d-5f1e2c3b4a69"


def ckan() -> dict[str, bytes]:
    organization = {"description": "Statistics office of an invented city, used by citykpi's tests.",
                    "created": "2014-03-11T09:12:40.118203", "title": "Replay City Statistics Office",
                    "name": "replay-city-statistics-office", "is_organization": True, "state": "active",
                    "image_url": "", "revision_id": "c1d2e3f4-0a1b-4c2d-8e3f-4a5b6c7d8e9f", "type": "organization",
                    "id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "approval_status": "approved"}
    resource = {"mimetype": "text/csv", "cache_url": None, "hash": "", "description": "Monthly labour force estimates.",
                "name": "Labour force CSV", "format": "CSV", "url": "http://data.example.org/labour-force.csv",
                "cache_last_updated": None, "package_id": CKAN_PACKAGE_ID, "created": "2019-02-07T10:21:33.402117",
                "state": "active", "mimetype_inner": None, "resource_locator_function": "download",
                "last_modified": None, "resource_locator_protocol": "HTTP", "position": 0,
                "revision_id": "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918", "url_type": None, "id": CKAN_RESOURCE_ID,
                "resource_type": None, "size": None}
    extras = [{"key": key, "value": value} for key, value in [
        ("frequency-of-update", "monthly"), ("licence", "Open Data Commons Attribution"),
        ("metadata-date", "2019-02-07"), ("spatial", "Replay City")]]
    result = {"license_title": "", "temporal_coverage-from": ["1995"], "relationships_as_object": [],
              "private": False, "num_tags": 0, "id": CKAN_PACKAGE_ID, "metadata_created": "2019-02-07T10:20:01.733210",
              "metadata_modified": "2021-01-15T08:44:19.027341", "state": "active", "version": None,
              "temporal_coverage-to": ["2020"], "license_id": "", "type": "dataset", "resources": [resource],
              "num_resources": 1, "contact-email": "statistics@example.org", "tags": [], "groups": [],
              "creator_user_id": "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "relationships_as_subject": [],
              "organization": organization, "name": "replay-city-labour-force", "isopen": False, "url": None,
              "notes": "Invented monthly labour force estimates for citykpi's connector tests.",
              "owner_org": organization["id"], "theme-secondary": [], "extras": extras,
              "title": "Replay City labour force (monthly)", "revision_id": "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
              "theme-primary": "society"}
    package = {"help": "https://data.example.org/api/3/action/help_show?name=package_show", "success": True,
               "result": result}
    return {"ckan/datagovuk_package_show.json": _json(package)}


def laus() -> dict[str, bytes]:
    """LAUS-shaped monthly labour force rows: the city for 1995-2020 (June, December), two counties."""
    rows: list[list[Any]] = []
    areas = [("New York City", range(2020, 1994, -1), ("6", "12")),
             ("Bronx County", range(2020, 2015, -1), ("12",)), ("Kings County", range(2020, 2015, -1), ("12",))]
    for area, years, months in areas:
        for year in years:
            for month in months:
                seed = year * 13 + int(month) * 7 + len(area)
                labour = (3_900_000 if area == "New York City" else 600_000) + (seed * 7_919) % 90_000 // 100 * 100
                rate = 0.045 + (seed % 41) / 1000
                unemployed = round(labour * rate / 100) * 100
                rows.append([area, year, month, labour, labour - unemployed, unemployed, f"{unemployed / labour:.3f}"])
    header = ["Area", "Year", "Month", "Labor Force", "Employed", "Unemployed", "Unemployment Rate"]
    return {"new_york/LAUS_NYC_subset.csv": _csv(header, rows)}


# ---- openaq_v3: {meta, results} list envelopes for /locations and /sensors/{id}/measurements --------

OPENAQ_META = {"name": "openaq-api", "website": "/", "page": 1, "limit": 100}
UGM3 = "\u00b5g/m\u00b3"


def _openaq_time(utc: datetime, offset_hours: int) -> dict[str, str]:
    local = utc + timedelta(hours=offset_hours)
    sign = "+" if offset_hours >= 0 else "-"
    return {"utc": utc.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "local": local.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{abs(offset_hours):02d}:00"}


def openaq() -> dict[str, bytes]:
    sensors = [{"id": 77001, "name": f"pm25 {UGM3}",
                "parameter": {"id": 2, "name": "pm25", "units": UGM3, "displayName": "PM2.5"}},
               {"id": 77002, "name": "no2 ppm", "parameter": {"id": 7, "name": "no2", "units": "ppm",
                                                             "displayName": "NO\u2082"}}]
    location = {"id": 5501, "name": "Riverside Yard", "locality": "Replay City", "timezone": "America/Chicago",
                "country": {"id": 13, "code": "US", "name": "United States of America"},
                "owner": {"id": 4, "name": "Unknown Governmental Organization"},
                "provider": {"id": 119, "name": "AirNow"}, "isMobile": False, "isMonitor": True,
                "instruments": [{"id": 2, "name": "Government Monitor"}], "sensors": sensors,
                "coordinates": {"latitude": 41.2042, "longitude": -96.0417},
                "bounds": [-96.0417, 41.2042, -96.0417, 41.2042], "distance": None,
                "datetimeFirst": _openaq_time(datetime(2018, 5, 2, 17), -5),
                "datetimeLast": _openaq_time(datetime(2022, 3, 9, 10), -6)}
    measurements = []
    for hour, value in ((20, 11), (21, 12.5)):
        start, end = datetime(2022, 3, 8, hour), datetime(2022, 3, 8, hour + 1)
        summary = {"min": value, "q02": value, "q25": value, "median": value, "q75": value, "q98": value,
                   "max": value, "sd": None}
        measurements.append({
            "period": {"label": "1hour", "interval": "01:00:00", "datetimeFrom": _openaq_time(start, -6),
                       "datetimeTo": _openaq_time(end, -6)},
            "value": value, "parameter": {"id": 2, "name": "pm25", "units": UGM3, "displayName": None},
            "coordinates": None, "summary": summary,
            "coverage": {"expectedCount": 1, "expectedInterval": "01:00:00", "observedCount": 1,
                         "observedInterval": "01:00:00", "percentComplete": 100, "percentCoverage": 100,
                         "datetimeFrom": _openaq_time(end, -6), "datetimeTo": _openaq_time(end, -6)}})
    return {"openaq_v3/openaq-python_locations.json": _json({"meta": {**OPENAQ_META, "found": 1},
                                                            "results": [location]}, indent=1),
            "openaq_v3/openaq-python_measurements.json": _json({"meta": {**OPENAQ_META, "found": 2},
                                                               "results": measurements}, indent=1)}


# ---- FIWARE: NGSI-LD entities (key-values and normalised), NGSI v2 entities, Mintaka temporal pages --

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
BUILDINGS = [  # id suffix, name, category, street, locality, postal code, lon, lat
    ("mill007", "Old Mill Depot", "warehouse", "Mühlenweg 12", "Hafenviertel", "20457", 9.9921, 53.5411),
    ("silo003", "Harbour Silo", "silo", "Kaistraße 3", "Hafenviertel", "20457", 9.9862, 53.5437)]
STORES = [("101", "Kanal Eck Laden", "Kanalstraße 8", "Uferstadt", "20459", 9.9788, 53.5502),
          ("102", "Markt am Wall", "Wallring 41", "Altstadt", "20095", 10.0015, 53.5519)]


def _address(street: str, locality: str, postal: str) -> dict[str, str]:
    return {"streetAddress": street, "addressRegion": "Hamburg", "addressLocality": locality, "postalCode": postal}


def _animals(names: list[str], start_minute: int) -> list[dict[str, Any]]:
    """Mintaka temporal representation: each attribute's `values` as [value, observedAt] pairs, newest first."""
    out = []
    for n, name in enumerate(names):
        rates = [[float(70 + (n * 5 + k * 3) % 11),
                  f"2021-09-16T09:{start_minute + n:02d}:{50 - k * 7:02d}.{k * 111 + n:03d}Z"] for k in range(3)]
        out.append({"id": f"urn:ngsi-ld:Animal:{name}", "type": "Animal",
                    "heartRate": {"type": "Property", "values": rates},
                    "sex": {"type": "Property", "values": [["female", "2021-09-16T08:05:12.400Z"]]}})
    return out


def _headers(next_page: str | None, previous_page: str | None, date: str) -> bytes:
    lines = ["Content-Range: date-time 2021-09-16T11:00-2021-09-16T08:05:12.400/3", "Page-Size: 2"]
    if next_page:
        lines.append(f"Next-Page: {next_page}")
    if previous_page:
        lines.append(f"Previous-Page: {previous_page}")
    lines += ["NGSILD-Results-Count: 6",
              'Link: <http://context/user-context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; '
              'type="application/ld+json"', f"Date: {date}", "Content-Type: application/ld+json",
              "content-length: 612", "connection: keep-alive"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def fiware() -> dict[str, bytes]:
    key_values = [{"@context": ["http://context/ngsi-context.jsonld", CORE_CONTEXT],
                   "id": f"urn:ngsi-ld:Building:{suffix}", "type": "Building",
                   "address": _address(street, locality, postal), "name": name, "category": {"vocab": category},
                   "location": {"type": "Point", "coordinates": [lon, lat]}}
                  for suffix, name, category, street, locality, postal, lon, lat in BUILDINGS]
    normalised = [{"@context": CORE_CONTEXT, "id": f"urn:ngsi-ld:Building:{suffix}",
                   "type": "https://smartdatamodels.org/dataModel.Building/Building",
                   "https://smartdatamodels.org/dataModel.Building/category": {
                       "type": "VocabProperty", "vocab": f"https://wiki.openstreetmap.org/wiki/Tag:building%3D{category}"},
                   "https://schema.org/address": {
                       "type": "Property", "value": _address(street, locality, postal),
                       "https://uri.fiware.org/ns/dataModels#verified": {"type": "Property", "value": True}},
                   "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
                   "https://schema.org/name": {"type": "Property", "value": name}}
                  for suffix, name, category, street, locality, postal, lon, lat in BUILDINGS]
    stores = [{"id": f"urn:ngsi-ld:Store:{suffix}", "type": "Store", "address": _address(street, locality, postal),
               "location": {"type": "Point", "coordinates": [lon, lat]}, "name": name}
              for suffix, name, street, locality, postal, lon, lat in STORES]
    return {"fiware_ngsi_ld/getting_started_04.json": _json(key_values, indent=4),
            "fiware_ngsi_ld/getting_started_02.json": _json(normalised, indent=4),
            "fiware_ngsi_v2/getting_started_02.json": _json(stores, indent=4),
            "fiware_ngsi_ld/temporal_mintaka_06.json": _json(_animals(["goat011", "goat014"], 40), indent=4),
            "fiware_ngsi_ld/temporal_mintaka_07.txt": _headers("urn:ngsi-ld:Animal:sheep002", None,
                                                               "Thu, 16 Sep 2021 13:02:41 GMT"),
            "fiware_ngsi_ld/temporal_mintaka_08.txt": _headers("urn:ngsi-ld:Animal:sheep009",
                                                               "urn:ngsi-ld:Animal:goat011",
                                                               "Thu, 16 Sep 2021 13:03:05 GMT"),
            "fiware_ngsi_ld/temporal_mintaka_09.json": _json(_animals(["sheep002", "sheep005"], 30), indent=4)}


# ---- overpass: Overpass API JSON (osm3s header, elements, an error `remark`) and its XHTML error page --

ODBL = "The data included in this document is from www.openstreetmap.org. The data is made available under ODbL."


def _overpass(timestamp: str, elements: list[dict[str, Any]], remark: str | None = None) -> bytes:
    # Overpass streams the header, then each element, then the footer: blank lines around the elements.
    head = {"version": 0.6, "generator": "Overpass API",
            "osm3s": {"timestamp_osm_base": timestamp, "copyright": ODBL}}
    text = json.dumps(head, indent=2)[:-2] + ',\n  "elements": [\n\n'
    text += ",\n".join(json.dumps(e, indent=2) for e in elements)
    text += "\n\n  ]" + (f',\n"remark": {json.dumps(remark)}' if remark else "") + "\n}\n"
    return text.encode("utf-8")


def _ring_nodes(first_id: int, lon: float, lat: float, dlon: float, dlat: float) -> list[dict[str, Any]]:
    corners = [(lon, lat), (lon + dlon, lat), (lon + dlon, lat + dlat), (lon, lat + dlat)]
    return [{"type": "node", "id": first_id + i, "lat": y, "lon": x} for i, (x, y) in enumerate(corners)]


def overpass() -> dict[str, bytes]:
    nodes = _ring_nodes(7100000001, 7.1102, 50.7351, 0.0007, 0.0004)  # about 50 m x 45 m
    ids = [n["id"] for n in nodes]
    way_02 = [*nodes, {"type": "way", "id": 488120001, "nodes": [*ids, ids[0]], "tags": {"building": "yes"}}]
    meta = {"timestamp": "2015-04-02T09:12:44Z", "version": 2, "changeset": 29830011, "user": "replay_mapper",
            "uid": 4242}
    kiosk = [{**n, **meta} for n in _ring_nodes(7200000001, 7.0951, 50.7322, 0.0001, 0.0001)]
    kiosk_ids = [n["id"] for n in kiosk]
    way_03 = [*kiosk, {"type": "way", "id": 488120077, **meta, "center": {"lat": 50.73225, "lon": 7.09515},
                       "nodes": [*kiosk_ids, kiosk_ids[0]], "tags": {"building": "kiosk", "shop": "bakery"}}]
    segments = [[(7.0812, 50.7411), (7.0835, 50.7429)], [(7.0835, 50.7429), (7.0871, 50.7452)],
                [(7.0871, 50.7452), (7.0903, 50.7488)]]
    route = {"type": "relation", "id": 5511001,
             "bounds": {"minlat": 50.7411, "minlon": 7.0812, "maxlat": 50.7488, "maxlon": 7.0903},
             "members": [{"type": "way", "ref": 6100001 + i, "role": "",
                          "geometry": [{"lat": lat, "lon": lon} for lon, lat in segment]}
                         for i, segment in enumerate(segments)],
             "tags": {"name": "Replay Ring Road", "network": "local", "ref": "R 7", "route": "road", "type": "route"}}
    error_head = {"version": 0.6, "generator": "Overpass API",
                  "osm3s": {"timestamp_osm_base": "2019-06-03T11:20:02Z",
                            "timestamp_areas_base": "2019-06-03T08:41:05Z", "copyright": ODBL}}
    runtime_error = (json.dumps(error_head, indent=2)[:-2] + ',\n  "elements": [\n\n\n\n  ],\n'
                     '"remark": "runtime error: Query timed out in \\"query\\" at line 3 after 5 seconds."\n}\n')
    bad_request = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"\n'
        '    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n<head>\n'
        '  <meta http-equiv="content-type" content="text/html; charset=utf-8" lang="en"/>\n'
        '  <title>OSM3S Response</title>\n</head>\n<body>\n\n'
        f"<p>{ODBL}</p>\n"
        '<p><strong style="color:#FF0000">Error</strong>: line 3: parse error: \']\' expected - \'(\' found. </p>\n'
        "\n</body>\n</html>\n")
    return {"overpass/overpy_way-02.json": _overpass("2015-04-02T10:00:02Z", way_02),
            "overpass/overpy_way-03.json": _overpass("2015-04-02T10:00:02Z", way_03),
            "overpass/overpy_relation-04.json": _overpass("2018-09-20T07:15:02Z", [route]),
            "overpass/overpy_remark-runtime-error-01.json": runtime_error.encode("utf-8"),
            "overpass/overpy_bad-request.html": bad_request.encode("utf-8")}


# ---- gtfs: two small GTFS zips (one with frequencies and fares, one with shapes and calendar_dates) ---


def _zip(members: dict[str, str]) -> bytes:
    # Stored, with a fixed date: the same bytes on every machine (deflate output may vary by zlib build).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, text in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), text.encode("utf-8"))
    return buffer.getvalue()


def _lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def _stop_times(trips: list[tuple[str, list[str], int]], gap_minutes: int) -> list[str]:
    rows = []
    for trip_id, stops, first_minute in trips:
        for sequence, stop in enumerate(stops, start=1):
            minute = first_minute + (sequence - 1) * gap_minutes
            time = f"{minute // 60}:{minute % 60:02d}:00"
            rows.append(f"{trip_id},{time},{time},{stop},{sequence},,,,")
    return rows


CALENDAR_HEADER = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date"


def gtfs() -> dict[str, bytes]:
    stop_header = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,stop_headsign,pickup_type," \
                  "drop_off_type,shape_dist_traveled"
    sample = {
        "agency.txt": _lines("agency_id,agency_name,agency_url,agency_timezone",
                             "RTA,Replay Transit Agency,http://transit.example.org,America/Chicago"),
        "calendar.txt": _lines(CALENDAR_HEADER,
                               "WKDY,1,1,1,1,1,0,0,20200101,20211231", "WKND,0,0,0,0,0,1,1,20200101,20211231"),
        "calendar_dates.txt": _lines("service_id,date,exception_type", "WKDY,20201225,2"),
        "fare_attributes.txt": _lines("fare_id,price,currency_type,payment_method,transfers,transfer_duration",
                                      "std,2.000000,USD,0,0,"),
        "fare_rules.txt": _lines("fare_id,route_id,origin_id,destination_id,contains_id", "std,R1,,,", "std,R2,,,"),
        "feed_info.txt": _lines("feed_publisher_name,feed_publisher_url,feed_lang"),
        "frequencies.txt": _lines("trip_id,start_time,end_time,headway_secs", "R1A,6:00:00,9:59:59,900",
                                  "R1A,10:00:00,19:59:59,1800"),
        "routes.txt": _lines("route_id,agency_id,route_short_name,route_long_name,route_desc,route_type,route_url,"
                             "route_color,route_text_color",
                             "R1,RTA,1,Riverside - Market,,3,,,", "R2,RTA,2,Market - Old Mill,,3,,,"),
        "shapes.txt": _lines("shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled"),
        "stop_times.txt": _lines(stop_header, *_stop_times(
            [("R1A", ["RIVERSIDE", "HARBOUR", "MARKET"], 360), ("R1B", ["MARKET", "HARBOUR", "RIVERSIDE"], 380),
             ("R2A", ["MARKET", "WALL", "OLD_MILL"], 420), ("R2B", ["OLD_MILL", "WALL", "MARKET"], 450)], 6)),
        "stops.txt": _lines("stop_id,stop_name,stop_desc,stop_lat,stop_lon,zone_id,stop_url",
                            "RIVERSIDE,Riverside (Replay),,41.204200,-96.041700,,",
                            "HARBOUR,Harbour Street (Replay),,41.209800,-96.036100,,",
                            "MARKET,Market Square (Replay),,41.215300,-96.030400,,",
                            "WALL,Wall Ring (Replay),,41.221900,-96.026800,,",
                            "OLD_MILL,Old Mill (Replay),,41.228400,-96.020500,,"),
        "trips.txt": _lines("route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id",
                            "R1,WKDY,R1A,to Market,0,,", "R1,WKDY,R1B,to Riverside,1,,",
                            "R2,WKND,R2A,to Old Mill,0,,", "R2,WKND,R2B,to Market,1,,"),
    }
    route_trips = [(f"T{n:03d}", ["CB01", "CB02", "CB03", "CB04"] if n % 2 == 0 else ["CB04", "CB03", "CB02", "CB01"],
                    300 + n * 20) for n in range(12)]
    city = {
        "calendar_dates.txt": _lines("service_id,date,exception_type", "SVC1,20200413,2", "SVC1,20201225,2"),
        "routes.txt": _lines("route_id,agency_id,route_short_name,route_long_name,route_desc,route_type,route_url,"
                             "route_color,route_text_color",
                             "110-1,CB,110,Coastline Loop,,3,,0A7A3B,FFFFFF"),
        "trips.txt": _lines("route_id,service_id,trip_id,shape_id,trip_headsign,direction_id,block_id",
                            *(f"110-1,SVC1,{t},SH1,Coastline Loop,{n % 2},B{n // 4}"
                              for n, (t, _, _) in enumerate(route_trips))),
        "stops.txt": _lines("stop_id,stop_code,stop_name,stop_desc,stop_lat,stop_lon,zone_id,stop_url,"
                            "location_type,parent_station,stop_timezone,wheelchair_boarding",
                            "CB01,101,Esplanade North,,-16.901100,145.771200,,,0,,,1",
                            "CB02,102,Esplanade South,,-16.910400,145.774800,,,0,,,1",
                            "CB03,103,Lagoon Stop,,-16.918900,145.776100,,,0,,,1",
                            "CB04,104,Marina Point,,-16.925300,145.780900,,,0,,,1"),
        "agency.txt": _lines("agency_id,agency_name,agency_url,agency_timezone,agency_lang,agency_phone",
                             "CB,Coastal Buses (Replay),http://buses.example.org,Australia/Brisbane,EN,"),
        "stop_times.txt": _lines("trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,"
                                 "drop_off_type", *(row.rsplit(",", 4)[0] + ",0,0"
                                                    for row in _stop_times(route_trips, 4))),
        "shapes.txt": _lines("shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled",
                             "SH1,-16.901100,145.771200,1,0.0", "SH1,-16.910400,145.774800,2,1.1",
                             "SH1,-16.918900,145.776100,3,2.0", "SH1,-16.925300,145.780900,4,2.9"),
        "calendar.txt": _lines(CALENDAR_HEADER,
                               "SVC1,1,1,1,1,1,1,1,20200101,20211231"),
    }
    return {"gtfs/gtfs_kit_sample_gtfs.zip": _zip(sample), "gtfs/gtfs_kit_cairns_gtfs.zip": _zip(city)}


# ---- eurostat: old JSON-stat 1.x (wdds), JSON-stat 2.0, SDMX-CSV 2.0, SDMX-ML 2.1 data and structure ---


def _jsonstat_1() -> bytes:
    years = [str(y) for y in range(2001, 2013)]
    values: list[int | None] = [None, None, 13100, 13650, 14020, 14480, 15110, 15390, 14870, 15240, 15560, None]
    status = [":" if v is None else None for v in values]
    dataset = {"wsVersion": "V1_1", "code": "nama_gdp_c", "language": "EN",
               "title": "GDP and main components - Current prices", "subTitle": None, "description": None,
               "lastUpdateDate": 1357023600000,
               "status": {"value": status, "category": {"label": {":": "not available"}}}, "value": values,
               "dimension": {
                   "id": ["unit", "indic_na", "geo", "time"], "size": [1, 1, 1, len(years)],
                   "unit": {"label": "unit", "category": {"index": {"EUR_HAB": 0},
                                                          "label": {"EUR_HAB": "Euro per inhabitant"}}},
                   "indic_na": {"label": "indic_na", "category": {"index": {"B1GM": 0}, "label": {
                       "B1GM": "Gross domestic product at market prices"}}},
                   "geo": {"label": "geo", "category": {"index": {"PT": 0}, "label": {"PT": "Portugal"}}},
                   "time": {"label": "time", "category": {"index": {y: i for i, y in enumerate(years)},
                                                          "label": {y: y for y in years}}}}}
    return (json.dumps({"nama_gdp_c": dataset}, separators=(",", ":"), ensure_ascii=False)).encode("utf-8")


def _jsonstat_2() -> bytes:
    dimension = {
        "concept": {"label": "concept", "category": {"label": {"pop": "population"},
                                                     "unit": {"pop": {"label": "persons", "decimals": 0}}}},
        "birth": {"label": "place of birth", "category": {"index": ["T", "H", "X"], "label": {
            "T": "total", "H": "same province", "X": "abroad"}}},
        "age": {"label": "age group", "category": {"index": ["T", "0", "65"], "label": {
            "T": "total", "0": "0-64", "65": "65 and over"}}},
        "gender": {"label": "gender", "category": {"index": ["T", "M", "F"], "label": {
            "T": "total", "M": "male", "F": "female"}}},
        "time": {"label": "year", "category": {"index": {"2010": 0, "2020": 1}}},
        "residence": {"label": "province of residence", "category": {"index": ["T", "91"], "label": {
            "T": "total", "91": "Replay Province"}}}}
    ids = ["birth", "age", "gender", "time", "residence", "concept"]
    size = [3, 3, 3, 2, 2, 1]
    count = 1
    for n in size:
        count *= n
    values = [(i * 7_919 + 1_000) % 250_000 for i in range(count)]
    dataset = {"version": "2.0", "class": "dataset", "href": "https://data.example.org/samples/replay-province.json",
               "label": "Population by province of residence, place of birth, age, gender and year (invented)",
               "source": "Replay City statistics", "updated": "2021-06-30T09:00:00Z", "value": values,
               "id": ids, "size": size, "role": {"time": ["time"], "geo": ["residence", "birth"],
                                                   "metric": ["concept"]},
               "dimension": dimension,
               "link": {"alternate": [{"type": "text/csv", "href": "https://data.example.org/samples/replay.csv"}]}}
    return _json(dataset)


SDMX_SS_DATA = """<?xml version="1.0" encoding="UTF-8"?>
<m:StructureSpecificData xmlns:m="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" \
xmlns:s="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific" \
xmlns:u="urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure=ESTAT:NAMA_10_GDP(32.1):ObsLevelDim:TIME_PERIOD" \
xmlns:c="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <m:Header>
    <m:ID>REPLAY0001</m:ID>
    <m:Test>true</m:Test>
    <m:Prepared>2023-03-01T08:00:00.000Z</m:Prepared>
    <m:Sender id="ESTAT"/>
    <m:Structure dimensionAtObservation="TIME_PERIOD" structureID="STR1">
      <c:StructureUsage>
        <Ref id="NAMA_10_GDP" agencyID="ESTAT" version="1.0"/>
      </c:StructureUsage>
    </m:Structure>
    <m:DataSetID>NAMA_10_GDP</m:DataSetID>
    <m:Extracted>2023-03-01T08:00:00.000Z</m:Extracted>
  </m:Header>
  <u:DataSet s:structureRef="STR1" s:dataScope="DataStructure" xsi:type="u:DataSetType">
    <Series geo="MT" na_item="B1GQ" unit="CP_MEUR" freq="A">
      <Obs TIME_PERIOD="2016" OBS_VALUE="10431.7"/>
      <Obs TIME_PERIOD="2017" OBS_VALUE="11266.9"/>
      <Obs TIME_PERIOD="2018" OBS_VALUE="12391.4"/>
      <Obs TIME_PERIOD="2019" OBS_VALUE="13502.6"/>
    </Series>
  </u:DataSet>
</m:StructureSpecificData>
"""

DEMO_NS = "urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure=ESTAT:DEMOGRAPHY(1.0):ObsLevelDim:DEMO:explicit"


def _sdmx_cross_sectional() -> bytes:
    series = []
    for year, sex, births, deaths in [("2015", "T", 41230, 38115), ("2016", "T", 40987, 38402),
                                      ("2015", "F", 20110, 19230), ("2016", "F", 19968, 19377)]:
        series.append(
            f'\t\t<Series FREQ="A" TIME_PERIOD="{year}" SEX="{sex}" COUNTRY="MT">\n'
            f'\t\t\t<Obs xsi:type="demo:LBIRTHST" OBS_VALUE="{births}" OBS_STATUS="A" UNIT_MEASURE="PERS" '
            'UNIT_MULT="0"/>\n'
            f'\t\t\t<Obs xsi:type="demo:DEATHST" OBS_VALUE="{deaths}" OBS_STATUS="P" UNIT_MEASURE="PERS" '
            'UNIT_MULT="0"/>\n\t\t</Series>\n')
    text = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<message:StructureSpecificData xmlns:demo="{DEMO_NS}" '
        'xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" '
        'xmlns:data="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific" '
        'xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "\t<message:Header>\n\t\t<message:ID>DEMO_XS_REPLAY</message:ID>\n\t\t<message:Test>true</message:Test>\n"
        "\t\t<message:Prepared>2017-04-03T10:00:00+01:00</message:Prepared>\n\t\t<message:Sender id=\"ESTAT\"/>\n"
        f'\t\t<message:Structure structureID="STR1" dimensionAtObservation="DEMO" namespace="{DEMO_NS}" '
        'explicitMeasures="true">\n\t\t\t<common:Structure>\n'
        '\t\t\t\t<Ref agencyID="ESTAT" id="DEMOGRAPHY" version="1.0"/>\n\t\t\t</common:Structure>\n'
        "\t\t</message:Structure>\n\t</message:Header>\n"
        '\t<message:DataSet data:structureRef="STR1" xsi:type="demo:DataSetType" data:dataScope="DataStructure">\n'
        + "".join(series) + "\t</message:DataSet>\n</message:StructureSpecificData>\n")
    return text.encode("utf-8")


SDMX_STRUCTURE = """<?xml version="1.0" encoding="UTF-8"?>
<m:Structure xmlns:m="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message"
    xmlns:s="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure"
    xmlns:c="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common">
    <m:Header>
        <m:ID>DF_REPLAY_01</m:ID>
        <m:Test>true</m:Test>
        <m:Prepared>2023-02-01T09:30:00.000Z</m:Prepared>
        <m:Sender id="ESTAT"/>
    </m:Header>
    <m:Structures>
        <s:Dataflows>
            <s:Dataflow id="GOV_10Q_GGNFA" \
urn="urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow=ESTAT:GOV_10Q_GGNFA(1.0)" \
agencyID="ESTAT" version="1.0" isFinal="false">
                <c:Name xml:lang="en">Quarterly non-financial accounts for general government (replay)</c:Name>
                <s:Structure>
                    <Ref id="GOV_10Q_GGNFA" version="1.0" agencyID="ESTAT" package="datastructure" \
class="DataStructure"/>
                </s:Structure>
            </s:Dataflow>
        </s:Dataflows>
    </m:Structures>
</m:Structure>
"""


def eurostat() -> dict[str, bytes]:
    sdmx_csv = _lines(
        "STRUCTURE,STRUCTURE_ID,ACTION,DIM_1,DIM_2,DIM_3,OBS_VALUE,ATTR_2,ATTR_3,ATTR_1,UPDATED",
        'dataflow,ESTAT:URB_CPOP1(1.0.0),I,A,DE1001V,2018,3402.5,Y,"Normal, special and other values",N,'
        "2022-05-10T08:00:00Z",
        'dataflow,ESTAT:URB_CPOP1(1.0.0),I,A,DE1001V,2019,3417.9,Y,"Normal, special and other values",N,'
        "2022-05-10T08:00:00Z",
        'dataflow,ESTAT:URB_CPOP1(1.0.0),I,A,DE1001V,2020,3429.1,Y,"Normal, special and other values",Y,'
        "2022-05-10T08:00:00Z")
    return {"eurostat/jsonstatpy_old-wdds-jsonstat1_eurostat-name_gpd_c-geo_IT.json": _jsonstat_1(),
            "jsonstat/pyjstat_galicia-2.0.json": _jsonstat_2(),
            "eurostat/sdmx-csv-v2-spec_example-01.csv": sdmx_csv.encode("utf-8"),
            "eurostat/sdmx-test-data_NAMA_10_GDP-ss.xml": SDMX_SS_DATA.encode("utf-8"),
            "eurostat/sdmx-test-data_demography-xs.xml": _sdmx_cross_sectional(),
            "eurostat/sdmx-test-data_GOV_10Q_GGNFA.xml": SDMX_STRUCTURE.encode("utf-8")}


BUILDERS: list[Callable[[], dict[str, bytes]]] = [socrata, opendatasoft, new_york_exports, ckan, laus, openaq, fiware,
                                                  overpass, gtfs, eurostat]


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
