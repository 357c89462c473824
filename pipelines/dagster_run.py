"""Materialise every asset in-process (what `citykpi run` does)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import dagster as dg

from pipelines.assets import build_assets
from pipelines.resources import CitykpiResource
from sources.config import LoadedConfig
from sources.errors import CitykpiError
from warehouse.home import Home
from warehouse.releases import Release, load_release


def materialize_all(home: Home, configs: Sequence[LoadedConfig], *, offline: bool = False,
                    debug: bool = False) -> Release:
    """Run fetch -> load -> KPIs -> release for all configs; return the new release.

    A user-facing error inside an asset (bad input, missing file) is re-raised as itself so the
    CLI can print one clear message.
    """
    if not debug:
        logging.getLogger("dagster").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    resource = CitykpiResource(home=str(home.root), offline=offline, progress=True)
    with dg.DagsterInstance.ephemeral() as instance:
        try:
            result = dg.materialize(
                build_assets(configs), instance=instance, resources={"citykpi": resource},
                tags={"citykpi/entry": "cli"},
                # The CLI prints its own progress lines; Dagster's console log only with --debug.
                run_config=None if debug else {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
        except dg.DagsterExecutionStepExecutionError as exc:
            if isinstance(exc.user_exception, CitykpiError):
                raise exc.user_exception from None
            raise
        release_events = result.asset_materializations_for_node("out__release")
    release_id = release_events[-1].metadata["release_id"].value
    return load_release(home, str(release_id))
