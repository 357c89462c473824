"""sources/parsed_configs.py: a city config's YAML data kept between runs gives the same config, the same
problems, and is never used for other bytes; data JSON would change (dates, integer keys) is not kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import sources.config
from sources.config import config_problems, load_city_config

CONFIG = """city: {id: test-city, name: Testville, country: DE, reporting_years: [2023]}
sources:
  - id: stats
    kind: file
    location: stats.csv
    target: observations
    observations:
      year_field: Jahr
      variables:
        Einwohner: {variable: population, unit: persons}
"""


@pytest.fixture
def city(tmp_path: Path) -> Path:
    folder = tmp_path / "city"
    folder.mkdir()
    (folder / "stats.csv").write_text("Jahr,Einwohner\n2023,100\n", encoding="utf-8")
    (folder / "city.yaml").write_text(CONFIG, encoding="utf-8")
    return folder / "city.yaml"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every YAML parse of the test city's config (the catalogue's own YAML is read through it too)."""
    seen: list[str] = []
    real = yaml.load

    def counting(stream: str, Loader: type) -> object:
        if isinstance(stream, str) and "test-city" in stream:
            seen.append(stream)
        return real(stream, Loader=Loader)

    monkeypatch.setattr(sources.config.yaml, "load", counting)
    return seen


def test_kept_data_gives_the_same_config_without_parsing(city: Path, tmp_path: Path, parses: list[str]) -> None:
    kept = tmp_path / "kept"
    first = load_city_config(city, parsed=kept)
    assert len(parses) == 1 and len(list(kept.glob("*.json"))) == 1
    again = load_city_config(city, parsed=kept)
    assert len(parses) == 1
    assert again == first == load_city_config(city)


def test_other_bytes_are_parsed(city: Path, tmp_path: Path, parses: list[str]) -> None:
    kept = tmp_path / "kept"
    load_city_config(city, parsed=kept)
    city.write_text(CONFIG.replace("Testville", "Otherville"), encoding="utf-8")
    assert load_city_config(city, parsed=kept).config.city.name == "Otherville"
    assert len(parses) == 2 and len(list(kept.glob("*.json"))) == 2


def test_a_damaged_entry_means_parsing(city: Path, tmp_path: Path, parses: list[str]) -> None:
    kept = tmp_path / "kept"
    first = load_city_config(city, parsed=kept)
    for damage in ("{not json", "[1, 2]", ""):
        (entry,) = kept.glob("*.json")
        entry.write_text(damage, encoding="utf-8")
        assert load_city_config(city, parsed=kept) == first
    assert len(parses) == 4


@pytest.mark.parametrize("extra", ["  founded: 1237-01-01\n", "  districts: {101: Mitte}\n"])
def test_data_json_would_change_is_not_kept(city: Path, tmp_path: Path, extra: str) -> None:
    """A date or an integer key would come back from JSON as text: such a config is parsed every time."""
    city.write_text(CONFIG.replace("reporting_years: [2023]}\n", "reporting_years: [2023]}\n"
                                   "x_notes:\n" + extra), encoding="utf-8")
    kept = tmp_path / "kept"
    config_problems(city, parsed=kept)
    assert not kept.exists() or not list(kept.glob("*.json"))


def test_a_config_with_problems_names_the_same_problems_from_kept_data(city: Path, tmp_path: Path,
                                                                        parses: list[str]) -> None:
    city.write_text(CONFIG.replace("DE", "NO"), encoding="utf-8")  # YAML 1.1 reads NO as false
    kept = tmp_path / "kept"
    first = [str(p) for p in config_problems(city, parsed=kept)[1]]
    second = [str(p) for p in config_problems(city, parsed=kept)[1]]
    assert first and second == first == [str(p) for p in config_problems(city)[1]]
    assert any("quote it" in p for p in first)
    assert len(parses) == 2  # the first read and the one without kept data
