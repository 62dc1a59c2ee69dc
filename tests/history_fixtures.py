"""A warehouse where two model versions were really trained and scored, one after the other.

Copied from the dashboard fixture warehouse (version 1, trained 2 epochs and scored), then a
second model is trained (1 epoch, another seed) and scored, as a user would do. The first
version's stored predictions are kept aside before the second scoring so the tests can check
the history against them by hand.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from dashboard_fixtures import dashboard_warehouse  # noqa: F401

from startrack.ml.publish import train_and_publish
from startrack.ml.score import score_warehouse
from startrack.ml.train_config import TrainConfig
from startrack.warehouse.store import Snapshot, Warehouse


@dataclass
class TwoVersions:
    root: Path
    old: str  #: the first model version
    new: str  #: the second (current) model version
    old_predictions: pd.DataFrame  #: version 1's predictions table, as published
    old_predictions_file: Path  #: a copy of that table's Parquet file
    new_predictions: pd.DataFrame  #: version 2's predictions table

    @property
    def snapshot(self) -> Snapshot:
        return Warehouse(self.root).require_current()


@pytest.fixture(scope="session")
def two_versions_warehouse(dashboard_warehouse, tmp_path_factory) -> TwoVersions:  # noqa: F811
    work = tmp_path_factory.mktemp("history")
    root = work / "wh"
    shutil.copytree(dashboard_warehouse, root, symlinks=True)
    wh = Warehouse(root)
    first = wh.require_current()
    old_file = work / "v1-predictions.parquet"
    shutil.copy(first.table_path("predictions"), old_file)
    old = pd.read_parquet(old_file)
    train_and_publish(wh, TrainConfig(epochs=1, min_class_count=3, seed=7), progress=False,
                      baselines=False)  # fmt: skip
    score_warehouse(wh, progress=False)
    new = wh.require_current().table("predictions").to_pandas()
    return TwoVersions(
        root=root,
        old=str(old["model_version"].iloc[0]),
        new=str(new["model_version"].iloc[0]),
        old_predictions=old,
        old_predictions_file=old_file,
        new_predictions=new,
    )
