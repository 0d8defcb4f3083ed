# Jupyter server settings for the servers `sora-widgets lab` starts (and so `./scripts/demo`): it
# puts this folder first on JUPYTER_CONFIG_PATH. To get the same in your own Jupyter, add the
# folder to JUPYTER_CONFIG_PATH, or copy the line below into your jupyter_server_config.py.
#
# Every notebook is saved without execution timings, trust flags or the kernel's version, and the
# example notebooks of a sora-widgets checkout without their outputs, so running them leaves
# `git status` clean. Your own notebooks keep their outputs.
c = get_config()  # type: ignore[name-defined]  # noqa: F821 (Jupyter defines get_config for its config files)
c.ContentsManager.pre_save_hook = "sora_widgets.cli.jupyter.pre_save_hook"
