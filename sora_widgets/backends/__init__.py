"""Backends run generations: `fal` through fal_client's queue, `preview` offline on this machine."""
