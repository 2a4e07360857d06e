"""The recorded sha256 of the downloadable data are those of the published files, and the
addresses they belong to do not move.

The published files are compared in the shared data directory (``LAB_TEST_DATA_DIR``, default
``/work/shared/data``), which holds byte-identical copies of them; those tests are skipped where
it is absent. How a mismatch is refused is in tests/test_download.py.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path

import pytest

from lab.download import sha256_of
from lab.tasks import babi, multi30k

DATA = Path(os.environ.get("LAB_TEST_DATA_DIR", "/work/shared/data"))
HEX64 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_SPLITS = ("train", "val", "test_2016_flickr")


def needs(folder: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (DATA / folder).is_dir(),
        reason=f"{DATA / folder} not found (set LAB_TEST_DATA_DIR to the data directory)",
    )


def test_multi30k_downloads_from_a_fixed_commit():
    assert re.fullmatch(r"[0-9a-f]{40}", multi30k.COMMIT)
    assert f"/multi30k/dataset/{multi30k.COMMIT}/" in multi30k.BASE_URL
    assert multi30k.Multi30k.base_url == multi30k.BASE_URL
    assert multi30k.BASE_URL.startswith("https://")


def test_multi30k_has_a_hash_for_every_file_of_the_default_splits():
    expected = {f"{split}.{lang}.gz" for split in DEFAULT_SPLITS for lang in multi30k.LANGS}
    assert set(multi30k.SHA256) == expected
    assert all(HEX64.match(h) for h in multi30k.SHA256.values())


def test_babi_hashes_cover_every_1k_file_and_the_10k_test_files():
    sums = babi.member_sha256()
    assert all(HEX64.match(h) for h in sums.values())
    for stem in babi.STEMS.values():
        for name in (f"en/{stem}_train.txt", f"en/{stem}_test.txt", f"en-10k/{stem}_test.txt"):
            assert name in sums
    same = "qa1_single-supporting-fact_test.txt"
    assert sums[f"en-10k/{same}"] == sums[f"en/{same}"]  # identical in the release


@needs("multi30k")
@pytest.mark.parametrize("name", sorted(multi30k.SHA256))
def test_multi30k_hash_is_the_published_file_s(name: str):
    assert sha256_of(DATA / "multi30k" / name) == multi30k.SHA256[name]


@needs("babi")
def test_babi_hashes_are_the_published_files():
    checked = []
    for name, expected in babi.member_sha256().items():
        path = DATA / "babi" / name
        if path.is_file():
            data = path.read_bytes()
        elif path.with_name(path.name + ".gz").is_file():  # the shared copy of a large file
            data = gzip.decompress(path.with_name(path.name + ".gz").read_bytes())
        else:
            assert name.startswith("en-10k/"), f"{name} is missing from {DATA / 'babi'}"
            continue  # the shared en-10k copy is partial
        assert hashlib.sha256(data).hexdigest() == expected, name
        checked.append(name)
    # en-10k: the 4 train files with a hash and the 5 test files the shared copy has
    assert sum(name.startswith("en-10k/") for name in checked) >= 4 + 5
