"""DuckDB checkpoints the warehouse when a commit leaves its WAL past `checkpoint_threshold`. With DuckDB's
16 MB, about one city's load, every city's commit paid a checkpoint (about 110 ms plus its data in a
1,000-city warehouse): warehouse/db.py raises it for writers (issue #16)."""

from __future__ import annotations

from pathlib import Path

from warehouse.db import connect, transaction


def _commit_rows(path: Path, commits: int, rows: int) -> int:
    """`commits` transactions of `rows` wide rows each; the WAL's size after the last one."""
    con = connect(path)
    try:
        con.execute("CREATE TABLE IF NOT EXISTS bulk (i BIGINT, text VARCHAR)")
        for _ in range(commits):
            with transaction(con):
                # Fewer rows than a row group: DuckDB writes a bigger append straight to the file, past the WAL.
                con.execute("INSERT INTO bulk SELECT range, repeat(md5(range::VARCHAR), 8) FROM range(?)", [rows])
        wal = path.with_name(path.name + ".wal")
        return wal.stat().st_size if wal.exists() else 0
    finally:
        con.close()


def test_commits_of_a_few_cities_size_do_not_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    wal_bytes = _commit_rows(path, 4, 50_000)  # about 13 MB of WAL each
    assert wal_bytes > 40 * 1024 * 1024, f"a commit checkpointed: the WAL holds {wal_bytes:,} bytes"
    con = connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bulk").fetchall()[0][0] == 200_000
    finally:
        con.close()


def test_the_threshold_is_for_writers(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()
    for read_only, expected in ((False, "244.1 MiB"), (True, "16.0 MiB")):
        con = connect(path, read_only=read_only)
        try:
            assert con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0] == expected
        finally:
            con.close()


def test_only_uniqueness_guards_are_indexed(tmp_path: Path) -> None:
    """A checkpoint rewrites every ART index whole (duckdb/duckdb#24848): an index kept only for speed on a
    table that grows with every city (core_street_edges had one, 15.8M entries at 1,000 demo cities) is
    paid again by every load batch. Indexes stay where they refuse duplicates; zone maps find the rest."""
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()
    con = connect(path, read_only=True)
    try:
        speed_only = con.execute("SELECT table_name, index_name FROM duckdb_indexes() WHERE NOT is_unique").fetchall()
    finally:
        con.close()
    assert speed_only == []
