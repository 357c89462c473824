"""A finished release copied to object storage (S3 or any location warehouse/objectstore.py opens).

Layout under the destination, the same as `<home>/releases/`:

    <dest>/<release_id>/...            every file of the release; `manifest.json` written last
    <dest>/latest                      a text object holding the newest release id, written after it

A reader that finds `<id>/manifest.json` finds every file the manifest lists; a reader of `latest` finds
a complete release. An existing release is never overwritten (ids are unique; a second upload of the
same release only fills in what is missing and checks the manifest is the same).
"""

from __future__ import annotations

from publish.releases import LATEST, Release
from warehouse.objectstore import ObjectStoreError, get_bytes, location, put_bytes, put_file, walk_files

MANIFEST = "manifest.json"


def upload_release(release: Release, dest: str) -> str:
    """Copy the release under `dest` (manifest last), then point `latest` at it unless a newer release
    is already there. Returns the release's remote location."""
    loc = location(dest)
    manifest = (release.path / MANIFEST).read_bytes()
    remote = get_bytes(loc, f"{release.release_id}/{MANIFEST}")
    if remote is not None and remote != manifest:
        raise ObjectStoreError(f"{loc.display(release.release_id)} already holds a different release with this id")
    for path in walk_files(release.path):
        relative = path.relative_to(release.path).as_posix()
        if relative != MANIFEST:
            put_file(loc, f"{release.release_id}/{relative}", path)
    put_file(loc, f"{release.release_id}/{MANIFEST}", release.path / MANIFEST)
    current = (get_bytes(loc, LATEST) or b"").decode("utf-8").strip()
    if not current or current < release.release_id:   # ids sort in publication order
        put_bytes(loc, LATEST, (release.release_id + "\n").encode("utf-8"))
    return loc.display(release.release_id)
