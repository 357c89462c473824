"""`citykpi run`: materialise the deployment's asset graph (pipelines/city_assets.py) in process.

The same assets and checks as the deployment, not partitioned (`RUN_ASSETS`, `RUN_CHECKS`): each asset
execution hands every city of the configs given (and each of its reporting years) to one batched stage
function, and Dagster stores one event per asset, not one per city and year. Three Dagster runs on a
fresh ephemeral instance:

    1. raw/snapshots, core/observations + the core checks
    2. out/kpi_values, out/scores + the kpis checks
    3. out/release

One citykpi run id (the `runs` table, kpi_values.run_id, quality_results.run_id, the release's
run_id) spans the three Dagster runs. A blocking check that fails under --strict stops the run
before the next Dagster run starts (no release).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import duckdb
from dagster._core.errors import DagsterAssetCheckFailedError

from canonical.errors import CitykpiError
from pipelines.steps import WarehouseStamp, record_run, warehouse_stamp
from publish.releases import Release, load_release
from quality.store import QualityGateError, blocking_failures
from sources.config import LoadedConfig
from warehouse.home import Home

# The graph's modules are imported inside the functions: after materialize_all has silenced Dagster's
# beta / preview warnings (partitioned checks, backfill policies), which a command line should not print.


def cli_assets() -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """The deployment's assets and checks, not partitioned (`RUN_ASSETS`, `RUN_CHECKS`: one run over every
    city of the configs given, one Dagster event per asset); the fetch without its retry policy (the
    deployment retries a city's fetch after about a minute; a command line reports the failure at once)."""
    from pipelines.city_assets import RUN_ASSETS, RUN_CHECKS

    return [*RUN_ASSETS, *RUN_CHECKS]


def run_plan() -> list[list[dg.AssetKey]]:
    """The assets of each Dagster run of `citykpi run`, in order: a stage's checks finish (and, with
    --strict, may stop the run) before the next Dagster run starts."""
    from pipelines.city_assets import CORE, KPI, RAW, RELEASE, SCORES

    return [[RAW, CORE], [KPI, SCORES], [RELEASE]]


def _quality_gate_error(home: Home, configs: Sequence[LoadedConfig], run_id: str) -> QualityGateError:
    with home.warehouse() as con:
        return QualityGateError(run_id, blocking_failures(con, run_id, [c.city_id for c in configs]))


def _record_failed_run(home: Home, configs: Sequence[LoadedConfig], run_id: str, started: datetime,
                       stamp: WarehouseStamp, error: BaseException | None = None) -> None:
    # An unusable warehouse: the error being raised says why; the run record cannot be written then.
    # A run that wrote nothing goes to the refused-runs log, leaving the warehouse file as it was.
    with contextlib.suppress(CitykpiError, duckdb.Error, OSError):
        record_run(home, run_id, configs, "failed", started, unchanged_since=stamp, error=error)


def materialize_all(home: Home, configs: Sequence[LoadedConfig], *, offline: bool = False,
                    debug: bool = False, strict: bool = False, skip_unchanged: bool = False,
                    every_city: bool = False) -> Release:
    """Run fetch -> load -> checks -> KPIs -> checks -> scores -> release for all configs; return the release.

    A user-facing error inside an asset (bad input, missing file, a failed fetch) is re-raised as a
    CitykpiError so the CLI can print one clear message. With `strict`, a failed blocking quality check
    stops the run before anything downstream of it (Dagster's blocking asset checks) and raises
    QualityGateError. With `skip_unchanged`, a run whose inputs, code, config and data equal the latest
    release's writes no release and returns that one. With `every_city`, a run over many cities still
    prints each city's progress lines (pipelines/progress.py).
    """
    if not debug:
        logging.getLogger("dagster").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    from pipelines.checks import QualityResource
    from pipelines.resources import CitykpiResource

    run_id = f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    resources = {"citykpi": CitykpiResource(home=str(home.root), offline=offline, progress=True,
                                            skip_unchanged_release=skip_unchanged,
                                            configs=[str(c.path) for c in configs], run_id=run_id,
                                            every_city=every_city),
                 "quality": QualityResource(strict=strict)}
    # The CLI prints its own progress lines; Dagster's console log only with --debug.
    run_config: Any = None if debug else {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    assets = cli_assets()
    # The run is recorded at its end, so that a refused one can leave the warehouse file untouched.
    started, stamp = datetime.now(UTC), warehouse_stamp(home)
    result = None
    with dg.DagsterInstance.ephemeral() as instance:
        try:
            for selection in run_plan():
                result = dg.materialize(assets, selection=selection, instance=instance, resources=resources,
                                        tags={"citykpi/entry": "cli", "citykpi/run_id": run_id},
                                        run_config=run_config)
        except dg.DagsterExecutionStepExecutionError as exc:
            _record_failed_run(home, configs, run_id, started, stamp, exc.user_exception)
            inner = exc.user_exception
            if isinstance(inner, CitykpiError):
                raise inner from None
            if isinstance(inner, dg.Failure) and inner.description:  # failed fetches, named per city/source
                raise CitykpiError(inner.description) from None
            raise
        except dg.Failure as exc:  # raised as itself by an in-process run: failed fetches, named per city/source
            _record_failed_run(home, configs, run_id, started, stamp, exc)
            raise CitykpiError(exc.description or str(exc)) from None
        except DagsterAssetCheckFailedError:
            # Only ERROR-severity results block, and only --strict reports failures as ERROR.
            _record_failed_run(home, configs, run_id, started, stamp)
            raise _quality_gate_error(home, configs, run_id) from None
        except BaseException as exc:
            _record_failed_run(home, configs, run_id, started, stamp, exc)
            raise
        record_run(home, run_id, configs, "succeeded", started)
        assert result is not None
        release_events = result.asset_materializations_for_node("out__release")
    release_id = release_events[-1].metadata["release_id"].value
    return load_release(home, str(release_id))
