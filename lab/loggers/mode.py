"""Which W&B mode a run logger uses: ``online``, ``offline`` or ``disabled``.

The configured mode may be ``auto`` (or None), which picks ``WANDB_MODE`` when that is set,
else online when W&B credentials are present locally, else offline. The credential check
never touches the network, so choosing a mode is instant and works on machines without one.
Kept apart from the loggers so the decision can be tested without starting any run.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

from lab.errors import LabError

MODES = ("auto", "online", "offline", "disabled")

DEFAULT_BASE_URL = "https://api.wandb.ai"


def wandb_logged_in() -> bool:
    """Whether W&B credentials are available locally (no network access).

    True when ``WANDB_API_KEY`` is set or the netrc file (``$NETRC``, ``~/.netrc`` or
    ``~/_netrc``) has a password for the W&B host (``WANDB_BASE_URL``, default api.wandb.ai).
    """
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).netloc
    if not host:
        return False
    candidates = (
        [Path(os.environ["NETRC"]).expanduser()]
        if os.environ.get("NETRC")
        else [Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()]
    )
    for path in candidates:
        if not path.is_file():
            continue
        try:
            creds = netrc.netrc(str(path)).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            return False
        return bool(creds and creds[2])
    return False


def resolve_mode(mode: str | None) -> str:
    """Turn the configured mode into ``online``, ``offline`` or ``disabled``."""
    if mode is None:
        mode = "auto"
    if not isinstance(mode, str) or mode not in MODES:
        raise LabError(
            f"unknown logger mode {mode!r}; use one of: {', '.join(MODES)} "
            "(e.g. logger.mode=offline)"
        )
    check_env_mode()
    if mode != "auto":
        return mode
    env_mode = {"dryrun": "offline", "run": "online"}.get(
        os.environ.get("WANDB_MODE", ""), os.environ.get("WANDB_MODE", "")
    )
    if env_mode in ("online", "offline", "disabled"):
        return env_mode
    return "online" if wandb_logged_in() else "offline"


WANDB_ENV_MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")


def check_env_mode() -> None:
    """wandb validates ``WANDB_MODE`` itself, with a pydantic traceback for a bad value: an
    empty one (``WANDB_MODE= lab run ...``) means unset, and is removed from this process's
    environment; any other value it would refuse is one line here."""
    value = os.environ.get("WANDB_MODE")
    if value == "":
        del os.environ["WANDB_MODE"]
    elif value is not None and value not in WANDB_ENV_MODES:
        raise LabError(
            f"WANDB_MODE={value!r} is not a W&B mode; set it to online, offline or disabled, "
            "or unset it."
        )
