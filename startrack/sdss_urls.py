"""Where SDSS keeps a star: SkyServer SQL/explore URLs and SAS spec-lite paths, in one place.

``startrack fetch`` downloads from these URLs and the dashboard links to them, so a star page
and a download can never disagree about where a file lives. The layout is the SAS's
(data.sdss.org/sas/drNN/...):

- SDSS-I/II (run2d ``26``, and ``103``/``104`` for SEGUE):
  ``sdss/spectro/redux/RUN2D/spectra/lite/PLATE4/spec-PLATE4-MJD-FIBER4.fits``
- BOSS/eBOSS (run2d ``v5_*``): ``eboss/spectro/redux/RUN2D/spectra/lite/PLATE/...``
"""

from __future__ import annotations

import re

DEFAULT_RELEASE = 17
SKYSERVER_URL = "https://skyserver.sdss.org"
SAS_URL = "https://data.sdss.org/sas"
#: the BOSS/eBOSS reduction that a release serves, for stars whose run2d is unknown
BOSS_RUN2D = {16: "v5_13_0", 17: "v5_13_2"}
#: the SDSS-I/II reductions (the SAS keeps them under sdss/, everything newer under eboss/)
LEGACY_RUN2D = ("26", "103", "104")
#: BOSS plates start at 3000-something; SDSS-I/II plates end at 3006
FIRST_BOSS_PLATE = 3500

#: BOSS reductions start at v5_4 (code 400); SDSS-I/II codes are 26, 103, 104
_FIRST_BOSS_CODE = 200
_BOSS_RUN2D = re.compile(r"^v(\d+)_(\d+)_(\d+)$")


def spec_name(plate: int, mjd: int, fiber: int) -> str:
    """spec-PLATE4-MJD5-FIBER4.fits, the SAS's file name (plates past 9999 keep 5 digits)."""
    return f"spec-{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}.fits"


def normalize_run2d(run2d: object) -> str:
    """'26', 26, b'26', ' v5_13_2 ' -> the SAS's spelling; ValueError when it is not a run2d."""
    if isinstance(run2d, bytes):
        run2d = run2d.decode()
    text = str(run2d).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # a CSV reader made it a float
        text = text[:-2]
    if not (text.isdigit() or _BOSS_RUN2D.match(text)):
        raise ValueError(f"not an SDSS run2d: {run2d!r}")
    return text


def is_legacy(run2d: str) -> bool:
    """SDSS-I/II reductions are plain numbers; BOSS/eBOSS ones are v5_*."""
    return normalize_run2d(run2d).isdigit()


def sas_spec_lite_path(plate: int, mjd: int, fiber: int, run2d: object, release: int) -> str:
    """The spec-lite file's path below the SAS root, e.g. dr17/sdss/spectro/redux/26/..."""
    run = normalize_run2d(run2d)
    survey = "sdss" if is_legacy(run) else "eboss"
    return (
        f"dr{int(release)}/{survey}/spectro/redux/{run}/spectra/lite/"
        f"{int(plate):04d}/{spec_name(plate, mjd, fiber)}"
    )


def sas_spec_lite_url(
    plate: int,
    mjd: int,
    fiber: int,
    run2d: object,
    release: int = DEFAULT_RELEASE,
    sas_url: str = SAS_URL,
) -> str:
    return f"{sas_url.rstrip('/')}/{sas_spec_lite_path(plate, mjd, fiber, run2d, release)}"


def skyserver_sql_url(release: int = DEFAULT_RELEASE, skyserver_url: str = SKYSERVER_URL) -> str:
    """SkyServer's SQL search web service (answers ``cmd=SQL&format=csv``)."""
    return f"{skyserver_url.rstrip('/')}/dr{int(release)}/SkyServerWS/SearchTools/SqlSearch"


def explore_url(
    plate: int,
    mjd: int,
    fiber: int,
    release: int = DEFAULT_RELEASE,
    skyserver_url: str = SKYSERVER_URL,
) -> str:
    """SkyServer's Explore page of one spectrum (summary, images, links to everything else)."""
    return (
        f"{skyserver_url.rstrip('/')}/dr{int(release)}/VisualTools/explore/summary"
        f"?plate={int(plate)}&mjd={int(mjd)}&fiber={int(fiber)}"
    )


# ----------------------------------------------------------------------------- specObjID
def _run2d_code(run2d: str) -> int:
    m = _BOSS_RUN2D.match(run2d)
    if m:
        major, minor, patch = map(int, m.groups())
        return (major - 5) * 10_000 + minor * 100 + patch
    return int(run2d)


def encode_specobjid(plate: int, mjd: int, fiber: int, run2d: object) -> int:
    """SDSS's bit-packed specObjID (DR8+): plate<<50 | fiber<<38 | (mjd-50000)<<24 | run2d<<10."""
    code = _run2d_code(normalize_run2d(run2d))
    return (int(plate) << 50) | (int(fiber) << 38) | ((int(mjd) - 50_000) << 24) | (code << 10)


def decode_specobjid(specobjid: object) -> tuple[int, int, int, str] | None:
    """(plate, mjd, fiber, run2d) packed in a DR8+ specObjID; None if it is not one."""
    try:
        sid = int(str(specobjid).strip())
    except (TypeError, ValueError):
        return None
    code = (sid >> 10) & 0x3FFF
    if sid <= 0 or not code:
        return None
    plate, fiber, mjd = sid >> 50, (sid >> 38) & 0xFFF, ((sid >> 24) & 0x3FFF) + 50_000
    if code < _FIRST_BOSS_CODE:  # SDSS-I/II: the number itself (26, 103, 104)
        run2d = str(code)
    else:  # v5_*: (major-5)*10000 + minor*100 + patch
        major, rest = divmod(code, 10_000)
        run2d = f"v{major + 5}_{rest // 100}_{rest % 100}"
    return plate, mjd, fiber, run2d


def run2d_from_specobjid(specobjid: object) -> str | None:
    """The reduction a specObjID was made by ('26', 'v5_13_2'); None if it is not one."""
    decoded = decode_specobjid(specobjid)
    return decoded[3] if decoded else None


def guess_run2d(
    plate: int,
    mjd: int,
    fiber: int,
    specobjid: object = None,
    release: int = DEFAULT_RELEASE,
) -> str:
    """run2d from the specObjID when it really is this spectrum's, else from the plate number
    (SEGUE plates, run2d 103/104, are then guessed as 26)."""
    decoded = decode_specobjid(specobjid) if specobjid not in (None, "") else None
    if decoded and decoded[:3] == (int(plate), int(mjd), int(fiber)):
        return decoded[3]
    if int(plate) < FIRST_BOSS_PLATE:
        return "26"
    return BOSS_RUN2D.get(int(release), BOSS_RUN2D[DEFAULT_RELEASE])


def star_links(
    plate: int, mjd: int, fiber: int, specobjid: object = None, release: int = DEFAULT_RELEASE
) -> dict[str, str]:
    """The public pages of one star: SkyServer's Explore page and its SAS spec-lite file."""
    run2d = guess_run2d(plate, mjd, fiber, specobjid, release)
    return {
        "skyserver": explore_url(plate, mjd, fiber, release),
        "sas": sas_spec_lite_url(plate, mjd, fiber, run2d, release),
    }
