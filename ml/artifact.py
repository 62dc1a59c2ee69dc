"""Model artifacts: weights as a plain state_dict (no pickled code) + model.json metadata.

model.json carries everything needed to rebuild and use the model: version, labels, feature
names and normalization stats, the wavelength grid, hyper-parameters, temperatures, metrics,
the data snapshot id and the code version.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import torch

import startrack
from startrack import grid
from startrack.errors import ModelUnusable
from startrack.ml.model import ModelConfig, StarClassifier

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.pt"
META_FILE = "model.json"
ARTIFACT_FORMAT = 1


def git_commit() -> str | None:
    """Short commit of the source tree when it is a git checkout with commits, else None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def code_version() -> dict:
    return {"startrack": startrack.__version__, "git_commit": git_commit()}


def grid_meta() -> dict:
    return {"LOGLAM0": grid.LOGLAM0, "DLOGLAM": grid.DLOGLAM, "NPIX": grid.NPIX}


def weights_digest(model: torch.nn.Module) -> str:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return hashlib.blake2b(buf.getvalue(), digest_size=4).hexdigest()


def new_version(model: torch.nn.Module) -> str:
    """'m' + UTC timestamp + short hash of the weights: sortable and unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"m{stamp}-{weights_digest(model)}"


def save_artifact(directory: str | Path, model: StarClassifier, meta: dict) -> Path:
    """Write model.pt (state_dict) and model.json into directory (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    meta.setdefault("format", ARTIFACT_FORMAT)
    meta.setdefault("version", new_version(model))
    meta.setdefault("grid", grid_meta())
    meta.setdefault("code", code_version())
    meta["model_config"] = model.cfg.to_dict()
    torch.save(model.state_dict(), directory / WEIGHTS_FILE)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))
    log.info("saved model %s to %s", meta["version"], directory)
    return directory


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


class ArtifactMissing(ModelUnusable, FileNotFoundError):
    """The model directory has no model.json (exit 3)."""


def load_meta(directory: str | Path) -> dict:
    path = Path(directory) / META_FILE
    if not path.exists():
        raise ArtifactMissing(f"no {META_FILE} in {directory}: not a StarTrack model artifact")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelUnusable(f"model metadata {path} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("model_config"), dict):
        raise ModelUnusable(f"model metadata {path} is not a StarTrack model.json")
    return meta


def load_artifact(directory: str | Path) -> tuple[StarClassifier, dict]:
    """Rebuild the network from model.json and load weights safely (weights_only=True)."""
    directory = Path(directory)
    meta = load_meta(directory)
    g = meta.get("grid", grid_meta())
    if g != grid_meta():
        raise ModelUnusable(
            f"model {meta.get('version')} was trained on grid {g}, not {grid_meta()}"
        )
    weights = directory / WEIGHTS_FILE
    try:
        model = StarClassifier(ModelConfig.from_dict(meta["model_config"]))
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # whatever a tampered file makes torch raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnusable(
            f"model weights {weights} refused (tampered, truncated or from another version): "
            f"{first[:200]}; retrain with `startrack train`"
        ) from exc
    model.eval()
    return model, meta
