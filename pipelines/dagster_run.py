"""Materialise every asset in-process (what `citykpi run` does)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb
from dagster._core.errors import DagsterAssetCheckFailedError

from pipelines.assets import build_asset_checks, build_assets
from pipelines.checks import QualityResource
from pipelines.resources import CitykpiResource
from pipelines.steps import WarehouseStamp, record_run, warehouse_stamp
from sources.config import LoadedConfig
from sources.errors import CitykpiError
from warehouse.home import Home
from warehouse.quality.store import QualityGateError, blocking_failures
from warehouse.releases import Release, load_release


def _quality_gate_error(home: Home, configs: Sequence[LoadedConfig], run_id: str) -> QualityGateError:
    with home.warehouse() as con:
        return QualityGateError(run_id, blocking_failures(con, run_id, [c.city_id for c in configs]))


def _record_failed_run(home: Home, configs: Sequence[LoadedConfig], instance: dg.DagsterInstance,
                       started: datetime, stamp: WarehouseStamp, error: BaseException | None = None) -> str | None:
    runs = instance.get_runs(limit=1)
    if not runs:
        return None
    # An unusable warehouse: the error being raised says why; the run record cannot be written then.
    # A run that wrote nothing goes to the refused-runs log, leaving the warehouse file as it was.
    with contextlib.suppress(CitykpiError, duckdb.Error, OSError):
        record_run(home, runs[0].run_id, configs, "failed", started, unchanged_since=stamp, error=error)
    return runs[0].run_id


def materialize_all(home: Home, configs: Sequence[LoadedConfig], *, offline: bool = False,
                    debug: bool = False, strict: bool = False, skip_unchanged: bool = False) -> Release:
    """Run fetch -> load -> checks -> KPIs -> checks -> release for all configs; return the new release.

    A user-facing error inside an asset (bad input, missing file) is re-raised as itself so the
    CLI can print one clear message. With `strict`, a failed blocking quality check stops the run
    before anything downstream of it (Dagster's blocking asset checks) and raises QualityGateError.
    With `skip_unchanged`, a run whose inputs, code, config and data equal the latest release's writes
    no release and returns that one.
    """
    if not debug:
        logging.getLogger("dagster").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    resource = CitykpiResource(home=str(home.root), offline=offline, progress=True,
                               skip_unchanged_release=skip_unchanged)
    quality = QualityResource(strict=strict)
    started, stamp = datetime.now(UTC), warehouse_stamp(home)
    with dg.DagsterInstance.ephemeral() as instance:
        try:
            result = dg.materialize(
                [*build_assets(configs), *build_asset_checks(configs)], instance=instance,
                resources={"citykpi": resource, "quality": quality},
                tags={"citykpi/entry": "cli"},
                # The CLI prints its own progress lines; Dagster's console log only with --debug.
                run_config=None if debug else {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
        except dg.DagsterExecutionStepExecutionError as exc:
            _record_failed_run(home, configs, instance, started, stamp, exc.user_exception)
            if isinstance(exc.user_exception, CitykpiError):
                raise exc.user_exception from None
            raise
        except DagsterAssetCheckFailedError:
            # Only ERROR-severity results block, and only --strict reports failures as ERROR.
            run_id = _record_failed_run(home, configs, instance, started, stamp)
            raise _quality_gate_error(home, configs, run_id or "") from None
        except BaseException as exc:
            # Dagster 1.13 re-raises a step's own exception (a refused input's SourceDataError) as itself.
            _record_failed_run(home, configs, instance, started, stamp, exc)
            raise
        record_run(home, result.run_id, configs, "succeeded", started)
        release_events = result.asset_materializations_for_node("out__release")
    release_id = release_events[-1].metadata["release_id"].value
    return load_release(home, str(release_id))
