"""Where things live: the warehouse directory resolution shared by every command."""

from __future__ import annotations

import os
from pathlib import Path

ENV_WAREHOUSE = "STARTRACK_WAREHOUSE"
DEFAULT_WAREHOUSE = "warehouse"
#: Where `startrack simulate` and `startrack demo` write the demo survey unless told otherwise.
DEFAULT_SURVEY = "demo-survey"


def warehouse_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """--warehouse DIR, else $STARTRACK_WAREHOUSE, else ./warehouse."""
    value = cli_value or os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE
    return Path(value).expanduser().resolve()
