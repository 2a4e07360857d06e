"""The lab's real configs composed as ``lab run`` composes them, for tests that check them."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lab.app import CONF_DIR


def composed(*overrides: str) -> DictConfig:
    """The root config with ``overrides`` applied, as Hydra's compose API builds it."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def resolved(*overrides: str) -> dict:
    """The composed config as plain containers, interpolations resolved."""
    config = OmegaConf.to_container(composed(*overrides), resolve=True)
    assert isinstance(config, dict)
    return config
