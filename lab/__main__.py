"""``python -m lab ARGS``: the ``lab`` command, for an environment whose scripts directory is not
on ``PATH`` (or to pick the interpreter explicitly)."""

from lab.cli import main

if __name__ == "__main__":
    main()
