"""The package version, read by the build backend and recorded in every history row."""

__version__ = "0.1.0"
