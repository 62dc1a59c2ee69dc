"""Shared fixtures: the real SDSS files beside the checkout, and small warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_SDSS = Path(__file__).resolve().parents[1].parent / "shared" / "sdss"
REAL_SPEC = SHARED_SDSS / "spectra" / "spec-2942-54521-0124.fits"
REAL_TEMPLATES = SHARED_SDSS / "templates" / "spEigenStar-53724.fits"
REAL_LABELS = SHARED_SDSS / "catalog" / "star_subclass_labels.csv"
REAL_PHOTOMETRY = SHARED_SDSS / "catalog" / "star_photometry_sample.csv"


def need_shared(path: Path) -> Path:
    """Skip (with the reason) when the real SDSS fixtures beside the checkout are absent."""
    if not path.exists():
        pytest.skip(
            f"../shared/sdss not present ({path.name} missing): real SDSS fixtures unavailable"
        )
    return path


@pytest.fixture
def real_spec() -> Path:
    return need_shared(REAL_SPEC)


@pytest.fixture
def real_templates() -> Path:
    return need_shared(REAL_TEMPLATES)


@pytest.fixture
def real_labels() -> Path:
    return need_shared(REAL_LABELS)


@pytest.fixture
def real_photometry() -> Path:
    return need_shared(REAL_PHOTOMETRY)
