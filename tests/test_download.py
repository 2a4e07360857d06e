"""Downloads against a real local HTTP server: caching, fallbacks, failures, safe extraction,
and the sha256 check of the files from the pinned addresses."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import lab.tasks.babi as babi
import lab.tasks.multi30k as multi30k_module
from lab.download import ChecksumError, DownloadError, download, fetch_or_locate, is_offline
from lab.errors import LabError
from lab.io import unwritable
from lab.tasks.babi import BAbI
from lab.tasks.multi30k import Multi30k

VAL_DE = ["Ein Hund läuft.", "Zwei Katzen schlafen.", "Ein Kind spielt."]
VAL_EN = ["A dog runs.", "Two cats sleep.", "A child plays."]
BABI_TRAIN = (
    "1 Mary moved to the bathroom.\n2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "1 Sandra journeyed to the garden.\n2 Where is Sandra? \tgarden\t1\n"
)
BABI_TEST = "1 Daniel went to the office.\n2 Where is Daniel? \toffice\t1\n"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    claimed_length: int | None = None  # Content-Length to send (default: the true one)
    delay: float = 0.0


@dataclass
class Server:
    url: str
    routes: dict[str, Route]
    hits: Counter = field(default_factory=Counter)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            server.hits[self.path] += 1
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            time.sleep(route.delay)
            self.send_response(route.status)
            length = route.claimed_length if route.claimed_length is not None else len(route.body)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(route.body)  # then the connection closes (HTTP/1.0)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="", routes={})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_OFFLINE", raising=False)


def _gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)


@pytest.fixture
def multi30k(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    server.routes["/m30k/val.de.gz"] = Route(_gz(VAL_DE))
    server.routes["/m30k/val.en.gz"] = Route(_gz(VAL_EN))
    monkeypatch.setenv("LAB_MULTI30K_URL", server.url + "/m30k")
    return server


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "readonly-data"
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def _leftovers(directory: Path) -> list[str]:
    """Files in ``directory`` other than lock files."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


# --- the Multi30k task ----------------------------------------------------------------------
def test_download_into_data_dir_then_reuse(tmp_path: Path, multi30k: Server):
    data, cache = tmp_path / "data", tmp_path / "cache"
    examples = Multi30k(data, cache).examples("val")
    assert [(e.src, e.tgt) for e in examples] == list(zip(VAL_DE, VAL_EN, strict=True))
    assert _leftovers(data / "multi30k") == ["val.de.gz", "val.en.gz"]
    assert not (cache / "data").exists()
    assert sum(multi30k.hits.values()) == 2

    again = Multi30k(data, cache).examples("val")
    assert again == examples
    assert sum(multi30k.hits.values()) == 2  # served from disk, server not asked again


def test_read_only_data_dir_falls_back_to_cache(
    tmp_path: Path, multi30k: Server, read_only_dir: Path
):
    cache = tmp_path / "cache"
    assert unwritable(read_only_dir) == f"{read_only_dir} is not writable"
    assert len(Multi30k(read_only_dir, cache).examples("val")) == 3
    assert list(read_only_dir.iterdir()) == []
    assert _leftovers(cache / "data" / "multi30k") == ["val.de.gz", "val.en.gz"]
    Multi30k(read_only_dir, cache).examples("val")
    assert sum(multi30k.hits.values()) == 2


