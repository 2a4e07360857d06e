"""The Hydra application behind ``lab run``: compose the config, run one job of a sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lab.errors import LabError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _group_and_launcher() -> tuple[str | None, str]:
    hc = HydraConfig.get()
    launcher = str(hc.runtime.choices.get("hydra/launcher", "basic"))
    group = None
    if str(hc.mode) == "RunMode.MULTIRUN":
        group = Path(hc.sweep.dir).name
    return group, launcher


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import lab  # noqa: F401  (registers the plugins)
    from lab.pipeline import run

    group, launcher = _group_and_launcher()
    group = cfg.logger.get("group") or cfg.get("experiment_name") or group
    try:
        return run(cfg, Path(HydraConfig.get().runtime.output_dir), group, launcher)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
