"""The warehouse contract: the docs are generated from it, and snapshots hold exactly it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from fits_factory import spec_name, write_spec

from startrack.etl.ingest import ingest
from startrack.warehouse import contract
from startrack.warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[1]


def test_readme_and_architecture_are_generated_from_the_contract():
    for rel, render in contract.DOCS.items():
        text = (ROOT / rel).read_text()
        assert contract.render_into(text, render()) == text, (
            f"{rel} differs from startrack/warehouse/contract.py: "
            "run `python -m startrack.warehouse.contract --write`"
        )


def test_markdown_names_every_column_with_its_sql_type():
    out = subprocess.run(
        [sys.executable, "-m", "startrack.warehouse.contract", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for table in contract.TABLES.values():
        assert f"### `{table.name}` — " in out
        for column in table.columns:
            assert f"| {column.name} | " in out
    assert "| topk | STRUCT(label VARCHAR, prob DOUBLE)[] |" in out
    assert "| flux | FLOAT[4671] |" in out


def test_an_ingest_publishes_every_table_with_its_declared_types(tmp_path):
    write_spec(tmp_path / spec_name(1000, 52000, 7), fiber=7, subclass="K3")
    wh = Warehouse(tmp_path / "wh")
    assert ingest(wh, spectra=[tmp_path], progress=False).usable
    snap = wh.current()
    assert set(snap.tables) == set(contract.STORED_TABLES)
    for name in contract.STORED_TABLES:
        file_schema = pq.read_schema(snap.table_path(name))
        assert [(f.name, f.type) for f in file_schema] == [
            (f.name, f.type) for f in contract.schema(name)
        ], name
    con = duckdb.connect(str(snap.db_path), read_only=True)
    try:  # SQL over the model's tables works before any model exists
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (0,)
        assert con.execute("SELECT star_id FROM stars").fetchall() == [("1000-52000-0007",)]
        assert con.execute("SELECT count(*) FROM spectra").fetchone() == (1,)
    finally:
        con.close()


def test_the_dashboard_reads_an_older_snapshot_without_the_model_tables(tmp_path):
    """Snapshots published before the contract lack empty ML tables; pages still work."""
    from startrack.dashboard import data

    write_spec(tmp_path / spec_name(1000, 52000, 7), fiber=7, subclass="K3")
    wh = Warehouse(tmp_path / "wh")
    ingest(wh, spectra=[tmp_path], progress=False)
    snap = wh.current()
    db = snap.db_path
    db.chmod(0o644)
    con = duckdb.connect(str(db))
    for name in ("predictions", "models", "metrics", "scoring_runs"):
        con.execute(f"DROP TABLE {name}")
    con.close()
    data.configure(wh.root)
    assert data.star_predictions(snap, "1000-52000-0007").empty
    assert data.model_versions(snap) == ()
    assert isinstance(data.runs_tables(snap)["scoring_runs"], pd.DataFrame)
    points = data.explore_points(snap)
    assert points["star_id"].tolist() == ["1000-52000-0007"] and points["predicted"].isna().all()
