"""Take reports/dashboard/dashboard.png: the dashboard page as Chromium draws it.

Opens ``dashboard.html`` in the system's Chromium (Debian's ``chromium`` package) through
Playwright, folds the pivots of every metric but the first, compares the Multi30k Transformer's
greedy run (A) with the search_errors run of beam 64 (B), the sentences where B loses most
first, and saves the top of the page in 256 colours (a third of the bytes). Run from the
project root after building the page:

    python reports/dashboard/screenshot.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

PAGE = Path("reports/dashboard/dashboard.html")
PNG = Path("reports/dashboard/dashboard.png")
RUN_A = "multi30k/model=transformer,search=greedy"
RUN_B = "search_errors/search.beam_size=64,search=beam"
WIDTH, HEIGHT = 1400, 3000  # the top of the page: a pivot, its plot, the runs, the drill-down


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no Chromium: apt-get install chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        page.goto(PAGE.resolve().as_uri())
        page.evaluate(
            "document.querySelectorAll('details.metric').forEach((d, i) => { d.open = i === 0; })"
        )
        for select, run in (("#run-a", RUN_A), ("#run-b", RUN_B)):
            page.select_option(select, label=run)
        page.select_option("#order", "asc")
        page.check("#hide-same")
        page.evaluate("window.scrollTo(0, 0)")
        top = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}
        page.screenshot(path=str(PNG), full_page=True, clip=top)
        browser.close()
    Image.open(PNG).quantize(colors=256).save(PNG, optimize=True)
    print(PNG)


if __name__ == "__main__":
    main()
