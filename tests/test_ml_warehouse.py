"""Model <-> warehouse: load training data from a snapshot, publish a model, score all stars."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ml_synthetic import synthetic_data

from startrack.grid import NPIX
from startrack.ml.dataset import load_training_data
from startrack.ml.score import score_warehouse, train_and_publish, warehouse_predictor
from startrack.ml.train import TrainConfig
from startrack.warehouse.schema import SPECTRA
from startrack.warehouse.store import Warehouse


def _warehouse(tmp_path, n=160):
    data = synthetic_data(n, spec_fraction=0.5, seed=6)
    stars = data.stars.copy()
    ids = stars["star_id"].str.split("-", expand=True).astype(int)
    stars["plate"], stars["mjd"], stars["fiberid"] = ids[0], ids[1], ids[2]
    stars["has_spectrum"] = data.spec_row >= 0
    stars["ingest_run"] = "run1"
    wh = Warehouse(tmp_path / "wh")
    with wh.writer(command="test") as w:
        w.put_table("stars", stars)
        with_spec = stars[stars["has_spectrum"]]
        rows = data.spec_row[data.spec_row >= 0]
        m = len(rows)
        table = pa.table(
            {
                "plate": pa.array(with_spec["plate"], pa.int32()),
                "mjd": pa.array(with_spec["mjd"], pa.int32()),
                "fiberid": pa.array(with_spec["fiberid"], pa.int32()),
                "star_id": with_spec["star_id"].tolist(),
                "flux": pa.FixedSizeListArray.from_arrays(pa.array(data.flux[rows].ravel()), NPIX),
                "ivar": pa.FixedSizeListArray.from_arrays(pa.array(data.ivar[rows].ravel()), NPIX),
                "mask": pa.FixedSizeListArray.from_arrays(pa.array(data.mask[rows].ravel()), NPIX),
                "norm": pa.array(data.norm[rows], pa.float32()),
                "norm_method": ["median"] * m,
                "pix_start": pa.array([150] * m, pa.int32()),
                "pix_end": pa.array([NPIX] * m, pa.int32()),
                "exact_shift": [True] * m,
                "snr_median": pa.array(np.full(m, 20.0), pa.float32()),
                "source": ["test"] * m,
                "ingest_run": ["run1"] * m,
            }
        ).cast(SPECTRA)
        part = w.new_spectra_part(0)
        pq.write_table(table, part)
        w.add_spectra_part(part)
    return wh, data


@pytest.mark.slow
def test_train_publish_score_and_predict_from_the_warehouse(tmp_path):
    wh, data = _warehouse(tmp_path)
    loaded = load_training_data(wh.current())
    assert len(loaded.stars) == len(data.stars) and (loaded.spec_row >= 0).sum() == len(data.norm)
    r = loaded.spec_row[loaded.spec_row >= 0][0]
    sid = loaded.stars["star_id"][np.flatnonzero(loaded.spec_row >= 0)[0]]
    orig = data.spec_row[data.stars.index[data.stars["star_id"] == sid][0]]
    np.testing.assert_array_equal(loaded.mask[r], data.mask[orig])

    meta = train_and_publish(wh, TrainConfig(epochs=1, min_class_count=2), progress=False)
    models = wh.current().table("models").to_pandas()
    assert models["is_current"].tolist() == [True] and models["version"][0] == meta["version"]

    run = score_warehouse(wh, progress=False)
    snap = wh.current()
    pred = snap.table("predictions").to_pandas()
    assert run["mode"] == "full" and run["stars_scored"] == len(data.stars) == len(pred)
    assert pred["lstm_label"].notna().sum() == len(data.norm)
    assert all(len(t) == 3 for t in pred["fusion_topk_labels"])
    metrics = snap.table("metrics").to_pandas()
    assert {"dense", "lstm", "fusion"} <= set(metrics["branch"])
    assert not snap.table("confusion").to_pandas().empty

    again = score_warehouse(wh, progress=False)  # nothing changed: nothing to re-score
    assert again["mode"] == "incremental" and again["stars_scored"] == 0
    assert len(wh.current().table("predictions")) == len(data.stars)
    assert len(wh.current().table("scoring_runs")) == 2

    predictor = warehouse_predictor(wh)
    out = predictor.predict_star(data.stars.iloc[0].to_dict(), None)
    assert out["model_version"] == meta["version"] and out["branches"]["lstm"] is None
