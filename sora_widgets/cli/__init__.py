"""The `sora-widgets` command: generate, list and resume from a terminal, and start JupyterLab or
the Voila app with the package's notebooks. The top layer: it may import anything, nothing
imports it.
"""

from .commands import main

__all__ = ["main"]
