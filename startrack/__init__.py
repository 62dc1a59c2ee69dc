"""StarTrack: SDSS stellar classification, from survey files to a warehouse, model, dashboard."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("startrack")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
