"""Spectrum files -> stars/spectra rows: the real SDSS file, its gzip copy, and every bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fits_factory import spec_name, write_spec

from startrack import grid
from startrack.etl.spec_reader import read_spec, read_spec_astropy
from startrack.etl.spectra import SpecResult, process_spec_file
from startrack.warehouse.contract import SPECTRA, STARS


def _only_reason(result: SpecResult) -> str:
    assert result.star is None and result.spectrum is None
    assert len(result.rejects) == 1 and result.rejects[0]["item"] == "file"
    return result.rejects[0]["reason"]


def _gzip(src: Path, dest: Path) -> Path:
    with open(src, "rb") as fin, gzip.open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dest


# --------------------------------------------------------------------------- the real file


def test_real_spec_lite_gives_the_documented_star(real_spec):
    result = process_spec_file(real_spec)
    assert result.rejects == []
    star = result.star
    assert (star["plate"], star["mjd"], star["fiberid"]) == (2942, 54521, 124)
    assert star["star_id"] == "2942-54521-0124"
    assert star["class"] == "STAR" and star["subclass"] == "G2"
    assert star["label"] == "G2" and star["label_family"] == "MK"
    assert star["spectral_type"] == 42
    assert star["elodie_sptype"] == "F8"
    assert star["snr"] == pytest.approx(94.3, abs=0.05)
    assert star["z"] == pytest.approx(-1.83e-5, rel=1e-2)
    assert star["specobjid"] == "3312431686641281024"
    assert star["ra"] == pytest.approx(71.274207) and star["dec"] == pytest.approx(-6.777797)
    assert star["has_spectrum"] is True and star["source"] == str(real_spec)
    # SPECTROFLUX g = 1877.7 nanomaggies -> 22.5 - 2.5 log10(1877.7) = 14.316
    assert star["mag_g"] == pytest.approx(14.316, abs=1e-3)
    assert 13 < star["mag_z"] < star["mag_u"] < 16  # a G star: brighter in red than in u
    assert set(star) == set(STARS.names) - {"ingest_run"}


def test_real_spectrum_is_sane_and_exactly_placed(real_spec):
    spec = process_spec_file(real_spec).spectrum
    raw = read_spec(real_spec)
    assert set(spec) == set(SPECTRA.names) - {"ingest_run"}
    assert spec["exact_shift"] is True
    start, end = spec["pix_start"], spec["pix_end"]
    assert end - start == raw.flux.size == 3829
    np.testing.assert_array_equal(spec["flux"][start:end], raw.flux)  # no interpolation
    wave = grid.wavelength()
    assert wave[start] == pytest.approx(3807, abs=2) and wave[end - 1] == pytest.approx(9192, abs=2)
    for key, dtype in (("flux", np.float32), ("ivar", np.float32), ("mask", np.bool_)):
        assert spec[key].dtype == dtype and spec[key].shape == (grid.NPIX,)
    covered = spec["mask"][start:end]
    assert (~covered).mean() > 0.95  # the WHOPPER flag on the red half is informational only
    assert spec["mask"][:start].all() and np.isnan(spec["flux"][:start]).all()
    assert (spec["ivar"][spec["mask"]] == 0).all()
    assert spec["norm"] > 0 and spec["norm_method"] == "median_unmasked"
    assert spec["snr_median"] == pytest.approx(94.3, rel=0.02)  # agrees with SN_MEDIAN_ALL


def test_gzipped_copy_gives_the_same_rows(real_spec, tmp_path):
    gz = _gzip(real_spec, tmp_path / (real_spec.name + ".gz"))
    plain, packed = process_spec_file(real_spec), process_spec_file(gz)
    assert packed.rejects == []
    assert {k: v for k, v in packed.star.items() if k != "source"} == {
        k: v for k, v in plain.star.items() if k != "source"
    }
    for key in ("flux", "ivar", "mask"):
        np.testing.assert_array_equal(packed.spectrum[key], plain.spectrum[key])


@pytest.mark.parametrize("compress", [False, True])
def test_fast_reader_agrees_with_astropy_and_fitsio(real_spec, tmp_path, compress):
    path = _gzip(real_spec, tmp_path / "x.fits.gz") if compress else real_spec
    fast, ref = read_spec(path), read_spec_astropy(path)
    for key in ("loglam", "flux", "ivar", "and_mask"):
        np.testing.assert_array_equal(getattr(fast, key), getattr(ref, key))
    assert fast.specobj.keys() == ref.specobj.keys()
    for key, value in fast.specobj.items():
        np.testing.assert_array_equal(value, ref.specobj[key])
    assert fast.primary_ids == ref.primary_ids == {"plate": 2942, "mjd": 54521, "fiberid": 124}
    fitsio = pytest.importorskip("fitsio")
    coadd = fitsio.read(str(real_spec), ext="COADD", columns=["flux", "and_mask"])
    np.testing.assert_array_equal(fast.flux, coadd["flux"])
    np.testing.assert_array_equal(fast.and_mask, coadd["and_mask"])


def test_boss_archetype_subclass_is_normalized(tmp_path):
    path = write_spec(tmp_path / spec_name(3600, 55200, 900), 3600, 55200, 900, "K3V (32147)")
    star = process_spec_file(path).star
    assert star["subclass"] == "K3V (32147)"
    assert (star["label"], star["spectral_type"], star["luminosity_class"]) == ("K3", 53, "V")


# --------------------------------------------------------------------------- identity


def test_identity_from_file_name_when_specobj_is_absent(tmp_path):
    path = write_spec(tmp_path / spec_name(500, 51900, 12), specobj=False)
    result = process_spec_file(path)
    assert result.rejects == []
    assert result.star["star_id"] == "0500-51900-0012"
    assert result.star["label"] is None and result.star["snr"] > 0
    assert result.spectrum["star_id"] == "0500-51900-0012"


def test_file_name_and_specobj_disagreeing_is_rejected(tmp_path):
    path = write_spec(tmp_path / spec_name(1000, 52000, 2), plate=1000, mjd=52000, fiber=1)
    reason = _only_reason(process_spec_file(path))
    assert "identity mismatch" in reason
    assert "1000-52000-0001" in reason and "1000-52000-0002" in reason


def test_wrong_file_name_without_specobj_is_rejected(tmp_path):
    path = write_spec(tmp_path / "mystery.fits", specobj=False)
    assert "file name does not match spec-PLATE-MJD-FIBER" in _only_reason(process_spec_file(path))


def test_wrong_file_name_with_specobj_is_fine(tmp_path):
    path = write_spec(tmp_path / "renamed.fits", plate=77, mjd=51000, fiber=3)
    assert process_spec_file(path).star["star_id"] == "0077-51000-0003"


# --------------------------------------------------------------------------- bad files


def test_empty_file(tmp_path):
    path = tmp_path / "spec-0001-50000-0001.fits"
    path.touch()
    assert _only_reason(process_spec_file(path)) == "empty file (0 bytes)"


def test_non_fits_file(tmp_path):
    path = tmp_path / "spec-0001-50000-0001.fits"
    path.write_text("plate,mjd,fiberid\n1,2,3\n" * 200)
    assert "not a FITS file" in _only_reason(process_spec_file(path))


def test_missing_file_is_a_reject_not_an_exception(tmp_path):
    assert "cannot read file" in _only_reason(process_spec_file(tmp_path / "nope.fits"))


@pytest.mark.parametrize("keep", [100, 2880 * 3 + 17, 60_000])
def test_truncated_file(real_spec, tmp_path, keep):
    path = tmp_path / real_spec.name
    path.write_bytes(real_spec.read_bytes()[:keep])
    assert "truncated" in _only_reason(process_spec_file(path))


def test_truncated_gzip(real_spec, tmp_path):
    gz = _gzip(real_spec, tmp_path / "full.fits.gz")
    path = tmp_path / (real_spec.name + ".gz")
    path.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    reason = _only_reason(process_spec_file(path))
    assert "truncated" in reason or "corrupt" in reason


def test_missing_coadd_hdu(tmp_path):
    path = tmp_path / spec_name(1, 50000, 1)
    table = fits.BinTableHDU.from_columns([fits.Column("PLATE", "J", array=[1])], name="SPECOBJ")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    assert "no COADD HDU (file has: PRIMARY, SPECOBJ)" in _only_reason(process_spec_file(path))


def test_missing_coadd_columns(tmp_path):
    path = tmp_path / spec_name(1, 50000, 1)
    cols = [
        fits.Column("flux", "E", array=np.ones(10, np.float32)),
        fits.Column("loglam", "E", array=3.6 + 1e-4 * np.arange(10, dtype=np.float32)),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="COADD")]).writeto(
        path
    )
    assert "COADD HDU lacks column(s) ivar" in _only_reason(process_spec_file(path))


def test_arrays_of_mismatched_length(tmp_path):
    path = tmp_path / spec_name(1, 50000, 1)
    cols = [
        fits.Column("flux", "2E", array=np.ones((10, 2), np.float32)),
        fits.Column("loglam", "E", array=3.6 + 1e-4 * np.arange(10, dtype=np.float32)),
        fits.Column("ivar", "E", array=np.ones(10, np.float32)),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="COADD")]).writeto(
        path
    )
    assert "mismatched length" in _only_reason(process_spec_file(path))


def test_non_monotonic_loglam(tmp_path):
    path = write_spec(tmp_path / spec_name(1000, 52000, 1))
    with fits.open(path, mode="update") as hdul:
        hdul["COADD"].data["loglam"][100] = hdul["COADD"].data["loglam"][99] - 1e-4
    assert "loglam is not strictly increasing" in _only_reason(process_spec_file(path))


def test_no_overlap_with_the_grid(tmp_path):
    path = write_spec(tmp_path / spec_name(1000, 52000, 1), loglam0=4.2, npix=500)
    reason = _only_reason(process_spec_file(path))
    assert "no overlap with the common grid" in reason and "15849" in reason


def test_some_nan_flux_is_masked_not_rejected(tmp_path):
    flux = np.full(3800, 10.0)
    flux[100:200], flux[300] = np.nan, np.inf
    path = write_spec(tmp_path / spec_name(1000, 52000, 1), flux=flux)
    spec = process_spec_file(path).spectrum
    start = spec["pix_start"]
    assert spec["mask"][start + 100 : start + 200].all() and spec["mask"][start + 300]
    assert (spec["ivar"][start + 100 : start + 200] == 0).all()
    assert not spec["mask"][start + 250] and spec["norm"] == pytest.approx(10.0)


def test_all_nan_flux_is_rejected(tmp_path):
    path = write_spec(tmp_path / spec_name(1000, 52000, 1), flux=np.full(3800, np.nan))
    assert "flux is NaN or inf in all 3,800 pixels" in _only_reason(process_spec_file(path))


def test_all_zero_ivar_is_rejected(tmp_path):
    path = write_spec(tmp_path / spec_name(1000, 52000, 1), ivar=np.zeros(3800))
    assert "all-zero ivar" in _only_reason(process_spec_file(path))


def test_results_pickle(real_spec):
    import pickle

    result = process_spec_file(real_spec)
    again = pickle.loads(pickle.dumps(result))
    np.testing.assert_array_equal(again.spectrum["flux"], result.spectrum["flux"])


def test_scaled_columns_fall_back_to_astropy(tmp_path):
    """An unsigned and_mask (TZERO) is a layout the fast path leaves to astropy."""
    n = 500
    and_mask = np.zeros(n, dtype=np.uint32)
    and_mask[10] = 1 << 23  # BRIGHTSKY: a real bad-pixel bit
    cols = [
        fits.Column("flux", "E", array=np.full(n, 5.0, np.float32)),
        fits.Column("loglam", "E", array=(3.6 + 1e-4 * np.arange(n)).astype(np.float32)),
        fits.Column("ivar", "E", array=np.ones(n, np.float32)),
        fits.Column("and_mask", "J", bzero=2**31, array=and_mask),
    ]
    path = tmp_path / spec_name(1, 50000, 1)
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="COADD")]).writeto(
        path
    )
    assert "TZERO4" in fits.getheader(path, "COADD")
    data = read_spec(path)
    np.testing.assert_array_equal(data.and_mask, and_mask)
    spec = process_spec_file(path).spectrum
    assert spec["mask"][spec["pix_start"] + 10] and not spec["mask"][spec["pix_start"] + 11]
