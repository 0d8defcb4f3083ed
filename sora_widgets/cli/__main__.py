"""`python -m sora_widgets.cli`: the same as the `sora-widgets` command."""

from .commands import main

raise SystemExit(main())
