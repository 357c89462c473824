"""The Demoville generator: valid config, byte-stable output, and files in the promised shapes."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pyarrow.parquet as pq
import pytest
import shapely
import yaml
from shapely.geometry import Point, shape

from sources.config import load_city_config
from sources.demo import ensure_demo_city, generate_demo_city, station_count
from sources.demo.generator import german_number, template_text

SMALL = 0.25  # two stations: fast, but still more than one


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small generation shared by the read-only checks."""
    return generate_demo_city(tmp_path_factory.mktemp("demo"), scale=SMALL).parent


def _hours() -> int:
    return (365 + 365 + 366) * 24  # 2022-2024


def _features(path: Path) -> list[dict[str, Any]]:
    collection = json.loads(path.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    features: list[dict[str, Any]] = collection["features"]
    return features


# ---- config -------------------------------------------------------------------------------


def test_generated_config_validates_and_points_at_existing_files(demo: Path) -> None:
    loaded = load_city_config(demo / "city.yaml", check_files=True)
    city = loaded.config.city
    assert (city.id, city.name, city.country, city.reporting_years) == ("demo-city", "Demoville", "DE",
                                                                        [2022, 2023, 2024])
    formats = {source.id: source.resolved_format for source in loaded.config.sources}
    assert formats == {
        "statistik-stadt": "csv", "versorgung": "csv", "bevoelkerung-bezirke": "excel",
        "bezirke": "geojson", "gruenflaechen": "geojson", "gtfs": "gtfs",
        "luftmessstationen": "ngsi-ld", "luftmessungen": "parquet", "strassennetz": "osm",
    }
    assert "{{" not in (demo / "city.yaml").read_text(encoding="utf-8")


def test_template_itself_validates(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(template_text(), encoding="utf-8")
    load_city_config(path, check_files=False)


def test_every_statistics_code_is_mapped_except_population_density(demo: Path) -> None:
    config = yaml.safe_load((demo / "city.yaml").read_text(encoding="utf-8"))
    source = next(s for s in config["sources"] if s["id"] == "statistik-stadt")
    mapped = set(source["observations"]["variables"])
    with (demo / "statistik_stadt.csv").open(encoding="latin-1", newline="") as handle:
        codes = {row["Merkmal"] for row in csv.DictReader(handle, delimiter=";")}
    assert codes - mapped == {"Einwohnerdichte"}  # left unmapped on purpose: extra rows are ignored
    assert mapped <= codes


def test_every_utilities_column_is_mapped(demo: Path) -> None:
    config = yaml.safe_load((demo / "city.yaml").read_text(encoding="utf-8"))
    source = next(s for s in config["sources"] if s["id"] == "versorgung")
    header = (demo / "versorgung.csv").read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert set(header) - set(source["observations"]["variables"]) == {"Jahr"}


def test_every_statistics_series_covers_every_year(demo: Path) -> None:
    """A series missing a reporting year would leave its indicators missing in that year."""
    years: dict[str, set[int]] = {}
    with (demo / "statistik_stadt.csv").open(encoding="latin-1", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            years.setdefault(row["Merkmal"], set()).add(int(row["Jahr"]))
    elections = {"Wählerinnen und Wähler (Stadtratswahl)", "Wahlberechtigte (Stadtratswahl)"}
    assert {code for code, found in years.items() if found != set(range(2019, 2025))} == elections


# ---- determinism --------------------------------------------------------------------------


def test_same_seed_and_scale_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_demo_city(tmp_path / "a", scale=SMALL, seed=7).parent
    second = generate_demo_city(tmp_path / "b", scale=SMALL, seed=7).parent
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert len(names) == 10
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_workbook_carries_no_wall_clock_dates(demo: Path) -> None:
    # Two quick generations can fall into the same second; check the pinned stamps directly.
    with zipfile.ZipFile(demo / "bevoelkerung_bezirke.xlsx") as archive:
        assert {info.date_time for info in archive.infolist()} == {(2025, 3, 31, 8, 0, 0)}
        core = archive.read("docProps/core.xml").decode("utf-8")
    assert "<dcterms:modified xsi:type=\"dcterms:W3CDTF\">2025-03-31T08:00:00Z<" in core
    assert "<dcterms:created xsi:type=\"dcterms:W3CDTF\">2025-03-31T08:00:00Z<" in core


def test_another_seed_gives_another_city(tmp_path: Path) -> None:
    first = generate_demo_city(tmp_path / "a", scale=SMALL, seed=1).parent
    second = generate_demo_city(tmp_path / "b", scale=SMALL, seed=2).parent
    assert (first / "statistik_stadt.csv").read_bytes() != (second / "statistik_stadt.csv").read_bytes()


# ---- statistics CSV (Latin-1, ';', decimal comma) -------------------------------------------


def test_german_number_format() -> None:
    assert german_number(1234567.5, 1) == "1.234.567,5"
    assert german_number(2271, 0) == "2.271"
    assert german_number(80.25, 1) == "80,2"


def test_statistics_csv_is_latin1_semicolon_with_decimal_commas(demo: Path) -> None:
    raw = (demo / "statistik_stadt.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # umlauts are single Latin-1 bytes
    text = raw.decode("latin-1")
    assert "Ärzte" in text and "Haushalte mit Internetzugang" in text
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["Jahr", "Merkmal", "Wert", "Einheit"]
    values = {(int(r[0]), r[1]): r[2] for r in rows[1:]}
    electricity = values[(2023, "Stromverbrauch")]
    assert electricity.count(".") >= 2 and "," in electricity  # e.g. 2.460.719,0 (MWh)
    assert "," in values[(2023, "Lebenserwartung bei Geburt")]
    assert {year for year, code in values if code == "Wahlberechtigte (Stadtratswahl)"} == {2019, 2024}


def _stat(demo: Path, code: str, year: int) -> float:
    with (demo / "statistik_stadt.csv").open(encoding="latin-1", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            if row["Merkmal"] == code and int(row["Jahr"]) == year:
                return float(row["Wert"].replace(".", "").replace(",", "."))
    raise KeyError(code)


def test_statistics_are_internally_consistent(demo: Path) -> None:
    people = _population_rows(demo)
    with zipfile.ZipFile(demo / "gtfs.zip") as archive:
        n_stops = len(_gtfs_table(archive, "stops.txt"))
    for year in range(2019, 2025):
        households = sum(r["Privathaushalte"] for r in people if r["Jahr"] == year)
        population = sum(r["Einwohner insgesamt"] for r in people if r["Jahr"] == year)
        def stat(code: str, year: int = year) -> float:
            return _stat(demo, code, year)

        internet = stat("Haushalte mit Internetzugang")
        assert stat("Festnetz-Breitbandanschlüsse") <= internet < households
        assert stat("Wasserzähler mit Fernauslesung") < stat("Wasserzähler insgesamt")
        assert stat("Intelligente Stromzähler (Smart Meter)") < stat("Stromzähler insgesamt")
        assert stat("Arbeitslose") < stat("Erwerbspersonen")
        assert stat("Arbeitslose 15 bis 24 Jahre") < stat("Erwerbspersonen 15 bis 24 Jahre")
        assert stat("Kleine und mittlere Unternehmen (< 250 Beschäftigte)") < stat("Unternehmen insgesamt")
        assert stat("Endenergieverbrauch aus erneuerbaren Quellen") < stat("Endenergieverbrauch insgesamt")
        school_age = stat("Bevölkerung im schulpflichtigen Alter (6 bis 18 Jahre)")
        assert stat("Schülerinnen und Schüler") <= school_age
        assert stat("Haltestellen mit dynamischer Fahrgastinformation") < n_stops
        assert 1.7 < population / households < 2.2
        assert 450_000 < population < 550_000
        _check_indicator_statistics(stat, population, households, year)


def _check_indicator_statistics(stat: Callable[[str], float], population: float, households: float,
                                year: int) -> None:
    """The series for the complete indicator set: parts within wholes, the VM's plausibility ranges."""
    potable = stat("Haushalte mit sicher verwalteter Trinkwasserversorgung")
    assert potable <= stat("Haushalte mit Trinkwasserversorgung") <= households
    assert stat("Haushalte mit Anschluss an die öffentliche Kanalisation") <= stat("Haushalte mit Abwasserentsorgung")
    assert stat("Haushalte mit regelmäßiger Abfallabholung") <= households
    for part, whole in [
        ("Einwohner mit 3G-Mobilfunkversorgung", None), ("Einwohner mit 4G-Mobilfunkversorgung (LTE)", None),
        ("Stromverteilnetz mit IKT-Überwachung (SCADA)", "Länge des Stromverteilnetzes"),
        ("Stromkunden mit Lastmanagement (Demand Response)", "Stromkunden"),
        ("Hauptverkehrsstraßen mit IKT-Verkehrserfassung", "Hauptverkehrsstraßen"),
        ("Knotenpunkte mit adaptiver Steuerung oder ÖPNV-Bevorrechtigung", "Knotenpunkte mit Lichtsignalanlage"),
        ("Veröffentlichte offene Datensätze (Open Data)", "Datensätze im Datenkatalog der Verwaltung"),
        ("Elektronische Vergabeverfahren (E-Vergabe)", "Vergabeverfahren"),
        ("Pkw mit Elektro-, Plug-in-Hybrid- oder Brennstoffzellenantrieb", "Pkw-Bestand"),
        ("Öffentliche Gebäude mit Gebäudeleittechnik", "Öffentliche Gebäude"),
        ("Nettogrundfläche öffentlicher Gebäude mit Nachhaltigkeitszertifikat",
         "Nettogrundfläche öffentlicher Gebäude"),
        ("Mobilfunkstandorte mit Standortbescheinigung (EMF-Grenzwerte eingehalten)", "Mobilfunkstandorte"),
        ("Einwohner mit Lärmbelastung über 55 dB(A) LDEN", None),
        ("Schülerinnen und Schüler mit IKT-Zugang im Unterricht", "Schülerinnen und Schüler"),
        ("Ausgaben für Kulturerbe und Denkmalpflege: städtischer Haushalt",
         "Ausgaben für Kulturerbe und Denkmalpflege: öffentliche Hand (Bund, Land, Stadt)"),
        ("Wohnkosten der privaten Haushalte", "Verfügbares Einkommen der privaten Haushalte"),
        ("Betreuungsplätze für Kinder von 0 bis 3 Jahren", "Kinder im Alter von 0 bis 3 Jahren"),
        ("Nahrungsmittelversorgung aus dem Umkreis von 100 km", "Nahrungsmittelversorgung der Stadt"),
        ("Einwohner in Überschwemmungs- und Gefahrengebieten", None),
    ]:
        assert stat(part) <= (stat(whole) if whole else population), (part, year)
    heritage = [stat(f"Ausgaben für Kulturerbe und Denkmalpflege: {p}")
                for p in ("öffentliche Hand (Bund, Land, Stadt)", "private Träger und Stiftungen", "insgesamt")]
    assert heritage[0] + heritage[1] == pytest.approx(heritage[2])
    modes = sum(stat(f"Berufspendler nach Hauptverkehrsmittel: {m}")
                for m in ("Pkw/Motorrad", "ÖPNV", "zu Fuß", "Fahrrad", "Fahrdienste und Taxi"))
    assert modes == stat("Berufspendler insgesamt")
    assert stat("Interne Ausgaben für Forschung und Entwicklung") < 0.05 * stat("Bruttoinlandsprodukt (nominal)")
    earnings = "Durchschnittlicher Bruttostundenverdienst: {}"
    assert stat(earnings.format("Frauen")) < stat(earnings.format("Männer"))
    assert 0 < stat("Gini-Koeffizient der Äquivalenzeinkommen") < 100
    travel = stat("Reisezeit Referenzrouten in der Hauptverkehrszeit (Mittel)")
    assert travel > stat("Reisezeit Referenzrouten bei freiem Verkehrsfluss (Mittel)")
    for group in ("insgesamt", "Frauen", "Männer"):
        victims = stat(f"Bürgerumfrage Sicherheit: Opfer körperlicher oder sexueller Belästigung (12 Monate) {group}")
        assert victims < stat(f"Bürgerumfrage Sicherheit: Befragte {group}")
    for code in ("Stadtentwicklungskonzept: Klimaresilienz", "Nationale Stadtentwicklungspolitik",
                 "Lokale Strategie zur Katastrophenvorsorge (Sendai-konform)"):
        assert stat(code) in (0.0, 1.0)


# ---- utilities CSV (UTF-8 with BOM) -------------------------------------------------------


def test_utilities_csv_has_bom_and_consistent_values(demo: Path) -> None:
    raw = (demo / "versorgung.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [int(r["Jahr"]) for r in rows] == list(range(2019, 2025))
    for r in rows:
        supplied, billed = float(r["wasser_eingespeist_m3"]), float(r["wasser_abgerechnet_m3"])
        consumption_m3 = float(r["wasserverbrauch_ML"]) * 1000
        assert billed < consumption_m3 < supplied
        treatments = ("abfall_deponie_t", "abfall_verbrennung_t", "abfall_verwertung_t", "abfall_sonstige_t",
                      "abfall_offene_verbrennung_t", "abfall_wilde_ablagerung_t")
        parts = sum(float(r[c]) for c in treatments)
        total = float(r["abfall_gesamt_t"])
        assert parts == pytest.approx(total, abs=0.05)
        assert float(r["abfall_offene_verbrennung_t"]) == float(r["abfall_wilde_ablagerung_t"]) == 0.0
        assert float(r["abfall_kontrolliert_t"]) <= total <= float(r["abfall_aufkommen_t"])
        assert float(r["wasserverbrauch_suesswasser_ML"]) <= float(r["wasserverbrauch_ML"])
        levels = [float(r[f"abwasser_{level}_m3"]) for level in ("tertiaer", "sekundaer", "primaer", "gesamt")]
        assert levels == sorted(levels)  # tertiary <= secondary <= primary <= all wastewater
        assert float(r["wassernetz_ikt_km"]) < float(r["wassernetz_km"])
        assert float(r["kanalnetz_ikt_km"]) < float(r["kanalnetz_km"])


# ---- population workbook -------------------------------------------------------------------


def _population_rows(demo: Path) -> list[dict[str, Any]]:
    wb = openpyxl.load_workbook(demo / "bevoelkerung_bezirke.xlsx", read_only=True)
    rows = list(wb["Bevoelkerung"].iter_rows(values_only=True))
    header = [str(c) for c in rows[1]]
    return [dict(zip(header, row, strict=True)) for row in rows[2:]]


def test_population_workbook_has_title_row_and_adding_up_parts(demo: Path) -> None:
    wb = openpyxl.load_workbook(demo / "bevoelkerung_bezirke.xlsx")
    assert wb.sheetnames == ["Erläuterungen", "Bevoelkerung"]
    sheet = wb["Bevoelkerung"]
    assert str(sheet["A1"].value).startswith("Bevölkerung nach Stadtbezirken")
    assert sheet["A2"].value == "Bezirk-Nr." and sheet["C2"].value == "Jahr"
    rows = _population_rows(demo)
    assert len(rows) == 12 * 6
    assert {r["Bezirk-Nr."] for r in rows} == {f"{i:02d}" for i in range(1, 13)}
    for r in rows:
        total = r["Einwohner insgesamt"]
        assert isinstance(total, int)
        assert r["weiblich"] + r["männlich"] == total
        assert r["0 bis 14 Jahre"] + r["15 bis 64 Jahre"] + r["65 Jahre und älter"] == total
        assert 1.6 < total / r["Privathaushalte"] < 2.3


# ---- geometry ------------------------------------------------------------------------------


def _km2(geometry: shapely.Geometry) -> float:
    """Planar area after scaling degrees to km at 51 deg N (good enough at city size)."""
    scaled = shapely.affinity.scale(geometry, xfact=111.32 * np.cos(np.radians(51.0)), yfact=111.2,
                                    origin=(0, 0))
    return float(scaled.area)


def test_districts_are_valid_disjoint_and_about_200_km2(demo: Path) -> None:
    features = _features(demo / "bezirke.geojson")
    assert len(features) == 12
    shapes = [shape(f["geometry"]) for f in features]
    assert all(s.is_valid and s.geom_type == "Polygon" for s in shapes)
    for i, a in enumerate(shapes):
        for b in shapes[i + 1:]:
            assert _km2(a.intersection(b)) < 1e-6
    assert 180 < _km2(shapely.union_all(shapes)) < 220
    codes = [f["properties"]["bezirk_nr"] for f in features]
    assert codes == [f"{i:02d}" for i in range(1, 13)]
    lon, lat = shapely.union_all(shapes).centroid.coords[0]
    assert abs(lon - 10.0) < 0.05 and abs(lat - 51.0) < 0.05


def test_green_areas_lie_inside_districts(demo: Path) -> None:
    city = shapely.union_all([shape(f["geometry"]) for f in _features(demo / "bezirke.geojson")])
    parks = _features(demo / "gruenflaechen.geojson")
    assert 24 <= len(parks) <= 48
    ids = [p["properties"]["gf_id"] for p in parks]
    assert len(set(ids)) == len(ids)
    shapes = [shape(p["geometry"]) for p in parks]
    assert all(s.is_valid and city.contains(s) for s in shapes)
    assert 0.03 < _km2(shapely.union_all(shapes)) / _km2(city) < 0.2


# ---- GTFS ----------------------------------------------------------------------------------


def _gtfs_table(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def test_gtfs_feed_is_complete_and_referentially_sound(demo: Path) -> None:
    with zipfile.ZipFile(demo / "gtfs.zip") as archive:
        required = {"agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt", "calendar.txt"}
        assert required <= set(archive.namelist())
        stops = _gtfs_table(archive, "stops.txt")
        routes = _gtfs_table(archive, "routes.txt")
        trips = _gtfs_table(archive, "trips.txt")
        stop_times = _gtfs_table(archive, "stop_times.txt")
        services = {row["service_id"] for row in _gtfs_table(archive, "calendar.txt")}
    assert {r["route_type"] for r in routes} == {"0", "2", "3"}
    stop_ids, trip_ids = {s["stop_id"] for s in stops}, {t["trip_id"] for t in trips}
    assert len(stop_ids) == len(stops)
    assert {t["route_id"] for t in trips} <= {r["route_id"] for r in routes}
    assert {t["service_id"] for t in trips} <= services
    assert {st["stop_id"] for st in stop_times} <= stop_ids
    assert {st["trip_id"] for st in stop_times} == trip_ids
    city = shapely.union_all([shape(f["geometry"]) for f in _features(demo / "bezirke.geojson")])
    assert all(city.contains(Point(float(s["stop_lon"]), float(s["stop_lat"]))) for s in stops)


# ---- air quality ---------------------------------------------------------------------------


def test_ngsi_ld_stations_have_the_required_fields(demo: Path) -> None:
    entities = json.loads((demo / "luftmessstationen.jsonld").read_text(encoding="utf-8"))
    assert isinstance(entities, list) and len(entities) == station_count(SMALL) == 2
    for entity in entities:
        assert entity["id"].startswith("urn:ngsi-ld:AirQualityObserved:")
        assert entity["type"] == "AirQualityObserved"
        assert entity["location"]["type"] == "GeoProperty"
        assert entity["location"]["value"]["type"] == "Point"
        assert entity["name"]["type"] == "Property" and entity["dateObserved"]["type"] == "Property"
        assert any("smart-data-models" in url for url in entity["@context"])
        for prop in ("pm25", "pm10", "no2", "so2", "o3"):
            assert entity[prop]["type"] == "Property" and entity[prop]["unitCode"] == "GQ"
            assert entity[prop]["value"] > 0


def test_readings_join_to_stations_and_look_like_a_german_city(demo: Path) -> None:
    table = pq.read_table(demo / "luftmessungen_stuendlich.parquet")
    assert table.column_names == ["station_id", "zeitpunkt_utc", "komponente", "messwert"]
    assert str(table.schema.field("zeitpunkt_utc").type) == "timestamp[us, tz=UTC]"
    entities = json.loads((demo / "luftmessstationen.jsonld").read_text(encoding="utf-8"))
    assert set(table.column("station_id").unique().to_pylist()) == {e["id"] for e in entities}
    assert set(table.column("komponente").unique().to_pylist()) == {"PM2.5", "PM10", "NO2", "SO2", "O3"}
    codes = np.asarray(table.column("komponente").to_numpy(zero_copy_only=False))
    values = table.column("messwert").to_numpy()
    means = {code: float(values[codes == code].mean()) for code in ("PM2.5", "PM10", "NO2")}
    assert 7 < means["PM2.5"] < 15 and 14 < means["PM10"] < 27 and 12 < means["NO2"] < 37
    assert values.min() > 0


def test_readings_row_count_matches_stations_hours_and_gaps(demo: Path) -> None:
    rows = pq.ParquetFile(demo / "luftmessungen_stuendlich.parquet").metadata.num_rows
    share = rows / (station_count(SMALL) * 5 * _hours())
    assert 0.93 < share < 0.995  # a few % of hours missing


def test_readings_scale_with_scale(tmp_path: Path) -> None:
    small = generate_demo_city(tmp_path / "small", scale=SMALL).parent
    larger = generate_demo_city(tmp_path / "larger", scale=0.5).parent
    n_small = pq.ParquetFile(small / "luftmessungen_stuendlich.parquet").metadata.num_rows
    n_larger = pq.ParquetFile(larger / "luftmessungen_stuendlich.parquet").metadata.num_rows
    assert station_count(0.5) == 4 and station_count(1.0) == 8 and station_count(10) == 80
    assert 1.8 < n_larger / n_small < 2.2
    # Only the station count changes: the city and the first stations' readings stay the same.
    assert (small / "bezirke.geojson").read_bytes() == (larger / "bezirke.geojson").read_bytes()
    first_small = pq.ParquetFile(small / "luftmessungen_stuendlich.parquet").read_row_group(0)
    first_larger = pq.ParquetFile(larger / "luftmessungen_stuendlich.parquet").read_row_group(0)
    assert first_small.equals(first_larger)


# ---- ensure_demo_city ----------------------------------------------------------------------


def test_ensure_demo_city_generates_once_and_leaves_no_temp_dir(tmp_path: Path) -> None:
    config = ensure_demo_city(tmp_path, scale=SMALL, seed=5)
    assert config == tmp_path / "demo" / "sf0.25-seed5" / "city.yaml"
    assert config.is_file()
    marker = config.parent / "statistik_stadt.csv"
    stamp = marker.stat().st_mtime_ns
    assert ensure_demo_city(tmp_path, scale=SMALL, seed=5) == config
    assert marker.stat().st_mtime_ns == stamp  # reused, not regenerated
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["sf0.25-seed5"]
    load_city_config(config)


def test_ensure_demo_city_cleans_up_after_a_failed_generation(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(out_dir: Path, **_: object) -> Path:
        (out_dir / "half-written.csv").write_text("Jahr;", encoding="utf-8")
        raise RuntimeError("killed")

    monkeypatch.setattr("sources.demo.generator.generate_demo_city", broken)
    with pytest.raises(RuntimeError):
        ensure_demo_city(tmp_path, scale=SMALL)
    assert list((tmp_path / "demo").iterdir()) == []


def test_invalid_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_demo_city(tmp_path, scale=0)


def test_demo_street_network_has_blocks_dead_ends_and_one_river_crossing(tmp_path: Path) -> None:
    """The generated OSM extract parses into a walkable graph: the motorway left out, dead ends
    (nodes of degree 1) present, and the river crossed by exactly one street segment."""

    from sources.demo.generator import CENTER_LAT, CENTER_LON, KM_PER_DEG_LAT, KM_PER_DEG_LON, _river_y
    from sources.parsers.osm_streets import read_street_graph

    config = generate_demo_city(tmp_path / "demo", scale=SMALL)
    graph = read_street_graph(config.parent / "strassennetz.osm", "strassennetz.osm")
    assert graph.report["excluded_ways"] == {"highway=motorway without a foot tag": 1}
    degree = np.bincount(np.concatenate([graph.u, graph.v]), minlength=graph.n_nodes)
    assert (degree == 1).sum() > 50
    x = (graph.lon - CENTER_LON) * KM_PER_DEG_LON
    y = (graph.lat - CENTER_LAT) * KM_PER_DEG_LAT
    north = y > _river_y(x)
    assert int((north[graph.u] != north[graph.v]).sum()) == 1
    assert 140 <= np.median(graph.length_m) <= 160  # 150 m blocks
