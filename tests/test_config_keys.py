"""A key added with ``+`` under ``train`` or ``model`` that the trainer or the architecture
does not take is refused like a misspelled key: one line naming the valid keys, before any
tokenizer or model is trained and before the checkpoint cache gets a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import lab  # noqa: F401 - registers every plugin
from lab.config_checks import check_config
from lab.errors import LabError
from tests.helpers.configs import resolved
from tests.helpers.lab_process import lab as lab_process
from tests.helpers.lab_process import tiny


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+train.foo=1", "train: unknown key 'foo'"),
        ("+train.max_step=1", "Did you mean 'train.max_steps'"),
        ("+model._target_=x", "model=transformer: unknown key '_target_'"),
        ("+model.d_modle=8", "Did you mean 'd_model'"),
    ],
)
def test_an_unknown_train_or_model_key_is_refused(override: str, message: str) -> None:
    with pytest.raises(LabError, match="unknown key") as info:
        check_config(resolved(override))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_known_key_of_every_model_passes() -> None:
    for model in ("transformer", "gru", "lstm", "decoder_only"):
        check_config(resolved(f"model={model}"))


def test_plus_train_foo_fails_in_one_line_and_leaves_no_cache_directory(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for extra in ("+train.foo=1", "+model._target_=x"):
        proc = lab_process(
            ["run", *tiny(), extra, f"hydra.run.dir={tmp_path / 'r'}"], tmp_path, cache
        )
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
        assert lines[0].startswith("error: ") and "unknown key" in lines[0]
        assert "training" not in proc.stdout
        assert not (cache / "checkpoints").exists()
