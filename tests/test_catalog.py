"""Catalog exports -> stars rows: the real SDSS tables, column variants, the z rule, bad rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from startrack.etl.catalog import iter_catalog, resolve_columns, standardize_chunk
from startrack.etl.errors import CatalogError
from startrack.warehouse.contract import STARS


def _read(path: Path, chunk_rows: int = 250_000) -> tuple[pa.Table, list[dict]]:
    chunks = list(iter_catalog(path, chunk_rows=chunk_rows))
    rejects = [r for c in chunks for r in c.rejects]
    return pa.concat_tables([c.stars for c in chunks]), rejects


def _csv(tmp_path: Path, text: str, name: str = "cat.csv") -> Path:
    path = tmp_path / name
    path.write_text(text.strip() + "\n")
    return path


# --------------------------------------------------------------------------- real files


def test_real_subclass_labels(real_labels):
    stars, rejects = _read(real_labels, chunk_rows=7_000)  # several chunks
    assert rejects == [] and stars.num_rows == 30_000
    assert stars.schema == STARS
    first = stars.slice(0, 1).to_pylist()[0]
    assert (first["plate"], first["mjd"], first["fiberid"]) == (282, 51630, 558)
    assert first["star_id"] == "0282-51630-0558"
    assert first["subclass"] == "M7" and first["label"] == "M7" and first["spectral_type"] == 67
    assert len(set(stars["subclass"].to_pylist())) == 27
    subclasses = pd.Series(stars["subclass"].to_pylist()).value_counts()
    assert subclasses["A0"] == 6049 and subclasses["F5"] == 5110
    labels = pd.Series(stars["label"].to_pylist()).value_counts()
    assert labels["A0"] == subclasses["A0"] + subclasses.get("A0p", 0)  # 'A0p' -> A0


def test_real_photometry_ids_come_from_the_spectrum_url(real_photometry):
    stars, rejects = _read(real_photometry)
    assert rejects == [] and stars.num_rows == 1000
    first = stars.slice(0, 1).to_pylist()[0]
    assert first["star_id"] == "0267-51608-0128"
    assert first["specobjid"] == "300650486476859392" and first["class"] == "STAR"
    # plain u,g,r,i,z with magnitude-like z: all five are magnitudes, there is no redshift
    assert first["mag_u"] == pytest.approx(19.64961) and first["mag_z"] == pytest.approx(17.73956)
    assert stars["z"].null_count == 1000


# --------------------------------------------------------------------------- column variants


def test_casjobs_column_variants_and_mag_priority(tmp_path):
    row = {
        "PlateID": 266,
        "MJD": 51602,
        "FiberID": 3,
        "specObjID": "299489952322840576",
        "plug_ra": 146.7,
        "plug_dec": -1.04,
        "CLASS": "STAR",
        "subClass": "K3V (32147)",
        "z": 0.0001,
        "zErr": 1e-5,
        "snMedian": 25.5,
        "psfMag_g": 17.1,
        "modelMag_g": 17.3,
        "psfMagErr_g": 0.02,
        "modelMag_r": 16.9,
        "elodie": "K0III",
        "extra_col": "whatever",
    }
    path = tmp_path / "cat.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    star = _read(path)[0].to_pylist()[0]
    assert star["star_id"] == "0266-51602-0003" and star["specobjid"] == "299489952322840576"
    assert (star["ra"], star["dec"]) == (146.7, -1.04)
    assert star["label"] == "K3" and star["luminosity_class"] == "V"
    assert star["z"] == 0.0001 and star["zerr"] == 1e-5 and star["snr"] == 25.5
    assert star["mag_g"] == 17.1 and star["magerr_g"] == 0.02  # psfMag wins over modelMag
    assert star["mag_r"] == 16.9  # modelMag when it is the only r
    assert star["elodie_sptype"] == "K0III"


def test_z_is_the_redshift_when_magnitudes_come_as_psfmag(tmp_path):
    path = _csv(
        tmp_path,
        """
