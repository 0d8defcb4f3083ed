"""Research views: sweeps over prompts, settings and models, their plan, video metrics and reports.

Sits above jobs and widgets: a sweep submits jobs through the generation helper and shows itself
in a compare grid. Nothing below imports it.
"""
