"""The fixtures every test module may use: per-module directories (``root``, ``cache``), a
checkpoint of the tiny run trained once per module (``trained``), ``one_thread`` for in-process
tiny models, and the tiny Hugging Face models of ``tests/helpers/hf_models.py`` (``model_dirs``,
``models``). Plain helpers live in ``tests/helpers/`` (``lab_process`` for running ``lab``
itself), which test modules import; test modules never import one another or this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.lab_process import lab, ok, tiny

# fixtures of tests/helpers: model_dirs and models (tiny Hugging Face models, built on request)
pytest_plugins = ("tests.helpers.hf_models",)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A temporary directory for the whole module, named after it."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def cache(root: Path) -> Path:
    """The module's checkpoint cache (``LAB_CACHE_DIR``), empty at first."""
    return root / "cache"


@pytest.fixture(scope="module")
def trained(root: Path, cache: Path) -> Path:
    """``cache`` holding the tiny checkpoint, trained once for the whole module."""
    proc = ok(lab(["run", *tiny(eval__limit=1), f"hydra.run.dir={root / 'warmup'}"], root, cache))
    assert "training transformer" in proc.stdout
    return cache


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
