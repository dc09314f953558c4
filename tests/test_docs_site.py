"""The built documentation, in a real browser: ``make test`` runs this after the docs build.

Debian's Chromium, driven headless by Playwright, opens ``build/docs/index.html`` from the
file system (the site needs no server) and checks that the landing page shows the figure
and the navigation of the user guide, notebooks and API reference; that a rendered notebook
(the quickstart) shows what its cells printed and drew in the run that tested it (stream
text and a figure); that the API reference page lists the package; and that no page logs
a JavaScript error or asks for a resource it does not have. Skips (with the reason) only
where Chromium or Playwright is absent, like ``tests/test_browser.py``; a missing build is
a failure that says to run ``make docs``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_browser import CHROMIUM, CHROMIUM_FLAGS, _require_tools

pytestmark = [pytest.mark.docs, pytest.mark.browser, pytest.mark.slow]

SITE = Path(__file__).resolve().parents[1] / "build" / "docs"


@pytest.fixture
def site() -> Path:
    _require_tools()
    index = SITE / "index.html"
    assert index.is_file(), f"no {index}: run `make docs` (or `make test`, which builds it)"
    return SITE


def _open(page, path: Path, problems: list[str]) -> None:
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert not problems, f"{path.name}: {problems}"


def test_the_built_docs_open_with_the_guide_a_rendered_notebook_and_the_api(site, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_FLAGS)  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"missing: {r.url}"))

            _open(page, site / "index.html", problems)
            assert "squeezex" in page.title()
            hero = page.locator("article img").first
            assert hero.evaluate("img => img.complete && img.naturalWidth > 100"), "the figure"
            nav = page.locator(".sidebar-tree").inner_text()
            for entry in ("Your own model", "The metrics and their caveats", "API reference",
                          "Quickstart"):  # fmt: skip
                assert entry.lower() in nav.lower(), (entry, nav[:500])
            page.screenshot(path=str(tmp_path / "index.png"))

            _open(page, site / "notebooks" / "00_quickstart.html", problems)
            outputs = page.locator(".cell_output")
            assert outputs.count() >= 3, "the quickstart's cells show their outputs"
            text = outputs.all_inner_texts()
            assert any("accuracy" in t.lower() for t in text), text[:5]
            figures = page.locator(".cell_output img")
            assert figures.count() >= 1, "a figure the notebook drew"
            assert figures.first.evaluate("img => img.complete && img.naturalWidth > 100")
            page.screenshot(path=str(tmp_path / "notebook.png"), full_page=True)

            _open(page, site / "api.html", problems)
            assert page.locator("a", has_text="squeezex").count() >= 1
            _open(page, site / "guide" / "benchmark.html", problems)
            assert page.locator("table").count() >= 3, "the benchmark's rendered tables"
        finally:
            browser.close()
    print(f"screenshots in {tmp_path}")
