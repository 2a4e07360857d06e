"""Decoding lab: decoder architectures x search algorithms x tasks, measured exactly."""

import lab.metrics  # noqa: F401  (registers metrics)
import lab.models  # noqa: F401  (registers architectures)
import lab.search  # noqa: F401  (registers searches and their plug-ins)
import lab.tasks  # noqa: F401  (registers tasks)

__version__ = "0.1.0"