plate,mjd,fiberid,z,psfMag_u,psfMag_g,psfMag_r,psfMag_i,psfMag_z
266,51602,3,0.00012,19.0,18.0,17.5,17.3,17.2
""",
    )
    star = _read(path)[0].to_pylist()[0]
    assert star["z"] == 0.00012 and star["mag_z"] == 17.2


def test_plain_ugriz_with_small_z_keeps_z_as_redshift(tmp_path):
    path = _csv(
        tmp_path,
        """
plate,mjd,fiberid,u,g,r,i,z
266,51602,3,19.0,18.0,17.5,17.3,0.0002
266,51602,4,19.1,18.1,17.6,17.4,-0.0001
""",
    )
    star = _read(path)[0].to_pylist()[0]
    assert star["z"] == 0.0002 and star["mag_z"] is None and star["mag_u"] == 19.0


def test_explicit_redshift_column_makes_plain_z_a_magnitude(tmp_path):
    path = _csv(
        tmp_path,
        """
plate,mjd,fiberid,redshift,z
266,51602,3,0.0003,17.2
""",
    )
    star = _read(path)[0].to_pylist()[0]
    assert star["z"] == 0.0003 and star["mag_z"] == 17.2


def test_resolve_columns_reports_ignored_columns():
    cmap = resolve_columns(["Plate", "MJD", "fiber", "colour_of_socks"])
    assert cmap.targets["fiberid"] == "fiber" and cmap.ignored == ("colour_of_socks",)


def test_sentinel_magnitudes_become_null(tmp_path):
    path = _csv(
        tmp_path,
        """
plate,mjd,fiberid,psfMag_u,psfMagErr_u,psfMag_g
266,51602,3,-9999,-9999,9999
266,51602,4,19.5,0.05,18.2
""",
    )
    rows = _read(path)[0].to_pylist()
    assert rows[0]["mag_u"] is None and rows[0]["magerr_u"] is None and rows[0]["mag_g"] is None
    assert rows[1]["mag_u"] == 19.5


def test_skyserver_table_line_gzip_and_parquet_give_the_same_rows(tmp_path):
    text = "#Table1\nplate,mjd,fiberID,subClass,psfMag_r\n266,51602,3,A0,17.0\n266,51602,4,M2V,18\n"
    csv_path = _csv(tmp_path, text)
    gz_path = tmp_path / "cat.csv.gz"
    gz_path.write_bytes(gzip.compress(text.encode()))
    pq_path = tmp_path / "cat.parquet"
    pq.write_table(
        pa.table(
            {
                "PLATE": [266, 266],
                "MJD": [51602, 51602],
                "FIBERID": [3, 4],
                "SUBCLASS": ["A0", "M2V"],
                "psfMag_r": [17.0, 18.0],
            }
        ),
        pq_path,
    )
    expected = _read(csv_path)[0].drop(["source"])
    assert expected.num_rows == 2 and expected["label"].to_pylist() == ["A0", "M2"]
    assert _read(gz_path)[0].drop(["source"]).equals(expected)
    assert _read(pq_path)[0].drop(["source"]).equals(expected)


def test_standardize_chunk_accepts_a_dataframe():
    df = pd.DataFrame({"plate": [266], "mjd": [51602], "fiberid": [3], "subclass": ["G2"]})
    chunk = standardize_chunk(df, "frame", row_offset=10)
    assert chunk.stars.schema == STARS and chunk.stars["label"].to_pylist() == ["G2"]
    assert chunk.rows.tolist() == [11]


# --------------------------------------------------------------------------- bad input


def test_missing_id_columns_reject_the_whole_file(tmp_path):
    path = _csv(tmp_path, "plate,fiberid,subclass\n1,2,A0\n")
    with pytest.raises(CatalogError, match=r"no id columns.*columns are: plate, fiberid, subclass"):
        _read(path)


def test_empty_and_missing_files_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.touch()
    with pytest.raises(CatalogError, match="empty catalog file"):
        _read(empty)
    with pytest.raises(CatalogError, match="no such catalog file"):
        _read(tmp_path / "missing.csv")


def test_garbled_ids_are_rejected_row_by_row(tmp_path):
    path = _csv(
        tmp_path,
        """
