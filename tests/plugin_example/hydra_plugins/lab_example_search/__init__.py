"""Puts the package's configs on every Hydra app's config search path, so ``search=capped_greedy``
is an option of the lab's ``search`` group. Hydra imports every module under ``hydra_plugins``
when an app starts: this one imports nothing but Hydra."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LabExampleSearchPath(SearchPathPlugin):
    """Appends ``pkg://lab_example_search.conf`` to the config search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="lab-example-search", path="pkg://lab_example_search.conf")
