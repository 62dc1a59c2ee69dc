"""Where things live: the warehouse directory resolution shared by every command."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

ENV_WAREHOUSE = "STARTRACK_WAREHOUSE"
#: The default warehouse, relative to the working directory: data next to where you run
#: StarTrack, but never inside a source package.
DEFAULT_WAREHOUSE = os.path.join("data", "warehouse")
#: The default before ``data/warehouse``: the same folder as the ``warehouse/`` source package.
#: A warehouse found there is still used, so nobody loses data by upgrading.
LEGACY_WAREHOUSE = "warehouse"
#: Where `startrack simulate` and `startrack demo` write the demo survey unless told otherwise.
DEFAULT_SURVEY = "demo-survey"


def warehouse_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """--warehouse DIR, else $STARTRACK_WAREHOUSE, else ./data/warehouse (or an old ./warehouse).

    ``./warehouse`` is chosen only when it holds a published warehouse (a CURRENT file) and
    ``./data/warehouse`` does not; a log line says so. (Not moved for the user: a snapshot's
    ``spectra`` view names its part files by absolute path.)
    """
    value = cli_value or os.environ.get(ENV_WAREHOUSE)
    if value:
        return Path(value).expanduser().resolve()
    new, old = Path(DEFAULT_WAREHOUSE).resolve(), Path(LEGACY_WAREHOUSE).resolve()
    if not (new / "CURRENT").is_file() and (old / "CURRENT").is_file():
        log.info(
            "using the warehouse in %s, the old default location (new warehouses go to "
            "./%s); set %s=%s to keep it whatever the default",
            old,
            DEFAULT_WAREHOUSE,
            ENV_WAREHOUSE,
            old,
        )
        return old
    return new
