"""``lab report --html``: the report as one self-contained HTML page, a local dashboard.

The page holds what the report files hold (per metric: the pivot, the paired tests with a
baseline, the plot with ``x``), the runs table, sortable and filterable, and a drill-down that
sets any two runs side by side, sentence by sentence: source, reference, both hypotheses, their
log-probs and sentence BLEU/chrF, sorted by the difference. Everything is inside the one file
(plots as inline SVG, script and styles inline, data as embedded JSON), so it opens from disk
with no server and no network, and can be mailed or committed as it is.

Tables and plots come from ``lab.report.write.build_report``, so the page and the files agree.
Per-sentence data are embedded once per run (``lab.report.sentences``) and pairs are matched in
the page; ``max_sentences`` caps what each run embeds, the first sentences of its predictions.
"""

from __future__ import annotations

import html
import io
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.report.alignments import Alignment, alignment_section
from lab.report.checks import no_runs_error
from lab.report.render import Table
from lab.report.runs import PathsLike, as_paths, load_runs
from lab.report.sentences import SentenceTable, read_sentences
from lab.report.significance import TESTABLE
from lab.report.tables import run_names
from lab.report.write import ReportSpec, build_report, default_out

TEMPLATE = "dashboard.html"
MAX_SENTENCES = 1000  # per run; the default cap of the embedded drill-down data
LEGEND_INSIDE = 6  # a plot legend with more lines goes beside the axes
_TITLE, _BODY, _DATA = "<!--lab:title-->", "<!--lab:body-->", "/*lab:data*/"  # template slots


def dashboard(
    paths: PathsLike,
    out: str | os.PathLike[str] | None = None,
    *,
    metrics: Sequence[str] = ("bleu",),
    max_sentences: int | None = MAX_SENTENCES,
    **options: Any,
) -> Path:
    """Load the completed runs under ``paths`` and write ``<name>.html`` into ``out`` (default:
    ``default_out(paths)``). ``metrics`` each get a pivot (and a plot with ``x``); ``options``
    are the other fields of ``ReportSpec``. Returns the page's path."""
    if not as_paths(paths):
        raise LabError("--html needs run or sweep directories; pass the runs to show.")
    specs = specs_for(metrics, **options)
    df = load_runs(paths)
    if df.empty:
        raise no_runs_error(f" under {', '.join(str(p) for p in as_paths(paths))}")
    target = Path(out) if out is not None else default_out(paths)
    return write_dashboard(df, target, specs, max_sentences)


def specs_for(metrics: Sequence[str], **options: Any) -> list[ReportSpec]:
    """One ``ReportSpec`` per metric, the other options shared; a wrong option fails here.

    The paired tests (``baseline``) run for the first metric, whose section shows them, and
    for the metrics whose pivot cells they may mark (BLEU, chrF, EM, F1, accuracy); the others
    need not rerun them.
    """
    if not metrics:
        raise LabError("--metric names no metric; pass one or more, e.g. --metric bleu,chrf.")
    base = ReportSpec(**options)
    return [
        replace(base, metric=m, baseline=base.baseline if i == 0 or m in TESTABLE else None)
        for i, m in enumerate(dict.fromkeys(metrics))
    ]


def write_dashboard(
    df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    specs: Sequence[ReportSpec],
    max_sentences: int | None = MAX_SENTENCES,
) -> Path:
    """Build every table, plot and sentence list of the page, then write ``<name>.html``."""
    if max_sentences is not None and max_sentences < 0:
        raise LabError(f"--max-sentences {max_sentences} is negative; pass 0 or more.")
    built = [(spec, *build_report(df, spec)) for spec in specs]
    runs = built[0][1]["runs"]
    sections = [_metric_section(spec, tables, fig) for spec, tables, fig in built]
    if "tests" in built[0][1]:  # the same tests whatever the metric: shown once
        sections.append(_tests_section(built[0][1]["tests"]))
    data, views = _page_data(df, runs, max_sentences)
    parts = [*sections, _runs_section(runs), _compare_section(), alignment_section(views)]
    body = "\n".join(p for p in parts if p)  # no alignments: no section, not even a line
    title = f"lab report: {specs[0].name} ({len(df)} runs)"
    page = _render(title, body, data)
    return atomic_write_text(Path(out_dir) / f"{specs[0].name}.html", page)


# --- page data -------------------------------------------------------------------------------
def _page_data(
    df: pd.DataFrame, runs: Table, max_sentences: int | None
) -> tuple[dict[str, Any], list[tuple[int, str, int, str, Alignment]]]:
    """The runs in the runs table's order, each with its sentences or why it has none; and the
    alignments of those that saved them (run index, run name, position, example id)."""
    by_name = dict(zip(run_names(df), df["run_dir"], strict=True))
    table = SentenceTable()
    entries, views = [], []
    for i, name in enumerate(runs.frame["run"]):
        got = read_sentences(Path(by_name[name]), table, max_sentences)
        entry: dict[str, Any] = {"name": name}
        entry.update({"missing": got} if isinstance(got, str) else {"sentences": got.as_json()})
        entries.append(entry)
        for k, a in ({} if isinstance(got, str) else got.alignments).items():
            views.append((i, name, k, table.ids[got.idx[k]], a))
    return {"runs": entries, "sentences": table.as_json(), "cap": max_sentences}, views


