"""Model <-> warehouse: load training data from a snapshot, publish a model, score all stars."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ml_synthetic import synthetic_data

from startrack.grid import NPIX
from startrack.ml.dataset import load_training_data
from startrack.ml.publish import train_and_publish
from startrack.ml.registry import warehouse_predictor
from startrack.ml.score import score_warehouse
from startrack.ml.train_config import TrainConfig
from startrack.warehouse.contract import SPECTRA
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
        w.put_table(
            "spectra_index",
            pa.table(
                {
                    "plate": table["plate"],
                    "mjd": table["mjd"],
                    "fiberid": table["fiberid"],
                    "star_id": table["star_id"],
                    "file": [part.relative_to(wh.root).as_posix()] * m,
                    "row_group": pa.array([0] * m, pa.int32()),
                    "row": pa.array(range(m), pa.int32()),
                }
            ),
        )
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
    assert (wh.root / models["path"][0] / "model.pt").exists()

    run = score_warehouse(wh, progress=False)
    snap = wh.current()
    pred = snap.table("predictions").to_pandas()
    fusion, dense, lstm = (pred[pred["branch"] == b] for b in ("fusion", "dense", "lstm"))
    assert run["mode"] == "full" and run["stars_scored"] == len(data.stars)
    # every star gets dense and fusion; only stars with a spectrum get an lstm prediction
    assert len(fusion) == len(dense) == len(data.stars) and len(lstm) == len(data.norm)
    no_spec = set(data.stars["star_id"][data.spec_row < 0])
    assert no_spec and no_spec <= set(fusion["star_id"]) and not no_spec & set(lstm["star_id"])
    assert all(1 <= len(t) <= 5 for t in fusion["topk"])
    top = fusion["topk"].iloc[0]
    assert top[0]["label"] == fusion["label"].iloc[0] and top[0]["prob"] >= top[-1]["prob"]
    assert (fusion["correct"] == (fusion["label"] == fusion["actual"])).all()
    metrics = snap.table("metrics").to_pandas()
    assert {"dense", "lstm", "fusion"} <= set(metrics["branch"])
    assert {"baseline_hgb", "baseline_pca_lr", "baseline_template"} <= set(metrics["branch"])
    assert not snap.table("confusion").to_pandas().empty

    again = score_warehouse(wh, progress=False)  # nothing changed: nothing to re-score
    assert again["mode"] == "incremental" and again["stars_scored"] == 0
    kept = wh.current().table("predictions").to_pandas()
    assert len(kept) == len(pred) and set(kept["run_id"]) == {run["run_id"]}  # untouched
    assert len(wh.current().table("scoring_runs")) == 2

    # a new ingest changes one star: only that star is re-scored
    stars = wh.current().table("stars").to_pandas()
    stars.loc[0, "ingest_run"] = "run2"
    with wh.writer(command="test: re-ingest") as w:
        w.put_table("stars", stars)
    third = score_warehouse(wh, progress=False)
    assert third["mode"] == "incremental" and third["stars_scored"] == 1
    assert len(wh.current().table("predictions")) == len(pred)
    assert score_warehouse(wh, full=True, progress=False)["stars_scored"] == len(data.stars)

    predictor = warehouse_predictor(wh)
    out = predictor.predict_star(data.stars.iloc[0].to_dict(), None)
    assert out["model_version"] == meta["version"] and out["branches"]["lstm"] is None


KILLED_SCORER = """
import sys, time
import startrack.ml.score as score
from startrack.warehouse.store import Warehouse

real = score._score_stream
def slow(*args, **kwargs):
    for table in real(*args, **kwargs):
        print("scoring", flush=True)
        time.sleep(60)
        yield table
score._score_stream = slow
score.score_warehouse(Warehouse(sys.argv[1]), full=True, progress=False)
"""


@pytest.mark.slow
def test_killed_scoring_run_leaves_previous_predictions(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    wh, _ = _warehouse(tmp_path, n=80)
    train_and_publish(wh, TrainConfig(epochs=1, min_class_count=2), progress=False, baselines=False)
    score_warehouse(wh, progress=False)
    before = (wh.current_id(), wh.current().table("predictions").to_pandas())
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SCORER, str(wh.root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "scoring"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wh.current_id() == before[0]
    assert wh.current().table("predictions").to_pandas().equals(before[1])
    assert score_warehouse(wh, full=True, progress=False)["status"] == "ok"


@pytest.mark.slow
def test_on_demand_inference_by_star_id(tmp_path):
    from startrack.ml.on_demand import StarUnknown, predict_star

    wh, data = _warehouse(tmp_path, n=80)
    with pytest.raises(LookupError, match=r"no trained model|startrack train"):
        predict_star(wh, data.stars["star_id"][0])
    train_and_publish(wh, TrainConfig(epochs=1, min_class_count=2), progress=False,
                      baselines=False)  # fmt: skip
    score_warehouse(wh, progress=False)
    stored = wh.current().table("predictions").to_pandas()
    with_spec = data.stars["star_id"][np.flatnonzero(data.spec_row >= 0)[0]]
    without = data.stars["star_id"][np.flatnonzero(data.spec_row < 0)[0]]
    out = predict_star(wh, with_spec)
    assert set(out["branches"]) == {"dense", "lstm", "fusion"} and out["latency_ms"] > 0
    for branch, pred in out["branches"].items():  # the same answer as the batch scoring
        row = stored[(stored["star_id"] == with_spec) & (stored["branch"] == branch)]
        assert pred["label"] == row["label"].iloc[0]
    assert predict_star(wh, without)["branches"]["lstm"] is None
    with pytest.raises(StarUnknown):
        predict_star(wh, "9999-99999-0999")
