"""CKAN `filters` and free-text `where` / `q` filters are held to the URL rule: no literal credential
(issue #14: the config is published in every release)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canonical.errors import ConfigError
from connectors.replay import make_city
from sources.config import text_credentials

OBS = {"year_field": "year", "variables": {"v": {"variable": "population", "unit": "person"}}}


def _source(kind: str, block: dict[str, Any]) -> dict[str, Any]:
    return {"id": "s", "kind": kind, "target": "observations", kind: block, "observations": OBS}


REFUSED = [
    ("ckan", {"base_url": "https://data.example.org", "package": "p", "resource": "r",
              "filters": {"api_key": "abc", "year": 2020}}, "filters hold the credential parameter 'api_key'"),
    ("ckan", {"base_url": "https://data.example.org", "package": "p", "resource": "r",
              "filters": {"Token": "abc"}}, "filters hold the credential parameter 'Token'"),
    ("socrata", {"domain": "data.example.org", "dataset": "abcd-1234", "where": "year > 2019 AND api_key='abc'"},
     "where holds the credential parameter 'api_key'"),
    ("socrata", {"domain": "data.example.org", "dataset": "abcd-1234", "where": "$$app_token = 'abc'"},
     r"where holds the credential parameter '\$\$app_token'"),
    ("opendatasoft", {"base_url": "https://data.example.org", "dataset": "d", "where": 'access_token:"abc"'},
     "where holds the credential parameter 'access_token'"),
    ("ngsi_ld", {"base_url": "http://broker:1026", "type": "T", "q": 'password=="hunter2"'},
     "q holds the credential parameter 'password'"),
    ("ngsi_v2", {"base_url": "http://orion:1026", "type": "T", "q": "secret==x;year==2020"},
     "q holds the credential parameter 'secret'"),
]


@pytest.mark.parametrize(("kind", "block", "message"), REFUSED,
                         ids=["ckan-filters", "ckan-filters-case", "socrata-where", "socrata-app-token",
                              "ods-where", "ngsi-ld-q", "ngsi-v2-q"])
def test_a_literal_credential_in_a_query_filter_is_refused(tmp_path: Path, kind: str, block: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(ConfigError, match=rf"sources\[0\]: .*the '{kind}' block's {message}: credentials never "
                                          "go in the config"):
        make_city(tmp_path / "city", [_source(kind, block)])


@pytest.mark.parametrize(("kind", "block"), [
    ("ckan", {"base_url": "https://data.example.org", "package": "p", "resource": "r",
              "filters": {"district": "Mitte", "year": 2020}}),
    ("socrata", {"domain": "data.example.org", "dataset": "abcd-1234",
                 "where": "token_count > 5 AND keyword = 'secretary'"}),
    ("opendatasoft", {"base_url": "https://data.example.org", "dataset": "d", "where": "year >= 2019"}),
    ("ngsi_v2", {"base_url": "http://orion:1026", "type": "T", "q": "refKey==urn:x"}),
], ids=["ckan", "socrata", "ods", "ngsi-v2"])
def test_ordinary_query_filters_are_accepted(tmp_path: Path, kind: str, block: dict[str, Any]) -> None:
    loaded = make_city(tmp_path / "city", [_source(kind, block)])
    assert loaded.config.sources[0].kind == kind


def test_text_credentials_needs_the_name_to_stand_alone() -> None:
    assert text_credentials("key = 'x'") == "the credential parameter 'key'"
    assert text_credentials("KEY:'x'") == "the credential parameter 'KEY'"
    for harmless in ("monkey = 1", "key_figure = 2", "tokens > 3", "the secret garden", "sessionid_count=1"):
        assert text_credentials(harmless) is None, harmless
