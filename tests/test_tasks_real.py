"""The file-backed tasks on the real data sets (``LAB_TEST_DATA_DIR``, default the shared data).

Nothing is downloaded here: ``LAB_OFFLINE=1`` is set, so a missing file must fail clearly.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.registry import TASKS
from lab.tasks.babi import BAbI
from lab.tasks.multi30k import Multi30k
from lab.tasks.parallel import Parallel
from lab.tasks.squad import SQuAD

DATA = Path(os.environ.get("LAB_TEST_DATA_DIR", "/work/shared/data"))
pytestmark = pytest.mark.skipif(
    not (DATA / "multi30k").is_dir(),
    reason=f"real data not found at {DATA} (set LAB_TEST_DATA_DIR to the data directory)",
)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_OFFLINE", "1")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# --- multi30k -------------------------------------------------------------------------------
def test_multi30k_de_en_val(cache: Path):
    task = TASKS.build("multi30k", DATA, cache)
    val = task.examples("val")
    assert len(val) == 1014
    assert val[0].src == "Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen"
    assert val[0].tgt == "A group of men are loading cotton onto a truck"
    assert val[0].refs == (val[0].tgt,) and val[0].id == "val-0"
    assert (task.train_split, task.valid_split, task.test_split) == (
        "train",
        "val",
        "test_2016_flickr",
    )
    assert len(task.examples("test_2016_flickr")) == 1000


def test_multi30k_other_pair_and_signature(cache: Path):
    task = Multi30k(DATA, cache, src="en", tgt="fr")
    assert task.examples("val")[0].src == "A group of men are loading cotton onto a truck"
    assert task.signature() == Multi30k(DATA, cache, src="en", tgt="fr", seed=3).signature()
    assert task.signature() != Multi30k(DATA, cache).signature()


def test_multi30k_split_missing_for_language(cache: Path):
    task = Multi30k(DATA, cache, src="cs", tgt="en")
    assert "test_2017_mscoco" not in task.splits() and "test_2018_flickr" in task.splits()
    with pytest.raises(LabError, match="no 'cs' side .*exists for de, en, fr") as info:
        task.examples("test_2017_mscoco")
    assert "test_2016_flickr" in str(info.value)
    with pytest.raises(LabError, match="valid splits: train, val"):
        task.examples("dev")


def test_multi30k_missing_file_offline(cache: Path):
    with pytest.raises(LabError) as info:
        Multi30k(DATA, cache).examples("test_2017_flickr")
    message = str(info.value)
    assert "test_2017_flickr.de.gz" in message and str(DATA / "multi30k") in message
    assert "raw.githubusercontent.com/multi30k/dataset" in message
    assert str(cache / "data" / "multi30k") in message  # where it would go: data dir read-only


def test_multi30k_bad_options(cache: Path):
    with pytest.raises(LabError, match="valid: en, de, fr, cs"):
        Multi30k(DATA, cache, src="es")
    with pytest.raises(LabError, match="valid options: src, tgt"):
        Multi30k(DATA, cache, lang="de")


# --- bAbI -----------------------------------------------------------------------------------
def test_babi_task1(cache: Path):
    task = BAbI(DATA, cache, task_id=1)
    test = task.examples("test")
    assert len(test) == 1000
    assert test[0].src == (
        "John travelled to the hallway. Mary journeyed to the bathroom. Where is John?"
    )
    assert test[0].tgt == "hallway" and test[0].refs == ("hallway",)
    train, valid = task.examples("train"), task.examples("valid")
    assert (len(train), len(valid)) == (900, 100)  # the last 20 of 200 stories
    assert len({e.id for e in train + valid}) == 1000
    assert task.default_metrics == ("squad", "babi")


def test_babi_context_is_story_so_far(cache: Path):
    test = BAbI(DATA, cache, task_id=1).examples("test")
    # the second question of the first story sees four statements, no earlier question
    assert test[1].src.count(".") == 4 and "Where is John?" not in test[1].src


def test_babi_list_and_path_answers(cache: Path):
    qa8 = [e.tgt for e in BAbI(DATA, cache, task_id=8).examples("test")]
    assert "football,apple" in qa8 and sum("," in a for a in qa8) == 67
    qa19 = [e.tgt for e in BAbI(DATA, cache, task_id=19).examples("test")]
    assert len(qa19) == 1000
    assert all(len(a.split(",")) == 2 and set(a.split(",")) <= set("nesw") for a in qa19)


def test_babi_10k_gzipped_train(cache: Path):
    task = BAbI(DATA, cache, task_id=2, size="10k")
    assert len(task.examples("train")) + len(task.examples("valid")) == 10000
    assert len(task.examples("test")) == 1000


def test_babi_10k_qa3_train_missing(cache: Path):
    task = BAbI(DATA, cache, task_id=3, size="10k")
    assert len(task.path("test").name) > 0
    with pytest.raises(LabError) as info:
        task.examples("train")
    message = str(info.value)
    assert "\n" not in message
    assert "qa3_three-supporting-facts_train.txt" in message and "size=1k" in message
    assert "tasks_1-20_v1-2.tar.gz" in message


def test_babi_bad_options(cache: Path):
    with pytest.raises(LabError, match="1..20"):
        BAbI(DATA, cache, task_id=21)
    with pytest.raises(LabError, match="1k, 10k"):
        BAbI(DATA, cache, size="100k")
    with pytest.raises(LabError, match="babi joint must be true or false"):
        BAbI(DATA, cache, joint="yes")
    with pytest.raises(LabError, match="max_facts"):
        BAbI(DATA, cache, max_facts=-1)


def test_babi_joint_trains_on_all_twenty_tasks_and_tests_on_one(cache: Path):
    """Joint: the training and validation splits are the 20 tasks' (each input opened by its
    task token), the test split is task ``task_id``'s alone, in the same format."""
    task = BAbI(DATA, cache, task_id=7, joint=True)
    train, valid, test = (task.examples(s) for s in ("train", "valid", "test"))
    # each task keeps its last 10% of stories for validation (stories hold 1-5 questions)
    assert (len(train), len(valid), len(test)) == (18022, 1978, 1000)
    assert {e.src.split()[0] for e in train} == {f"task{i}" for i in range(1, 21)}
    assert all(e.src.startswith("task7 ") for e in test)
    single = BAbI(DATA, cache, task_id=7).examples("test")
    assert [e.src for e in test] == ["task7 " + e.src for e in single]
    assert [e.tgt for e in test] == [e.tgt for e in single]
    assert len({e.id for e in train + valid}) == 20000  # ids name their task


