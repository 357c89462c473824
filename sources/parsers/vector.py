"""ESRI shapefiles (a .shp with its sidecars, or a .zip holding them) and GeoPackages, via pyogrio.

pyogrio bundles GDAL, which reads every variant portals publish (the .prj in ESRI or OGC WKT, the
.cpg / DBF code page, multi-part polygons with holes, GeoPackage srs tables, several layers) with
one call, and returns WKB plus typed attribute columns without geopandas. Text attributes stay
text exactly as published (`CODDIS` = `01`). A zip is checked against zip-slip and zip bombs
before GDAL opens it, then read in place (never extracted).
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import shapely

from canonical.errors import SourceDataError
from sources.parsers.features import FeatureSet, RawFeature, parse_crs


def _zip_member(path: Path, layer: str | None, display_name: str) -> tuple[str, str | None]:
    """The GDAL path of the shapefile / GeoPackage inside a zip (checked first), and the layer left to pick
    in it: `layer` names the shapefile (its stem) when the zip holds several."""
    from sources.parsers.gtfs import check_archive

    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, display_name)
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise SourceDataError(display_name, f"not a zip archive: {exc}") from None
    members = [n for n in names if n.lower().endswith((".shp", ".gpkg")) and not n.startswith("__MACOSX/")]
    if not members:
        raise SourceDataError(display_name, f"the zip holds no .shp or .gpkg; entries are {names[:20]}")
    if len(members) > 1:
        stems = {PurePosixPath(m).stem: m for m in members}
        if layer not in stems:
            raise SourceDataError(display_name, f"the zip holds {len(members)} shapefiles / GeoPackages "
                                  f"{members}; set `layer` to one of {sorted(stems)}")
        return f"/vsizip/{path}/{stems[layer]}", None
    member = members[0]
    if member.lower().endswith(".gpkg"):
        return f"/vsizip/{path}/{member}", layer
    if layer not in (None, PurePosixPath(member).stem):
        raise SourceDataError(display_name, f"layer {layer!r} not found; the zip holds the one shapefile {member}")
    return f"/vsizip/{path}/{member}", None


def _layer(path: str | Path, layer: str | None, display_name: str) -> str | None:
    import pyogrio

    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # GDAL raises DataSourceError and others for unreadable files
        raise SourceDataError(display_name, f"cannot open as a shapefile / GeoPackage: {exc}") from None
    if layer is not None:
        if layer not in layers:
            raise SourceDataError(display_name, f"layer {layer!r} not found; layers are {layers}")
        return layer
    if len(layers) > 1:
        raise SourceDataError(display_name, f"the file holds {len(layers)} layers {layers}; set `layer`")
    if not layers:
        raise SourceDataError(display_name, "the file holds no layer")
    return None


def _cell(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def read_vector(path: Path, layer: str | None, display_name: str) -> FeatureSet:
    """Every feature of one layer, in the file's own CRS (declared in .prj / the GeoPackage)."""
    import pyogrio.raw

    dataset: str | Path = path
    if path.suffix.lower() == ".zip":
        dataset, layer = _zip_member(path, layer, display_name)
    elif path.suffix.lower() == ".shp":
        for sidecar in (".shx", ".dbf"):
            if not any(p.suffix.lower() == sidecar and p.stem == path.stem for p in path.parent.iterdir()):
                raise SourceDataError(display_name, f"the shapefile's {path.stem}{sidecar} is missing beside it "
                                      "(kind 'file' lands the sidecars with the .shp; over HTTP, fetch the .zip)")
    chosen = _layer(dataset, layer, display_name)
    try:
        meta, _, wkb, columns = pyogrio.raw.read(dataset, layer=chosen)
    except Exception as exc:
        raise SourceDataError(display_name, f"cannot read features: {exc}") from None
    names = [str(n) for n in meta["fields"]]
    crs = parse_crs(meta["crs"], display_name, "file's declared CRS") if meta.get("crs") else None
    origin = "GeoPackage srs" if path.suffix.lower() == ".gpkg" else ".prj"
    features = []
    geometries = wkb if wkb is not None else [None] * (len(columns[0]) if columns else 0)
    for index, blob in enumerate(geometries):
        geometry, problem = None, None
        if blob is not None:
            try:
                geometry = shapely.from_wkb(blob)
            except shapely.errors.GEOSException as exc:
                problem = f"unreadable geometry ({exc})"
        properties = {name: _cell(column[index]) for name, column in zip(names, columns, strict=True)}
        features.append(RawFeature(index + 1, f"feature {index + 1}", properties, geometry, problem))
    return FeatureSet(display_name, features, crs, origin, names)
