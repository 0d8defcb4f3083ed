"""Research views: sweeps over prompts, settings and models, their plan, video metrics and reports.

`plan.py` plans and prices a sweep, `sweeps.py` runs and reopens it, `tables.py` reads it back
(tables, grid, ratings), `metrics.py` measures videos and `report.py` writes reports. Sits above
jobs and widgets: a sweep submits jobs through the generation helper and shows itself in a compare
grid. Nothing below imports it.
"""
