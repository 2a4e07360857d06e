"""``lab report --html``: one self-contained page, checked as a file and in a real browser.

The runs are synthetic run directories with the files ``lab run`` writes (``results.json`` and
``predictions.jsonl`` with sources, references, hypotheses and log-probs), so the page builds
in a second. The browser test drives the system's Chromium (Debian's ``chromium`` package)
through Playwright, never a downloaded browser; it skips only when no Chromium is installed.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from sacrebleu import sentence_bleu, sentence_chrf

from lab.cli import main

SENTENCES = [  # (source, reference)
    ("Ein Mann fährt Fahrrad.", "A man is riding a bike."),
    ("Zwei Hunde spielen im Schnee.", "Two dogs are playing in the snow."),
    ("Eine Frau liest ein Buch.", "A woman is reading a book."),
    ("Kinder spielen Fußball im Park.", "Children are playing soccer in the park."),
    ("Ein Mann mit Hut.", "A man in a hat."),
    ("Eine Katze schläft auf dem Sofa.", "A cat is sleeping on the sofa."),
    ("Ein Vogel fliegt.", "A bird is flying."),
]
GREEDY = [
    "A man rides a bike.",
    "Two dogs play in snow.",
    "A woman is reading a book.",
    "Kids play football.",
    "A man in a hat.",
    "A cat sleeps.",
]
BEAM = [  # one sentence more than GREEDY; one hypothesis that looks like markup
    "A man is riding a bike.",
    "Two dogs are playing in the snow.",
    "A woman is reading a book.",
    "Children play football in a park.",
    "A man with a hat.",
    "A cat is sleeping </script><b>on</b> the sofa.",
    "A bird flies.",
]
RUNS = {  # name -> (model, search, beam size, BLEU, hypotheses; None: no predictions)
    "greedy": ("transformer", "greedy", 1, 34.0, GREEDY),
    "beam": ("transformer", "beam", 5, 36.5, BEAM),
    "lstm_greedy": ("lstm", "greedy", 1, 30.0, [h.lower() for h in GREEDY]),
    "lstm_beam": ("lstm", "beam", 5, 31.0, [h.lower() for h in BEAM]),
    "lstm_sample": ("lstm", "sample", None, 20.0, None),  # no beam: not in the plot
}


def _write_run(root: Path, name: str) -> None:
    model, search, beam, bleu, hyps = RUNS[name]
    run_dir = root / name
    (run_dir / ".hydra").mkdir(parents=True)
    config = {
        "task": {"name": "multi30k", "src": "de", "tgt": "en"},
        "model": {"name": model, "d_model": 256 if model == "transformer" else 512},
        "search": {"name": search, "max_len_a": 1.5} | ({"beam_size": beam} if beam else {}),
        "seed": 0,
        "experiment_name": "dashboard_test",
    }
    results = {
        "status": "completed",
        "task": "multi30k",
        "model": model,
        "search": search,
        "split": "test_2016_flickr",
        "config": config,
        "metrics": {"bleu": bleu, "chrf": bleu + 20, "len_ratio": 0.9 + (beam or 0) / 100},
        "n_examples": len(SENTENCES),
        "seconds": 1.0 + (beam or 0),
    }
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n", encoding="utf-8")
    if hyps is not None:
        rows = [
            {"id": f"test-{i}", "src": src, "ref": ref, "hyp": hyp, "logprob": -1.5 * (i + 1)}
            for i, ((src, ref), hyp) in enumerate(zip(SENTENCES, hyps, strict=False))
        ]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (run_dir / "predictions.jsonl").write_text(text, encoding="utf-8")
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard") / "sweep"
    for name in RUNS:
        _write_run(root, name)
    return root


def _build(sweep: Path, out: Path, *extra: str) -> Path:
    args = ["report", str(sweep), "--html", "--out", str(out), "--metric", "bleu,chrf"]
    main([*args, "--x", "search.beam_size", "--hue", "model", "--name", "dash", *extra])
    return out / "dash.html"


@pytest.fixture(scope="module")
def page_file(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(sweep, tmp_path_factory.mktemp("page"))


def _data(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="lab-data">(.*?)</script>', text, re.S)
    assert found, "no embedded data"
    return json.loads(found.group(1))


def _expected_order(score=sentence_bleu) -> list[str]:
    """Sentence ids of greedy (A) vs beam (B), sorted by B - A (rounded as the page rounds)."""
    deltas = []
    for i, ((_, ref), a) in enumerate(zip(SENTENCES, GREEDY, strict=False)):
        sa = round(score(a, [ref]).score, 2)
        sb = round(score(BEAM[i], [ref]).score, 2)
        deltas.append((-(sb - sa), i))
    return [f"test-{i}" for _, i in sorted(deltas)]


# --- the file --------------------------------------------------------------------------------
def test_html_is_one_self_contained_file(page_file: Path):
    assert sorted(p.name for p in page_file.parent.iterdir()) == ["dash.html"]
    text = page_file.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "an external reference"
    assert text.count("<svg") == 2  # one plot per metric, inline
    assert text.count("<table class='pivot'>") == 2 and "<table class='runs'>" in text


def test_sentences_are_embedded_once_and_scored_with_sacrebleu(page_file: Path):
    data = _data(page_file)
    assert len(data["sentences"]["id"]) == len(SENTENCES)  # shared by all runs, not per run
    runs = {r["name"]: r for r in data["runs"]}
    assert set(runs) == set(RUNS)
    assert "no predictions.jsonl" in runs["lstm_sample"]["missing"]
    beam = runs["beam"]["sentences"]
    assert beam["hyp"][5] == BEAM[5]  # markup survives as text, without ending the script
    for k, i in enumerate(beam["idx"]):
        ref = data["sentences"]["ref"][i]
        assert beam["bleu"][k] == round(sentence_bleu(beam["hyp"][k], ref).score, 2)
        assert beam["chrf"][k] == round(sentence_chrf(beam["hyp"][k], ref).score, 2)
    assert runs["greedy"]["sentences"]["logprob"][:2] == [-1.5, -3.0]


def test_max_sentences_caps_what_each_run_embeds(sweep: Path, tmp_path: Path):
    data = _data(_build(sweep, tmp_path, "--max-sentences", "2"))
    beam = next(r for r in data["runs"] if r["name"] == "beam")["sentences"]
    assert len(beam["hyp"]) == 2 and beam["total"] == len(BEAM)
    assert len(data["sentences"]["id"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--html"], "--html needs run or sweep directories"),
        (["report", "EMPTY", "--html"], "no completed runs"),
        (["report", "SWEEP", "--html", "--metric", "bleu,nope"], "unknown metric 'nope'"),
    ],
)
def test_user_errors_are_one_line(args, message, sweep, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    paths = {"EMPTY": str(tmp_path / "empty"), "SWEEP": str(sweep)}
    with pytest.raises(SystemExit) as exc:
        main([paths.get(a, a) for a in args] + ["--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists()


def _with_attention(sweep: Path, root: Path) -> Path:
    """The sweep with the beam run's first two predictions carrying their alignment, as
    ``eval.save_attention=true`` writes it (one token looks like markup)."""
    copy = root / "sweep"
    shutil.copytree(sweep, copy)
    path = copy / "beam" / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows[:2]:
        src, tgt = row["src"].split()[:3] + ["</s>"], ["<b>", *row["hyp"].split()[:2], "</s>"]
        weights = [[round((i + j) % 4 / 3, 3) for j in range(len(src))] for i in range(len(tgt))]
        row["attention"] = {"src": src, "tgt": tgt, "weights": weights}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return copy


def test_saved_attention_gets_an_alignment_view_and_none_without(sweep, page_file, tmp_path):
    page = _build(_with_attention(sweep, tmp_path), tmp_path / "out").read_text(encoding="utf-8")
    assert "<section id='alignment-section'>" in page
    beam = next(
        i
        for i, r in enumerate(_data(tmp_path / "out" / "dash.html")["runs"])
        if r["name"] == "beam"
    )
    for k in (0, 1):
        assert f"<details class='alignment' id='align-{beam}-{k}'>" in page
    assert "id='align-" + str(beam) + "-2'" not in page  # the third sentence saved none
    assert page.count("<table class='align'>") == 2
    assert "<th>&lt;b&gt;</th>" in page and "<th><b>" not in page  # pieces shown as text
    assert "background:rgba(9,105,218,1.00)" in page and "background:rgba(9,105,218,0.00)" in page
    plain = page_file.read_text(encoding="utf-8")
    assert "alignment-section" not in plain and "<table class='align'>" not in plain


# --- the page in a browser -------------------------------------------------------------------
def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium binary (install Debian's chromium package: apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _run_row(page, name: str):
    cell = page.locator("td:nth-child(3)", has_text=re.compile(f"^{name}$"))
    return page.locator("table.runs tbody tr").filter(has=cell)


def _column(page, header: str) -> list[str]:
    index = page.locator("table.runs thead th").all_inner_texts()
    col = [re.sub(r"\W+$", "", h).strip() for h in index].index(header)
    cells = page.locator(f"table.runs tbody tr:visible td:nth-child({col + 1})")
    return [c.get_attribute("data-v") or "" for c in cells.all()]


def test_dashboard_in_chromium(browser, page_file: Path, tmp_path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith("file:") else None)
    page.goto(page_file.as_uri())

    # the pivots and the plots render
    assert page.locator("table.pivot").count() == 2
    pivot = page.locator("table.pivot").first
    assert pivot.locator("tbody tr").count() == 2  # lstm, transformer
    assert "36.50" in pivot.inner_text()
    plots = page.locator("figure.plot svg")
    assert plots.count() == 2
    box = plots.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 150
    assert plots.first.locator("text", has_text="search.beam_size").count() >= 1

    # the runs table sorts by a column and filters by words
    assert page.locator("table.runs tbody tr").count() == len(RUNS)
    header = page.locator("table.runs thead th", has_text=re.compile(r"^bleu"))
    header.click()
    assert [float(v) for v in _column(page, "bleu")] == sorted(r[3] for r in RUNS.values())
    header.click()
    assert [float(v) for v in _column(page, "bleu")] == sorted(
        (r[3] for r in RUNS.values()), reverse=True
    )
    page.fill("#run-filter", "lstm beam")
    assert page.locator("table.runs tbody tr:visible").count() == 1
    assert page.inner_text("#run-count") == "1 of 5 runs shown"
    page.fill("#run-filter", "")
    assert page.locator("table.runs tbody tr:visible").count() == len(RUNS)
    no_preds = _run_row(page, "lstm_sample").locator("input.pick-a")
    assert no_preds.is_disabled() and "no predictions.jsonl" in no_preds.get_attribute("title")

    # pick a pair in the runs table: the drill-down lists shared sentences by B - A
    _run_row(page, "greedy").locator("input.pick-a").check()
    _run_row(page, "beam").locator("input.pick-b").check()
    rows = page.locator("#compare tbody tr")
    assert rows.count() == len(GREEDY)  # the sentence that only beam has is not shared
    ids = page.locator("#compare tbody tr td:nth-child(2)").all_inner_texts()
    deltas = [float(r.get_attribute("data-delta")) for r in rows.all()]
    assert deltas == sorted(deltas, reverse=True)
    assert ids == _expected_order()
    first = rows.first.locator("td").all_inner_texts()
    i = int(ids[0].split("-")[1])
    assert first[3:7] == [SENTENCES[i][0], SENTENCES[i][1], GREEDY[i], BEAM[i]]
    assert "6 shared sentences" in page.inner_text("#compare-summary")
    markup = page.locator("#compare tbody td.hyp-b", has_text="</script>")
    assert markup.count() == 1 and markup.locator("b").count() == 0  # shown as text

    page.select_option("#order", "asc")
    deltas = [float(r.get_attribute("data-delta")) for r in rows.all()]
    assert deltas == sorted(deltas)
    page.select_option("#order", "desc")
    page.select_option("#score", "chrf")
    assert page.locator("#compare tbody tr td:nth-child(2)").all_inner_texts() == (
        _expected_order(sentence_chrf)
    )
    page.check("#hide-same")
    assert rows.count() == len(GREEDY) - 1  # sentence 2 is the same in both

    # a screenshot that is not blank
    from PIL import Image

    png = page.screenshot(full_page=False)
    (tmp_path / "dashboard.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1400, 1000)
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50
    assert errors == [] and outside == []
    page.close()


REPORTS = Path(__file__).resolve().parent.parent / "reports" / "dashboard"


def test_the_committed_dashboard_renders_as_its_committed_screenshot(browser):
    """reports/dashboard/dashboard.html draws as reports/dashboard/screenshot.py took it: every
    run in the table, plots, the drill-down of the pair the screenshot shows, and a screenshot
    of the same region that matches the committed PNG up to font rendering."""
    from PIL import Image, ImageChops, ImageStat

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((REPORTS / "dashboard.html").as_uri())
    assert page.locator("table.runs tbody tr").count() == 29
    assert page.locator("figure.plot svg").count() >= 1
    page.evaluate(
        "document.querySelectorAll('details.metric').forEach((d, i) => { d.open = i === 0; })"
    )
    page.select_option("#run-a", label="multi30k/model=transformer,search=greedy")
    page.select_option("#run-b", label="search_errors/search.beam_size=64,search=beam")
    page.select_option("#order", "asc")
    page.check("#hide-same")
    assert page.locator("#compare tbody tr").count() > 0
    assert "200 shared sentences" in page.inner_text("#compare-summary")
    page.evaluate("window.scrollTo(0, 0)")
    png = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": 3000})
    page.close()
    fresh = Image.open(io.BytesIO(png)).convert("RGB")
    committed = Image.open(REPORTS / "dashboard.png").convert("RGB")
    assert fresh.size == committed.size == (1400, 3000)
    diff = ImageStat.Stat(ImageChops.difference(fresh, committed)).mean
    assert max(diff) < 4, diff  # 0.07 here; a blank page scores 9, the page upside down 16
    assert errors == []


def test_the_drill_down_shows_a_saved_alignment_under_its_hypothesis(browser, sweep, tmp_path):
    page_file = _build(_with_attention(sweep, tmp_path), tmp_path / "out")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    _run_row(page, "greedy").locator("input.pick-a").check()
    _run_row(page, "beam").locator("input.pick-b").check()
    views = page.locator("#compare tbody td.hyp-b details.alignment")
    assert views.count() == 2 and page.locator("#compare tbody td.hyp-a details").count() == 0
    views.first.locator("summary").click()
    assert views.first.locator("table.align tr").count() == 5  # the source row, 4 output tokens
    assert views.first.locator("table.align").is_visible()
    assert errors == []
    page.close()
