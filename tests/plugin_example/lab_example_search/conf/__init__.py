"""The package's Hydra configs (``search/capped_greedy.yaml``), on the search path through
``hydra_plugins.lab_example_search``."""