def test_404_is_a_lab_error(tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAB_MULTI30K_URL", server.url + "/nowhere")
    with pytest.raises(LabError, match="HTTP 404") as info:
        Multi30k(tmp_path / "data", tmp_path / "cache").examples("val")
    assert "\n" not in str(info.value) and "/nowhere/val.de.gz" in str(info.value)
    assert _leftovers(tmp_path / "data" / "multi30k") == []


def test_offline_names_directory_and_url(
    tmp_path: Path, multi30k: Server, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LAB_OFFLINE", "1")
    assert is_offline()
    with pytest.raises(LabError) as info:
        Multi30k(tmp_path / "data", tmp_path / "cache", src="en", tgt="de").examples("val")
    message = str(info.value)
    assert "\n" not in message and "LAB_OFFLINE" in message
    assert str(tmp_path / "data" / "multi30k") in message
    assert f"{multi30k.url}/m30k/val.en.gz" in message
    assert sum(multi30k.hits.values()) == 0


def test_no_network_is_a_lab_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LAB_MULTI30K_URL", "http://127.0.0.1:9/closed")  # discard port: refused
    with pytest.raises(LabError, match="no network"):
        Multi30k(tmp_path / "data", tmp_path / "cache").examples("val")


# --- download() itself ----------------------------------------------------------------------
def test_truncated_transfer_leaves_nothing(tmp_path: Path, server: Server):
    body = b"x" * 1000
    server.routes["/cut"] = Route(body, claimed_length=5000)
    dest = tmp_path / "dl" / "file.bin"
    with pytest.raises(DownloadError, match="incomplete|cut off"):
        download(server.url + "/cut", dest)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_download_atomic_and_idempotent(tmp_path: Path, server: Server):
    server.routes["/f"] = Route(b"payload" * 1000)
    dest = tmp_path / "f.bin"
    assert download(server.url + "/f", dest) == dest
    assert dest.read_bytes() == b"payload" * 1000
    mtime = dest.stat().st_mtime_ns
    download(server.url + "/f", dest)  # already there: not fetched again
    assert server.hits["/f"] == 1 and dest.stat().st_mtime_ns == mtime


def test_concurrent_downloads_fetch_once(tmp_path: Path, server: Server):
    server.routes["/slow"] = Route(b"z" * 4096, delay=0.3)
    dest = tmp_path / "slow.bin"
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            fetch_or_locate("slow.bin", [tmp_path], server.url + "/slow")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and dest.read_bytes() == b"z" * 4096
    assert server.hits["/slow"] == 1


def test_fetch_or_locate_prefers_existing(tmp_path: Path, server: Server):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("here")
    found = fetch_or_locate("x.txt", [tmp_path / "a", tmp_path / "b"], server.url + "/x")
    assert found == tmp_path / "b" / "x.txt" and sum(server.hits.values()) == 0


def test_offline_flag_values(monkeypatch: pytest.MonkeyPatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False)]:
        monkeypatch.setenv("LAB_OFFLINE", value)
        assert is_offline() is expected


def test_writable_dir_checks_nearest_existing_parent(tmp_path: Path, read_only_dir: Path):
    assert unwritable(tmp_path / "not" / "yet") is None
    assert unwritable(read_only_dir / "sub") == f"{read_only_dir} is not writable"
    assert stat.S_IMODE(read_only_dir.stat().st_mode) == 0o555


# --- sha256 checks --------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_with_the_recorded_sha256_is_kept_and_reused(tmp_path: Path, server: Server):
    body = b"the published file" * 100
    server.routes["/f"] = Route(body)
    dest = tmp_path / "cache" / "f.bin"
    assert download(server.url + "/f", dest, sha256=_sha256(body)) == dest
    assert dest.read_bytes() == body
    download(server.url + "/f", dest, sha256=_sha256(body))
    assert server.hits["/f"] == 1


def test_download_with_another_sha256_is_refused_and_leaves_nothing(tmp_path: Path, server: Server):
    server.routes["/f"] = Route(b"tampered")
    expected = _sha256(b"the published file")
    dest = tmp_path / "cache" / "f.bin"
    with pytest.raises(ChecksumError) as info:
        download(server.url + "/f", dest, sha256=expected)
    message = str(info.value)
    assert "\n" not in message
    assert f"{server.url}/f" in message
    assert f"expected {expected}, got {_sha256(b'tampered')}" in message
    assert "data directory" in message  # the fix
    assert not dest.exists() and _leftovers(dest.parent) == []
    with pytest.raises(ChecksumError):  # refused again, not served from a half-kept copy
        fetch_or_locate("f.bin", [tmp_path / "cache"], server.url + "/f", sha256=expected)
    assert _leftovers(dest.parent) == []


@pytest.fixture
def pinned_multi30k(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """Multi30k's pinned address served locally, with the served files' hashes recorded."""
    monkeypatch.setattr(Multi30k, "base_url", server.url + "/pinned")
    for name, lines in (("val.de.gz", VAL_DE), ("val.en.gz", VAL_EN)):
        server.routes[f"/pinned/{name}"] = Route(_gz(lines))
        monkeypatch.setitem(multi30k_module.SHA256, name, _sha256(_gz(lines)))
    return server


def test_multi30k_from_the_pinned_address_is_checked(tmp_path: Path, pinned_multi30k: Server):
    examples = Multi30k(tmp_path / "data", tmp_path / "cache").examples("val")
    assert [e.src for e in examples] == VAL_DE
    assert _leftovers(tmp_path / "data" / "multi30k") == ["val.de.gz", "val.en.gz"]


def test_multi30k_tampered_file_is_one_line_and_not_kept(tmp_path: Path, pinned_multi30k: Server):
    pinned_multi30k.routes["/pinned/val.de.gz"] = Route(_gz(["Ein Hund fliegt."]))
    data = tmp_path / "data"
    with pytest.raises(LabError) as info:
        Multi30k(data, tmp_path / "cache").examples("val")
    message = str(info.value)
    assert "\n" not in message
    assert f"{pinned_multi30k.url}/pinned/val.de.gz" in message
    expected = multi30k_module.SHA256["val.de.gz"]
    got = _sha256(_gz(["Ein Hund fliegt."]))
    assert f"expected {expected}, got {got}" in message
    assert str(data / "multi30k") in message  # where to put a trusted copy
    assert _leftovers(data / "multi30k") == []


def test_multi30k_from_an_address_of_ones_own_is_not_checked(
    tmp_path: Path, pinned_multi30k: Server, monkeypatch: pytest.MonkeyPatch
):
    pinned_multi30k.routes["/mirror/val.de.gz"] = Route(_gz(VAL_DE[::-1]))
    pinned_multi30k.routes["/mirror/val.en.gz"] = Route(_gz(VAL_EN[::-1]))
    monkeypatch.setenv("LAB_MULTI30K_URL", pinned_multi30k.url + "/mirror")
    examples = Multi30k(tmp_path / "data", tmp_path / "cache").examples("val")
    assert [e.src for e in examples] == VAL_DE[::-1]


# --- the bAbI archive -----------------------------------------------------------------------
def _tar_gz(members: dict[str, bytes], links: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def test_babi_archive_download_and_safe_extraction(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
):
    base = "tasks_1-20_v1-2/en/"
    archive = _tar_gz(
        {
            base + "qa1_single-supporting-fact_train.txt": BABI_TRAIN.encode(),
            base + "qa1_single-supporting-fact_test.txt": BABI_TEST.encode(),
            "tasks_1-20_v1-2/en/../../../escaped.txt": b"evil",
            "/tmp/absolute-escape.txt": b"evil",
            "tasks_1-20_v1-2/hn/qa1_single-supporting-fact_test.txt": b"not wanted",
        },
        links={base + "qa2_two-supporting-facts_train.txt": "/etc/passwd"},
    )
    server.routes["/babi.tar.gz"] = Route(archive)
    monkeypatch.setenv("LAB_BABI_URL", server.url + "/babi.tar.gz")
    data, cache = tmp_path / "data", tmp_path / "cache"

    task = BAbI(data, cache, task_id=1)
    test = task.examples("test")
    assert [(e.src, e.tgt) for e in test] == [
        ("Daniel went to the office. Where is Daniel?", "office")
    ]
    assert len(task.examples("train")) + len(task.examples("valid")) == 2
    assert _leftovers(data / "babi" / "en") == [
        "qa1_single-supporting-fact_test.txt",
        "qa1_single-supporting-fact_train.txt",
    ]
    assert sorted(os.listdir(data / "babi")) == [".extract.lock", "en"]
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute-escape.txt").exists()
    assert (cache / "downloads" / "tasks_1-20_v1-2.tar.gz").is_file()

    BAbI(data, cache, task_id=1).examples("test")
    assert server.hits["/babi.tar.gz"] == 1


def test_babi_file_missing_from_archive(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
):
    server.routes["/babi.tar.gz"] = Route(_tar_gz({}, {}))
    monkeypatch.setenv("LAB_BABI_URL", server.url + "/babi.tar.gz")
    with pytest.raises(LabError, match="qa3_three-supporting-facts_train.txt is not in") as info:
        BAbI(tmp_path / "data", tmp_path / "cache", task_id=3, size="10k").examples("train")
    assert "size=1k" in str(info.value)


@pytest.fixture
def pinned_babi(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """bAbI's official address served locally, with an archive of task 1's two files."""
    base = "tasks_1-20_v1-2/en/"
    server.routes["/babi.tar.gz"] = Route(
        _tar_gz(
            {
                base + "qa1_single-supporting-fact_train.txt": BABI_TRAIN.encode(),
                base + "qa1_single-supporting-fact_test.txt": BABI_TEST.encode(),
            },
            links={},
        )
    )
    monkeypatch.setattr(BAbI, "archive_url", server.url + "/babi.tar.gz")
    return server


def test_babi_archive_from_the_official_address_is_checked(
    tmp_path: Path, pinned_babi: Server, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(babi.TRAIN_1K_SHA256, 1, _sha256(BABI_TRAIN.encode()))
    monkeypatch.setitem(babi.TEST_SHA256, 1, _sha256(BABI_TEST.encode()))
    test = BAbI(tmp_path / "data", tmp_path / "cache", task_id=1).examples("test")
    assert [e.tgt for e in test] == ["office"]


def test_babi_archive_with_a_changed_file_extracts_nothing(tmp_path: Path, pinned_babi: Server):
    data, cache = tmp_path / "data", tmp_path / "cache"
    with pytest.raises(LabError) as info:  # the recorded hashes are the real files', not these
        BAbI(data, cache, task_id=1).examples("test")
    message = str(info.value)
    assert "\n" not in message and f"{pinned_babi.url}/babi.tar.gz" in message
    assert "is not the published one" in message and "expected " in message
    assert str(data / "babi" / "en") in message  # where to put trusted files
    assert _leftovers(data / "babi" / "en") == []
    assert not (cache / "downloads" / "tasks_1-20_v1-2.tar.gz").exists()


# --- damaged local files --------------------------------------------------------------------
def test_damaged_or_misaligned_files_are_lab_errors(tmp_path: Path):
    folder = tmp_path / "data" / "multi30k"
    folder.mkdir(parents=True)
    (folder / "val.de.gz").write_bytes(b"not gzip at all")
    (folder / "val.en.gz").write_bytes(_gz(VAL_EN))
    task = Multi30k(tmp_path / "data", tmp_path / "cache")
    with pytest.raises(LabError, match="cannot read .*val.de.gz"):
        task.examples("val")
    (folder / "val.de.gz").write_bytes(_gz(VAL_DE[:2]))
    with pytest.raises(LabError, match="2 de lines but 3 en lines"):
        task.examples("val")