def test_babi_joint_tasks_share_one_signature_so_one_model(cache: Path):
    """The 20 test runs of a joint task train (and cache) one tokenizer and one model."""
    sigs = {str(BAbI(DATA, cache, task_id=t, joint=True).signature()) for t in (1, 7, 20)}
    assert len(sigs) == 1
    assert BAbI(DATA, cache, task_id=1).signature() != BAbI(DATA, cache, task_id=2).signature()
    # the options that change the training text are part of it
    base = BAbI(DATA, cache, joint=True).signature()
    assert BAbI(DATA, cache, joint=True, max_facts=50).signature() != base
    assert BAbI(DATA, cache, joint=True, facts=True).signature() != base


def test_babi_max_facts_keeps_the_last_statements_and_facts_separates_them(cache: Path):
    full = BAbI(DATA, cache, task_id=3).examples("test")
    cut = BAbI(DATA, cache, task_id=3, max_facts=5, facts=True).examples("test")
    long = max(range(len(full)), key=lambda i: full[i].src.count("."))
    segments = cut[long].src.split(" <sep> ")
    assert len(segments) == 6 and segments[-1].endswith("?")  # 5 statements, the question
    assert full[long].src.endswith(" ".join(segments))  # the last five, in story order
    assert [e.tgt for e in cut] == [e.tgt for e in full]


# --- SQuAD ----------------------------------------------------------------------------------
def test_squad_xquad_file(cache: Path):
    task = SQuAD(DATA, cache, path="squad/xquad.en.json")
    examples = task.examples("eval")
    assert len(examples) == 1190 and len({e.id for e in examples}) == 1190
    first = examples[0]
    assert first.id == "56beb4343aeaaa14008c925b" and first.tgt == "308"
    assert first.src.startswith("question: How many points did the Panthers defense surrender?")
    assert " context: The Panthers defense gave up just 308 points" in first.src
    assert task.examples("test") == examples == task.examples("valid")


def test_squad_default_file_all_answers(cache: Path):
    task = SQuAD(DATA, cache)
    examples = task.examples("eval")
    assert len(examples) == 10570 and len({e.id for e in examples}) == 10570
    assert sum(len(e.refs) for e in examples) == 34726
    assert all(e.tgt == e.refs[0] for e in examples)


