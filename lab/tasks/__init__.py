"""Tasks: named splits of examples with references and default metrics.

Importing this package registers every built-in task in ``lab.registry.TASKS``.
"""

from lab.tasks import babi, multi30k, parallel, squad, toy_mt, toy_qa  # noqa: F401
from lab.tasks.base import Example, Task

__all__ = ["Example", "Task"]
