"""The only place the lab touches Hydra's private API, and only to check ``lab run`` early.

``lab.overrides`` composes a command line with Hydra's own config loader before Hydra runs it,
to reword Hydra's multi-line errors as one line. That needs names Hydra does not publish: the
loader class (``hydra._internal.config_loader_impl.ConfigLoaderImpl``, with its private
``_parse_overrides_and_create_caching_repo``), and the argument parser and search path
builders of ``hydra._internal.utils``. pyproject pins ``hydra-core`` to the minor versions
they are tested with; should another Hydra lack any of them, ``INTERNALS`` is None, the
pre-check is skipped and Hydra reports a bad override itself (over several lines, but
correctly): a moved private name never breaks ``lab run`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# the methods of the loader class the pre-check calls
LOADER_METHODS = (
    "_parse_overrides_and_create_caching_repo",
    "load_configuration",
    "validate_sweep_overrides_legal",
)


@dataclass(frozen=True)
class HydraInternals:
    """Hydra's private names, found in this installation."""

    loader_class: type  # ConfigLoaderImpl: ConfigLoaderImpl(search_path) -> loader
    compute_search_path_dir: Callable[..., Any]
    create_config_search_path: Callable[..., Any]
    get_args_parser: Callable[[], Any]

    def loader(self, search_path: Any) -> Any:
        """A config loader over ``search_path``."""
        return self.loader_class(search_path)

    def caching_repo(self, loader: Any, config_name: str, overrides: list[str]) -> Any:
        """The loader's config repository with ``hydra.searchpath`` applied (the first step
        of ``load_configuration``)."""
        return loader._parse_overrides_and_create_caching_repo(config_name, overrides)[1]


def load_internals() -> HydraInternals | None:
    """Hydra's private names, or None when this Hydra lacks any of them."""
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.utils import (
            compute_search_path_dir,
            create_config_search_path,
            get_args_parser,
        )
    except ImportError:
        return None
    if not all(callable(getattr(ConfigLoaderImpl, m, None)) for m in LOADER_METHODS):
        return None
    return HydraInternals(
        ConfigLoaderImpl, compute_search_path_dir, create_config_search_path, get_args_parser
    )


INTERNALS: HydraInternals | None = load_internals()