def test_squad_train_split(cache: Path):
    with pytest.raises(LabError, match="set task.train_path"):
        SQuAD(DATA, cache).examples("train")
    task = SQuAD(DATA, cache, path="squad/xquad.en.json", train_path="squad/xquad.en.json")
    assert "train" in task.splits() and task.examples("train") == []  # all held out
    with pytest.raises(LabError, match="not found"):
        SQuAD(DATA, cache, path="squad/nope.json").examples("eval")


def test_squad_training_never_sees_evaluation_paragraphs(cache: Path):
    """Dev minus XQuAD: the 240 XQuAD paragraphs (all 1190 of their questions) are dropped."""
    task = SQuAD(
        DATA, cache, path="squad/xquad.en.json", train_path="squad/dev-v1.1.reconstructed.json.gz"
    )
    train, valid, held_out = (task.examples(s) for s in ("train", "valid", "eval"))
    assert len(train) + len(valid) == 10570 - 1190
    assert not {e.id for e in train + valid} & {e.id for e in held_out}
    held_contexts = {e.src.partition(" context: ")[2] for e in held_out}
    assert not {e.src.partition(" context: ")[2] for e in train + valid} & held_contexts
    assert task.signature()["minus_eval"].endswith("xquad.en.json")


def test_squad_validates_on_held_out_training_paragraphs_never_on_the_evaluation_file(
    cache: Path,
):
    """Early stopping reads valid: the questions of the last 5% of the training paragraphs,
    none of whose paragraphs is in train."""
    task = SQuAD(
        DATA, cache, path="squad/xquad.en.json", train_path="squad/dev-v1.1.reconstructed.json.gz"
    )
    train, valid = task.examples("train"), task.examples("valid")
    assert task.valid_split == "valid" and 300 < len(valid) < 700
    paragraphs = {e.src.partition(" context: ")[2] for e in valid}
    assert not paragraphs & {e.src.partition(" context: ")[2] for e in train}
    assert not {e.id for e in valid} & {e.id for e in task.examples("eval")}


def test_squad_gzip_and_absolute_path(cache: Path, tmp_path: Path):
    packed = tmp_path / "x.json.gz"
    packed.write_bytes(gzip.compress((DATA / "squad" / "xquad.en.json").read_bytes()))
    assert len(SQuAD(DATA, cache, path=str(packed)).examples("eval")) == 1190


# --- parallel -------------------------------------------------------------------------------
def test_parallel_flores_devtest(cache: Path):
    task = Parallel(
        DATA,
        cache,
        test_src="flores200/eng_Latn.devtest",
        test_tgt="flores200/deu_Latn.devtest",
    )
    test = task.examples("test")
    assert task.splits() == ["test"] and len(test) == 1012
    assert test[0].src.startswith('"We now have 4-month-old mice')
    assert test[0].tgt.startswith("„Wir haben jetzt 4 Monate alte Mäuse")


def test_parallel_path_mapping_wmt(cache: Path):
    task = Parallel(
        DATA,
        cache,
        path={"test": {"src": "wmt16/newstest2016.de", "tgt": "wmt16/newstest2016.en"}},
    )
    test = task.examples("test")
    assert len(test) == 2999
    assert (test[0].src, test[0].tgt) == ("Obama empfängt Netanyahu", "Obama receives Netanyahu")


def test_parallel_errors(cache: Path):
    mismatched = Parallel(
        DATA, cache, test_src="wmt14/newstest2014.en", test_tgt="wmt16/newstest2016.en"
    )
    with pytest.raises(LabError, match="3003 lines but .* has 2999"):
        mismatched.examples("test")
    with pytest.raises(LabError, match="set task.train_src and task.train_tgt"):
        mismatched.examples("train")
    with pytest.raises(LabError, match="unknown option 'source'"):
        Parallel(DATA, cache, source="x")
    with pytest.raises(LabError, match="has no tgt file"):
        Parallel(DATA, cache, test_src="wmt14/newstest2014.en")
    with pytest.raises(LabError, match="needs files"):
        Parallel(DATA, cache)
    with pytest.raises(LabError, match="not found"):
        Parallel(DATA, cache, test_src="nope.en", test_tgt="nope.de").examples("test")