def _json_for_script(data: dict[str, Any]) -> str:
    """``data`` as JSON that cannot end its ``<script>`` element early."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


# --- HTML pieces -----------------------------------------------------------------------------
def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _caption(text: str) -> str:
    return f"<p class='caption'>{'<br>'.join(_esc(line) for line in text.splitlines())}</p>"


def table_html(table: Table, css: str, sort_values: bool = False) -> str:
    """``table`` as an HTML table (its cells as the Markdown file shows them); with
    ``sort_values`` each cell carries its raw value (``data-v``) for sorting in the page."""
    align = table.align()
    head = "".join(
        f"<th class='{a}' data-col='{i}'>{_esc(c)}</th>"
        for i, (c, a) in enumerate(zip(table.frame.columns, align, strict=True))
    )
    lines = []
    raw_rows = table.frame.itertuples(index=False)
    for cells, raw in zip(table.cells(), raw_rows, strict=True):
        tds = []
        for text, value, a in zip(cells, raw, align, strict=True):
            v = f" data-v='{_esc(_sort_value(value))}'" if sort_values else ""
            tds.append(f"<td class='{a}'{v}>{_esc(text)}</td>")
        lines.append(f"<tr>{''.join(tds)}</tr>")
    return (
        f"<table class='{css}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table>"
    )


def _sort_value(value: Any) -> str:
    """A cell's value for sorting: numbers at full precision, missing values empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return repr(float(value)) if isinstance(value, int | float) else str(value)


def _legend_outside(fig: Figure) -> None:
    """Move a legend of more than ``LEGEND_INSIDE`` lines beside the axes (the page is wide;
    inside, such a legend hides the points)."""
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or len(legend.get_texts()) <= LEGEND_INSIDE:
            continue
        handles, labels = ax.get_legend_handles_labels()
        title = legend.get_title().get_text() or None
        ax.legend(
            handles,
            labels,
            title=title,
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )
        width, height = fig.get_size_inches()
        fig.set_size_inches(width * 1.6, height)


def figure_svg(fig: Figure) -> str:
    """``fig`` as an ``<svg>`` element: text as text, no date, the same bytes every time."""
    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lab-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _metric_section(spec: ReportSpec, tables: dict[str, Table], fig: Figure | None) -> str:
    parts = [f"<details class='metric' id='metric-{_esc(spec.metric)}' open>"]
    parts.append(f"<summary><h2>{_esc(spec.metric)}</h2></summary>")
    parts.append("<div class='pair'><div class='pivot'>")
    parts.append(_caption(tables["pivot"].caption) + table_html(tables["pivot"], "pivot"))
    parts.append("</div>")
    if fig is not None:
        _legend_outside(fig)
        parts.append(f"<figure class='plot'>{figure_svg(fig)}</figure>")
    parts.append("</div></details>")
    return "".join(parts)


def _tests_section(tests: Table) -> str:
    return (
        f"<section id='tests-section'><h2>paired tests</h2>{_caption(tests.caption)}"
        f"{table_html(tests, 'tests')}</section>"
    )


def _runs_section(runs: Table) -> str:
    return (
        "<section id='runs-section'><h2>runs</h2>"
        "<div class='controls'><input id='run-filter' type='search' "
        "placeholder='filter: words that every shown row contains, e.g. beam transformer'>"
        "<span id='run-count'></span></div>"
        "<p class='hint'>Click a column header to sort; pick runs A and B to compare them "
        "below.</p>"
        f"{_caption(runs.caption)}{table_html(runs, 'runs', sort_values=True)}</section>"
    )


def _compare_section() -> str:
    return (
        "<section id='compare-section'><h2>compare two runs, sentence by sentence</h2>"
        "<div class='controls'>"
        "<label>A <select id='run-a'></select></label>"
        "<label>B <select id='run-b'></select></label>"
        "<label>score <select id='score'><option value='bleu'>sentence BLEU</option>"
        "<option value='chrf'>sentence chrF</option></select></label>"
        "<label>order <select id='order'>"
        "<option value='desc'>B - A, largest first</option>"
        "<option value='asc'>B - A, smallest first</option>"
        "<option value='abs'>|B - A|, largest first</option>"
        "<option value='id'>as decoded</option></select></label>"
        "<label><input id='hide-same' type='checkbox'> hide identical outputs</label>"
        "</div><p id='compare-summary' class='caption'></p>"
        "<table id='compare' class='compare'><thead><tr><th>#</th><th>id</th>"
        "<th class='right'>&Delta;</th><th>source</th><th>reference</th>"
        "<th>hypothesis A</th><th>hypothesis B</th><th class='right'>log-prob A</th>"
        "<th class='right'>log-prob B</th><th class='right'>score A</th>"
        "<th class='right'>score B</th>"
        "</tr></thead><tbody></tbody></table></section>"
    )


def _render(title: str, body: str, data: dict[str, Any]) -> str:
    """The template with its slots filled (the title wherever it appears); what fills one slot
    is never searched for another's marker."""
    page = resources.files("lab.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    pieces = [page.replace(_TITLE, _esc(title))]
    for slot, fill in ((_BODY, body), (_DATA, _json_for_script(data))):
        head, sep, tail = pieces[-1].partition(slot)
        if not sep or slot in tail:
            raise LabError(f"the dashboard template lacks {slot}; reinstall decoding-lab.")
        pieces[-1:] = [head, fill, tail]
    return "".join(pieces)
