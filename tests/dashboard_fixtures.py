"""A small real warehouse for the dashboard tests, made by the real pipeline end to end.

simulate_survey -> ingest -> train_and_publish (a short training, baselines included) ->
score_warehouse: every table the dashboard reads is what users get, and "re-run inference"
must reproduce the stored predictions of the current model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from startrack.etl.ingest import ingest
from startrack.ml.publish import train_and_publish
from startrack.ml.score import score_warehouse
from startrack.ml.train_config import TrainConfig
from startrack.simulator.simulate import simulate_survey
from startrack.warehouse.store import Warehouse

N_STARS = 400
N_SPECTRA = 120


def build_dashboard_warehouse(root: Path, work: Path) -> Path:
    survey = work / "survey"
    # exact templates: the dashboard's template fit then has an exact answer to show
    simulate_survey(survey, n_stars=N_STARS, n_spectra=N_SPECTRA, seed=1, templates=None,
                    labels_from=None, workers=1, variety=False)  # fmt: skip
    wh = Warehouse(root)
    report = ingest(wh, catalogs=[survey / "catalog.csv"], spectra=[survey / "spectra"],
                    workers=1, progress=False)  # fmt: skip
    assert report.status == "ok", report.summary()
    train_and_publish(wh, TrainConfig(epochs=2, min_class_count=3, seed=1), progress=False)
    score_warehouse(wh, progress=False)
    return root


@pytest.fixture(scope="session")
def dashboard_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dashboard")
    return build_dashboard_warehouse(work / "wh", work)


@pytest.fixture(scope="session")
def dashboard_app(dashboard_warehouse: Path):
    """The Dash app over the fixture warehouse (one per process: Dash Pages are global)."""
    from startrack.dashboard.serve import create_app

    return create_app(dashboard_warehouse)
