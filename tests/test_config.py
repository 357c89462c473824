"""sources.config: a city config loads, and every mistake fails with the file and key path named."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from canonical.errors import ConfigError
from sources.config import config_json_schema, load_city_config

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "sources" / "demo" / "city.yaml"
SCHEMA_FILE = REPO_ROOT / "docs" / "city-config.schema.json"


def minimal_config() -> dict[str, Any]:
    return {
        "config_version": 1,
        "city": {"id": "test-city", "name": "Testville", "country": "DE", "reporting_years": [2024, 2023]},
        "sources": [
            {
                "id": "stats",
                "kind": "file",
                "location": "stats.csv",
                "target": "observations",
                "observations": {
                    "layout": "wide",
                    "year_field": "Jahr",
                    "variables": {
                        "Einwohner": {"variable": "population", "unit": "persons"},
                        "Strom": {"variable": "electricity_consumption_kwh", "unit": "MWh"},
                    },
                },
            },
            {
                "id": "luft",
                "kind": "file",
                "location": "luft.parquet",
                "target": "readings",
                "readings": {
                    "station_field": "station", "time_field": "zeit", "variable_field": "code",
                    "value_field": "wert",
                    "variables": {"NO2": {"variable": "air_concentration_ugm3", "unit": "ppb", "data_point": "NO2"}},
                },
            },
        ],
    }


def write_config(tmp_path: Path, config: dict[str, Any] | str) -> Path:
    (tmp_path / "stats.csv").write_text("Jahr,Einwohner,Strom\n2023,1000,5\n", encoding="utf-8")
    (tmp_path / "luft.parquet").write_bytes(b"PAR1")
    path = tmp_path / "city.yaml"
    text = config if isinstance(config, str) else yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_loads(tmp_path: Path) -> None:
    path = write_config(tmp_path, minimal_config())
    loaded = load_city_config(path)
    assert loaded.city_id == "test-city"
    assert loaded.path == path.resolve()
    assert loaded.config.city.reporting_years == [2023, 2024]  # sorted on load
    stats, luft = loaded.config.sources
    assert stats.resolved_format == "csv"
    assert luft.resolved_format == "parquet"
    assert not stats.is_url
    assert loaded.source_path(stats) == (tmp_path / "stats.csv").resolve()
    assert stats.observations is not None
    assert stats.observations.variables["Strom"].unit == "MWh"
    assert luft.readings is not None
    assert luft.readings.variables["NO2"].data_point == "NO2"


def test_url_location_is_not_checked_as_a_file(tmp_path: Path) -> None:
    config = minimal_config()
    config["sources"][0]["location"] = "https://example.org/data/stats.csv?download=1"
    loaded = load_city_config(write_config(tmp_path, config))
    assert loaded.config.sources[0].is_url
    assert loaded.config.sources[0].resolved_format == "csv"


def test_check_files_false_skips_the_file_check(tmp_path: Path) -> None:
    config = minimal_config()
    config["sources"][0]["location"] = "nowhere.csv"
    loaded = load_city_config(write_config(tmp_path, config), check_files=False)
    assert loaded.config.sources[0].location == "nowhere.csv"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutator setting a dotted path (ints index lists) in the config dict."""

    def mutate(config: dict[str, Any]) -> None:
        parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = config
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = config
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]

    return mutate


def _duplicate_ids(config: dict[str, Any]) -> None:
    config["sources"][1]["id"] = "stats"


def _long_without_value_field(config: dict[str, Any]) -> None:
    obs = config["sources"][0]["observations"]
    obs["layout"] = "long"
    obs["variable_field"] = "Merkmal"


def _block_not_matching_target(config: dict[str, Any]) -> None:
    config["sources"][0]["areas"] = {"id_field": "bezirk"}


def _target_without_block(config: dict[str, Any]) -> None:
    config["sources"][0]["target"] = "areas"


BAD_CONFIGS = [
    pytest.param(_set("colour", "red"), "colour", "unknown key", id="unknown-top-level-key"),
    pytest.param(_set("sources.0.observations.variables.Einwohner.colour", "red"),
                 "sources[0].observations.variables.Einwohner.colour", "unknown key", id="unknown-nested-key"),
    pytest.param(_delete("sources.0.target"), "sources[0].target", "Field required", id="missing-target"),
    pytest.param(_delete("city.name"), "city.name", "Field required", id="missing-city-name"),
    pytest.param(_set("city.country", "XX"), "city.country", "not an ISO 3166-1 alpha-2", id="unknown-country"),
    pytest.param(_set("city.country", "de"), "city.country", "pattern", id="lower-case-country"),
    pytest.param(_set("city.reporting_years", [1850]), "city.reporting_years", "outside 1990-2100",
                 id="implausible-year"),
    pytest.param(_duplicate_ids, "sources", "duplicate source id 'stats'", id="duplicate-source-ids"),
    pytest.param(_set("sources.0.observations.variables.Einwohner.variable", "inhabitants_total"),
                 "sources[0].observations.variables.Einwohner.variable",
                 "unknown canonical variable 'inhabitants_total'", id="unknown-variable"),
    pytest.param(_set("sources.0.observations.variables.Einwohner.unit", "kg"),
                 "sources[0].observations.variables.Einwohner.unit",
                 "unit 'kg' cannot be converted to 'person'", id="unit-not-convertible"),
    pytest.param(_set("sources.1.readings.variables.NO2", {"variable": "air_concentration_ugm3", "unit": "ppb",
                                                            "data_point": "PM2.5"}),
                 "sources[1].readings.variables.NO2.unit", "only NO2, SO2 and O3", id="ppb-for-pm25"),
    pytest.param(_set("sources.1.readings.variables.NO2", {"variable": "air_concentration_ugm3", "unit": "ppb"}),
                 "sources[1].readings.variables.NO2.unit", "without a data_point", id="ppb-without-pollutant"),
    pytest.param(_set("sources.0.location", "missing.csv"), "sources[0].location", "file not found",
                 id="missing-file"),
    pytest.param(_set("sources.0.location", "stats.dat"), "sources[0]", "cannot tell the format",
                 id="unknown-extension"),
    pytest.param(_long_without_value_field, "sources[0].observations",
                 "layout 'long' needs variable_field and value_field", id="long-without-value-field"),
    pytest.param(_block_not_matching_target, "sources[0]", "do not match target 'observations'",
                 id="block-not-matching-target"),
    pytest.param(_target_without_block, "sources[0]", "needs a 'areas' mapping block", id="target-without-block"),
    pytest.param(_set("sources.0.kind", "ftp"), "sources[0].kind", "'file'", id="unknown-kind"),
    pytest.param(_set("sources.0.id", "Stats Office"), "sources[0].id", "pattern", id="bad-source-slug"),
    pytest.param(_set("config_version", 2), "config_version", "1", id="unsupported-version"),
]