plate,mjd,fiberid,subclass
266,51602,3,A0
abc,51602,4,A0
266,,5,A0
-1,51602,6,A0
266,51602,1001,A0
266,51602,7.5,A0
266,51602,8,F5
""",
    )
    stars, rejects = _read(path)
    assert stars["star_id"].to_pylist() == ["0266-51602-0003", "0266-51602-0008"]
    reasons = {r["item"]: r["reason"] for r in rejects}
    assert reasons == {
        "row 2": "plate 'abc' is not an integer",
        "row 3": "mjd is missing",
        "row 4": "plate must be positive (got -1)",
        "row 5": "fiberid 1001 is outside 1..1000",
        "row 6": "fiberid '7.5' is not an integer",
    }
    assert all(r["source"] == str(path) for r in rejects)


@pytest.mark.parametrize("chunk_rows", [100, 2])  # within one chunk, and across chunks
def test_duplicate_ids_keep_the_first_row(tmp_path, chunk_rows):
    path = _csv(
        tmp_path,
        """
plate,mjd,fiberid,subclass
266,51602,3,A0
266,51602,4,F5
266,51602,3,K3
266,51602,5,G2
266,51602,4,M0
""",
    )
    stars, rejects = _read(path, chunk_rows=chunk_rows)
    assert stars["subclass"].to_pylist() == ["A0", "F5", "G2"]
    assert sorted((r["item"], r["reason"]) for r in rejects) == [
        ("row 3", "duplicate id 0266-51602-0003: also at row 1"),
        ("row 5", "duplicate id 0266-51602-0004: also at row 2"),
    ]


def test_garbled_value_late_in_a_big_file_costs_one_row(tmp_path):
    lines = ["plate,mjd,fiberid,psfMag_r"]
    lines += [f"266,51602,{1 + i % 1000},{17 + i % 3}" for i in range(0, 1000)]
    lines += ["267,51602,5,not-a-number", "267,51602,oops,17"]
    path = _csv(tmp_path, "\n".join(lines))
    stars, rejects = _read(path, chunk_rows=300)
    assert stars.num_rows == 1001
    assert stars.filter(pa.compute.equal(stars["plate"], 267))["mag_r"].to_pylist() == [None]
    assert rejects == [
        {"source": str(path), "item": "row 1002", "reason": "fiberid 'oops' is not an integer"}
    ]


def test_800k_rows_stream_whole(tmp_path):
    """The full-survey catalog reads in one pass with nothing lost (its speed is measured by
    benchmarks/bench_etl.py, not here: a timed test fails on a busy machine)."""
    import numpy as np
    import pyarrow.csv as pacsv

    n = 800_000
    i = np.arange(n)
    table = pa.table(
        {
            "plate": 266 + i // 1000,
            "mjd": np.full(n, 51602),
            "fiberID": 1 + i % 1000,
            "subClass": np.array(["A0", "F5", "K3V (32147)", "M2V"])[i % 4],
            **{f"psfMag_{b}": np.round(15 + (i % 700) / 100, 2) for b in "ugriz"},
        }
    )
    path = tmp_path / "big.csv"
    pacsv.write_csv(table, path)
    stars, rejects = _read(path)
    assert stars.num_rows == n and rejects == []
    assert stars.column("fiberid").to_pylist()[-1] == 1000


def test_a_chunk_where_every_row_is_rejected_still_has_the_schema(tmp_path):
    path = _csv(tmp_path, "plate,mjd,fiberid\nx,1,1\n0,1,1\n")
    stars, rejects = _read(path)
    assert stars.num_rows == 0 and stars.schema == STARS and len(rejects) == 2
