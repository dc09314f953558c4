"""The SpeakerExplorer in a real browser (JupyterLab + Playwright + Debian's Chromium).

A two-cell notebook (an untrained SpeakerNet, four synthetic clips, the widget) is written
to a temporary root and run there by the harness of :mod:`tests.test_browser` (the same
isolated server, kernelspec and error checks); then the frame slider is moved with the
keyboard: the frame image, the spectrogram (its marker) and the prediction curve must
change, and no widget may fail to render. A screenshot is kept.

Skips (with the reason) where Chromium, Playwright, JupyterLab, ipykernel or ipywidgets is
absent. Run it alone with ``pytest -m browser -rA tests/test_browser_speakers.py``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    KERNEL_DEADLINE,
    KERNEL_DISPLAY,
    KERNEL_NAME,
    LISTEN_JS,
    NOTEBOOK_STATE_JS,
    REACT_DEADLINE,
    Lab,
    _check_clean,
    _require_tools,
    _wait,
)

pytestmark = pytest.mark.browser

RUN_DEADLINE = 120.0  # s for "run all" (no training: an untrained model, four clips)
ROOT = ".squeezex-speaker-explorer"
VIEWS = ("frame", "spectrogram", "curve", "importance")
SRCS_JS = (
    "() => Object.fromEntries("
    + repr(list(VIEWS))
    + f".map(v => [v, (document.querySelector('{ROOT} img.squeezex-' + v) || {{}}).src || null]))"
)
CELLS = [
    """import torch

from squeezex.datasets import SyntheticSpeakers
from squeezex.models import SpeakerNet
from squeezex.widgets import SpeakerExplorer

with torch.random.fork_rng(devices=[]):
    torch.manual_seed(0)
    model = SpeakerNet().eval()
data = SyntheticSpeakers(4, seed=0, split="test")""",
    "SpeakerExplorer(model, data, index=0)",
]


def _write_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    path = folder / "speaker_explorer.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def speaker_lab(tmp_path_factory):
    _require_tools()
    base = tmp_path_factory.mktemp("browser-speakers")
    notebook = _write_notebook(base)
    server = Lab(base / "lab")
    server.notebook_path = server.prepare(notebook)
    try:
        server.startup_seconds = server.start()
        yield server
    finally:
        server.stop()


def _open_and_run_all(page, lab: Lab, lap) -> None:
    """Open the notebook, wait for its kernel (not just the idle indicator), run all."""
    page.goto(f"{lab.url}/lab/tree/{lab.notebook_path}?token={lab.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    page.wait_for_function(
        """(name) => {
          const bar = document.querySelector('#jp-main-statusbar');
          return bar && bar.innerText.includes(name) && /\\|\\s*Idle/.test(bar.innerText);
        }""",
        arg=KERNEL_DISPLAY,
        timeout=KERNEL_DEADLINE * 1000,
    )
    page.evaluate(LISTEN_JS)
    assert _check_clean(page, lab, "before running")["kernelName"] == KERNEL_NAME
    lap("lab loaded, kernel idle")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_timeout(500)  # let "run all" queue the cells

    def finished():
        s = page.evaluate(NOTEBOOK_STATE_JS)
        if s is None or s["kernel"] in ("dead", "unknown"):
            pytest.fail(f"the kernel is gone while running all cells: {s}")
        return s if s["pending"] == 0 and s["kernel"] == "idle" else None

    _wait(page, lab, "all cells to run", RUN_DEADLINE, finished, interval=0.5)
    _check_clean(page, lab, "after running all cells")
    lap("run all")


def _frame_slider(page):
    exact = re.compile(r"^\s*frame\s*:?\s*$", re.IGNORECASE)
    sliders = page.locator(f"{ROOT} .widget-slider").filter(
        has=page.locator(".widget-label", has_text=exact)
    )
    assert sliders.count() == 1, f"expected one slider labelled 'frame' in {ROOT}"
    return sliders.first


def _drive(page, lab: Lab, tmp_path: Path, lap) -> None:
    _open_and_run_all(page, lab, lap)
    widget = page.locator(ROOT)
    assert widget.count() == 1, f"no {ROOT} element on the page"
    widget.first.scroll_into_view_if_needed()
    before = _wait(
        page,
        lab,
        "the SpeakerExplorer's four images",
        REACT_DEADLINE,
        lambda: (lambda s: s if all(s.values()) else None)(page.evaluate(SRCS_JS)),
    )
    lap("widget rendered")

    slider = _frame_slider(page)
    readout = slider.locator(".widget-readout")
    assert readout.inner_text().strip() == "0"
    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    changed = ("frame", "spectrogram", "curve")  # importance: when the frame's bars differ

    def redrawn():
        now = page.evaluate(SRCS_JS)
        return now if all(now[v] != before[v] for v in changed) else None

    _wait(page, lab, f"the {changed} images to follow the frame", REACT_DEADLINE, redrawn)
    assert readout.inner_text().strip() == "3", readout.inner_text()
    # Each key press is one update (frames 1, 2, 3); the info line is drawn last, so once
    # it reads frame 3 (and the kernel is idle) every image shows frame 3.
    info = page.locator(f"{ROOT} .squeezex-info")
    _wait(
        page,
        lab,
        "the widget to finish drawing frame 3",
        REACT_DEADLINE,
        lambda: (
            "frame 3:" in info.inner_text() and page.evaluate(NOTEBOOK_STATE_JS)["kernel"] == "idle"
        ),
    )
    after = page.evaluate(SRCS_JS)
    assert all(after[v] != before[v] for v in changed), "an image went back to frame 0"
    _check_clean(page, lab, "after moving the frame slider")
    lap("frame slider")
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    widget.first.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "speaker_explorer.png"), full_page=True)
    moved = [v for v in VIEWS if after[v] != before[v]]
    print(f"\nframe 0 -> 3 redrew {moved}; screenshot {tmp_path / 'speaker_explorer.png'}")


def test_speaker_explorer_frame_slider_in_browser(speaker_lab, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    timings = {"server start": speaker_lab.startup_seconds}
    t0 = [time.monotonic()]

    def lap(name: str) -> None:
        now = time.monotonic()
        timings[name] = now - t0[0]
        t0[0] = now

    start = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            console = []
            page.on("console", lambda m: m.type == "error" and console.append(m.text))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            try:
                _drive(page, speaker_lab, tmp_path, lap)
            except BaseException:
                print("browser console errors:\n" + "\n".join(console[-40:]))
                try:
                    page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                    print(f"screenshot at failure: {tmp_path / 'failure.png'}")
                except Exception as e:  # the page may be gone
                    print(f"no failure screenshot: {e}")
                raise
        finally:
            browser.close()
    timings["total (browser)"] = time.monotonic() - start
    with capsys.disabled():
        print("\ntimings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
