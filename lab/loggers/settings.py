"""The ``wandb.Settings`` of a lab run, from the logger config's switches.

``wandb.init`` is fast and quiet by default here: no console capture, no code snapshot, no
git state, no system metrics sampler, no job artifact. Three switches of the logger config
turn W&B's own collectors back on, each mapping to the settings W&B documents for it:

* ``save_code``: the main program (and ``requirements.txt``) saved with the run;
* ``git``: the repository's commit and remote recorded in the run's metadata (which then
  also names the host, OS, Python and program);
* ``system_stats``: CPU/GPU/memory/disk sampled while the run lives, and the hardware
  described in the run's metadata.

All three default to false (``conf/logger/wandb.yaml``): each one costs time at start-up or
a background process during the run, and the lab's runs already record their config and
results in their own directory.
"""

from __future__ import annotations

from typing import Any

from lab.errors import LabError

SWITCHES = ("save_code", "git", "system_stats")

# Always: quiet, no console capture, no job artifact, and every logger owns its own run even
# if another run is still open in this process.
_BASE: dict[str, Any] = {
    "silent": True,
    "quiet": True,
    "console": "off",
    "disable_job_creation": True,
    "reinit": "create_new",
}


def switches(cfg: dict[str, Any]) -> dict[str, bool]:
    """The three switches of the logger config ``cfg`` (missing ones are off)."""
    out = {}
    for key in SWITCHES:
        value = cfg.get(key) or False
        if not isinstance(value, bool):
            raise LabError(f"logger.{key} must be true or false, not {value!r}")
        out[key] = value
    return out


def settings_values(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``wandb.Settings`` values for the logger config ``cfg``."""
    on = switches(cfg)
    return _BASE | {
        "save_code": on["save_code"],
        "disable_code": not on["save_code"],
        "x_save_requirements": on["save_code"],
        "disable_git": not on["git"],
        "x_disable_stats": not on["system_stats"],
        # the metadata record carries the git state; the hardware comes with the stats
        "x_disable_machine_info": not (on["git"] or on["system_stats"]),
        "x_disable_meta": not (on["git"] or on["system_stats"]),
    }


def wandb_settings(cfg: dict[str, Any]) -> Any:
    """A ``wandb.Settings`` for the logger config ``cfg``; a value the installed wandb does
    not know is skipped rather than rejected."""
    import wandb

    fields = getattr(wandb.Settings, "model_fields", None)
    known = set(fields) if fields is not None else set(dir(wandb.Settings))
    values = settings_values(cfg)
    return wandb.Settings(**{k: v for k, v in values.items() if k in known})
