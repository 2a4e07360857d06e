"""Check a ``lab run`` command line with Hydra itself before Hydra runs it, in one-line errors.

The config is composed here by Hydra's own config loader, through the search path that ``lab
run`` will use: the lab's configs, ``-cd/--config-dir``, ``hydra.searchpath`` and the
``SearchPathPlugin``s of installed packages (``hydra_plugins``). So whatever Hydra accepts is
accepted, a user's own config directory included; what it refuses is reworded. Hydra reports an
unknown option or key over several lines; here it becomes one line with the valid choices and a
"did you mean", in the parent process, before a sweep launches any job. Every option a sweep
names is looked up, and composed when keys are set under its group, so that a key which one
option lacks is caught too. Values are checked where they are used (a plugin's signature in
``lab.registry``, ``lab.config_checks``), not by typed schemas here: a schema would also
convert values (an int in a float field) that the checkpoint cache keys hash.

It also catches a Hydra launcher or sweeper whose plugin is not installed (the plugins are the
``sweep`` extra), which Hydra reports as a missing config over a dozen lines, and names the one
command that installs it.

``experiment=NAME`` and ``+experiment=NAME`` both work: the override is passed on in the form
the primary config takes (``+`` appends the group; a config whose defaults list has an
``experiment`` entry takes it without). Hydra refuses the other form in each case.

The package, in the order a check runs:

- ``hydra_private``: the only import of Hydra's private API, inside ``try`` (without it, no check)
- ``command_line``: Hydra's reading of the arguments and the config search path it builds
- ``plugins``: launcher and sweeper plugins, and the install command of a missing one
- ``sweeps``: parsing overrides, the options and values they name, the variants to compose
- ``compose``: composing with Hydra's loader; ``messages``: its errors in one line
- ``check``: ``check_overrides``, which ``lab run`` calls
"""

from lab.overrides.check import check_overrides
from lab.overrides.plugins import PLUGINS, SWEEP_EXTRA, Plugin

__all__ = ["PLUGINS", "SWEEP_EXTRA", "Plugin", "check_overrides"]