@pytest.mark.parametrize(("mutate", "key_path", "message"), BAD_CONFIGS)
def test_invalid_config_names_file_and_key_path(tmp_path: Path, mutate: Callable[[dict[str, Any]], None],
                                                key_path: str, message: str) -> None:
    config = copy.deepcopy(minimal_config())
    mutate(config)
    path = write_config(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        load_city_config(path)
    error = info.value
    assert error.key_path == key_path
    assert message in error.message
    assert Path(error.path).name == "city.yaml"
    text = str(error)
    assert text.startswith(str(error.path))
    assert f" at {key_path}: " in text
    assert str(tmp_path.resolve()) in str(Path(error.path).resolve())


def test_union_field_error_names_the_key_not_the_union_member(tmp_path: Path) -> None:
    config = minimal_config()
    config["sources"][0]["format"] = "excel"
    config["sources"][0]["excel"] = {"sheet": [1]}
    with pytest.raises(ConfigError) as info:
        load_city_config(write_config(tmp_path, config))
    assert info.value.key_path == "sources[0].excel.sheet"


def test_numeric_code_key_is_named_as_a_key_with_a_hint(tmp_path: Path) -> None:
    config = minimal_config()
    config["sources"][0]["observations"]["variables"] = {101: {"variable": "population", "unit": "persons"}}
    with pytest.raises(ConfigError) as info:
        load_city_config(write_config(tmp_path, config))
    assert info.value.key_path == "sources[0].observations.variables.101"
    assert 'quote the key in the YAML, e.g. "101"' in info.value.message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    text = "config_version: 1\ncity:\n  id: demo\n  name: Testville: am Rhein\nsources: []\n"
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_city_config(path)
    assert info.value.key_path == "line 4"
    assert str(info.value).startswith(f"{path} at line 4: not valid YAML: mapping values are not allowed")


def test_tab_indentation_error_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "config_version: 1\ncity:\n\tid: demo\n")
    with pytest.raises(ConfigError) as info:
        load_city_config(path)
    assert info.value.key_path == "line 3"


@pytest.mark.parametrize("text", ["- just\n- a list\n", "42\n", ""], ids=["list", "scalar", "empty"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_city_config(path)
    assert info.value.key_path == ""
    assert info.value.message == "expected a mapping at the top level"
    assert str(info.value) == f"{path}: expected a mapping at the top level"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_city_config(tmp_path / "nope.yaml")


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_bytes("city:\n  name: M\xfcnster\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_city_config(path)


# ---- JSON Schema --------------------------------------------------------------------------------


def _demo_config_dict() -> dict[str, Any]:
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    rendered = re.sub(r"\{\{\s*\w+\s*\}\}", "1", text)  # generator placeholders ({{scale}}, {{stations}})
    data = yaml.safe_load(rendered)
    assert isinstance(data, dict)
    return data


def test_config_json_schema_is_valid_and_accepts_the_demo_config() -> None:
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(schema)
    demo = _demo_config_dict()
    errors = sorted(validator.iter_errors(demo), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert len(demo["sources"]) >= 5


@pytest.mark.parametrize(("location", "value"), [
    (("sources", 0, "observations", "variables", "Erwerbspersonen", "colour"), "red"),
    (("city", "country"), "germany"),
    (("sources", 1, "kind"), "ftp"),
    (("sources", 1, "csv", "decimal"), ";"),
])
def test_config_json_schema_rejects_what_the_loader_rejects(location: tuple[Any, ...], value: Any) -> None:
    validator = jsonschema.Draft202012Validator(config_json_schema())
    demo = _demo_config_dict()
    node: Any = demo
    for part in location[:-1]:
        node = node[part]
    node[location[-1]] = value
    errors = list(validator.iter_errors(demo))
    assert len(errors) == 1, [e.message for e in errors]
    # Optional blocks are anyOf [block, null], so the error may sit on the enclosing optional block.
    error_path = tuple(errors[0].absolute_path)
    assert error_path and location[: len(error_path)] == error_path, error_path


def test_demo_config_template_loads(tmp_path: Path) -> None:
    """The shipped template is valid once placeholders are rendered (file checks are for the generator)."""
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(_demo_config_dict(), allow_unicode=True), encoding="utf-8")
    loaded = load_city_config(path, check_files=False)
    assert loaded.city_id == "demo-city"
    assert [s.id for s in loaded.config.sources][:2] == ["statistik-stadt", "versorgung"]


def test_docs_schema_file_matches_code() -> None:
    if not SCHEMA_FILE.exists():
        pytest.skip(f"{SCHEMA_FILE.relative_to(REPO_ROOT)} does not exist yet (written by write_json_schema)")
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == config_json_schema()
