"""The quickstart notebook's widgets, in a real browser.

JupyterLab runs on a free loopback port in a temporary root (its configuration, data,
runtime, settings and caches included), with a kernel that is this interpreter; Debian's
Chromium, driven headless by Playwright, opens ``notebooks/00_quickstart.ipynb``, runs all
cells and then works the Explorer: the opacity slider must redraw a tile, adding a method
must change the tiles; changing the sample, the target and the SE rule must show a busy
indicator and then tiles, SE chart and score table of one state, never two (every DOM
change is read); z reads 1.282; one colour bar; and no widget may fail to render. A
second notebook opens ``Compare`` on a tiny benchmark run: its ranking chart must be shown
unstretched at half its pixels, under all its controls. Screenshots are kept.

Skips (with the reason) only where Chromium, Playwright, JupyterLab, ipykernel or ipywidgets
is absent; ``.ci/run`` installs Debian's ``chromium`` (never ``playwright install``). Run it
alone with ``pytest -m browser -rA tests/test_browser.py`` (about 75 s on 2 cores with the
quickstart's checkpoint cached, a minute more when it trains; the Compare test's tiny
benchmark run takes ~20 s of it); deselect it with ``-m "not browser"``.

Environment variables: ``SQUEEZEX_CHROMIUM`` (browser binary, default /usr/bin/chromium),
``SQUEEZEX_BROWSER_NOTEBOOK`` (another notebook with an Explorer, for work on this harness);
``SQUEEZEX_SMOKE`` defaults to 1 for the kernel (the notebook's short configuration).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = Path(
    os.environ.get("SQUEEZEX_BROWSER_NOTEBOOK", REPO / "notebooks" / "00_quickstart.ipynb")
)
CHROMIUM = Path(os.environ.get("SQUEEZEX_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    # Nothing but the loopback server resolves: a widget module looked up on a CDN fails
    # at once (and shows as an error) instead of hanging on the closed network.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
KERNEL_NAME = "python3"  # the notebooks' kernelspec; replaced by one that runs this interpreter
KERNEL_DISPLAY = "Python 3 (squeezex test)"

SERVER_DEADLINE = 60.0  # s until /api/status answers
KERNEL_DEADLINE = 90.0  # s until the status bar reads "<kernel> | Idle"
RUN_DEADLINE = 240.0  # s for "run all" (the quickstart trains a tiny model)
REACT_DEADLINE = 30.0  # s for a widget to react to one interaction

WIDGET_ERROR = "Error displaying widget"


def _require_tools() -> None:
    """Skip, saying what is missing, where the browser stack is not installed."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"no Chromium at {CHROMIUM} (install Debian's `chromium`, or set SQUEEZEX_CHROMIUM)"
        )
    for module, package in [
        ("playwright.sync_api", "playwright"),
        ("jupyterlab", "jupyterlab"),
        ("ipykernel", "ipykernel"),
        ("ipywidgets", "ipywidgets"),
    ]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            pytest.skip(f"{package} is not importable in {sys.executable}")


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 80) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(lines[-n:])


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions `text` (our unique runtime folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


class Lab:
    """A JupyterLab server in its own process group, isolated in a temporary folder."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "root"  # the server's root_dir: notebooks/ and a data/ link
        self.log = base / "server.log"
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.env_dirs = {
            "JUPYTER_CONFIG_DIR": base / "jupyter-config",
            "JUPYTER_DATA_DIR": base / "jupyter-data",
            "JUPYTER_RUNTIME_DIR": base / "jupyter-runtime",
            "JUPYTERLAB_SETTINGS_DIR": base / "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": base / "lab-workspaces",
            "IPYTHONDIR": base / "ipython",
            "MPLCONFIGDIR": base / "matplotlib",
            "XDG_CONFIG_HOME": base / "xdg-config",
            "XDG_CACHE_HOME": base / "xdg-cache",
        }

    # -- setup

    def prepare(self, notebook: Path) -> str:
        """Lay out the root and the isolated configuration; returns the notebook's lab path."""
        for d in self.env_dirs.values():
            d.mkdir(parents=True)
        (self.root / "notebooks").mkdir(parents=True)
        shutil.copy2(notebook, self.root / "notebooks" / notebook.name)
        # The notebooks find the repository as the parent of their working folder.
        (self.root / "data").symlink_to(REPO / "data", target_is_directory=True)

        # The notebook asks for "python3": that name must start *this* interpreter (where
        # squeezex is importable), whatever `python` is on PATH; it goes in the temporary
        # user data folder, looked at first (JUPYTER_PREFER_ENV_PATH=0 below).
        spec = self.env_dirs["JUPYTER_DATA_DIR"] / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": KERNEL_DISPLAY,
                    "language": "python",
                    "metadata": {"debugger": False},
                },
                indent=1,
            )
        )

        settings = self.env_dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab"
        for plugin, values in {
            # Every cell stays in the DOM (no virtual scrolling), so selectors see them all.
            "notebook-extension/tracker": {"windowingMode": "none"},
            # No autosave into the copy, no news or update pop-ups over the page.
            "docmanager-extension/plugin": {"autosave": False},
            "apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"},
        }.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return f"notebooks/{notebook.name}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({k: str(v) for k, v in self.env_dirs.items()})
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        # In a virtualenv jupyter_core looks in the environment's folders before the user's;
        # our kernelspec lives in the (temporary) user data folder and must win.
        env["JUPYTER_PREFER_ENV_PATH"] = "0"
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # The kernel imports this checkout's squeezex even if the shared environment's
        # editable install points at another clone.
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
        # The widgets are under test, not the model: the notebooks' short configuration.
        env.setdefault("SQUEEZEX_SMOKE", "1")
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_TOKEN", None)
        return env

    # -- life cycle

    def start(self) -> float:
        """Start the server and wait for /api/status; returns the seconds it took."""
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={self.port}",
            "--port-retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--allow-root",
            "--LabApp.news_url=None",
            "--LabApp.expose_app_in_browser=True",
        ]
        t0 = time.monotonic()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as a whole
            )
        deadline = t0 + SERVER_DEADLINE
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited with code {self.proc.returncode} before answering;"
                    f" its log:\n{_tail(self.log)}"
                )
            try:
                with urllib.request.urlopen(self.api("status"), timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except (OSError, urllib.error.URLError) as e:
                last = repr(e)
            time.sleep(0.25)
        pytest.fail(
            f"JupyterLab did not answer /api/status within {SERVER_DEADLINE:.0f} s"
            f" (last error: {last}); its log:\n{_tail(self.log)}"
        )

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path}?token={self.token}"

    def get_json(self, path: str):
        with urllib.request.urlopen(self.api(path), timeout=5) as r:
            return json.load(r)

    def stop(self) -> None:
        """Shut kernels and server down; escalate to signals on the process ids we own."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:  # a clean shutdown also ends the kernels (they run in their own sessions)
                req = urllib.request.Request(self.api("shutdown"), method="POST")
                urllib.request.urlopen(req, timeout=5).close()
            except (OSError, urllib.error.URLError):
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        self.proc.wait(timeout=10)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        # Kernels left behind are recognised by their connection file in our runtime folder.
        for pid in _pids_mentioning(str(self.env_dirs["JUPYTER_RUNTIME_DIR"])):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require_tools()
    if not NOTEBOOK.is_file():
        pytest.fail(f"the notebook under test is missing: {NOTEBOOK}")
    server = Lab(tmp_path_factory.mktemp("browser"))
    server.notebook_path = server.prepare(NOTEBOOK)
    try:
        server.startup_seconds = server.start()
        specs = server.get_json("kernelspecs")
        argv = specs["kernelspecs"][KERNEL_NAME]["spec"]["argv"]
        assert argv[0] == sys.executable, (
            f"kernelspec {KERNEL_NAME!r} would start {argv[0]}, not {sys.executable}"
        )
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- the page

# The state of the open notebook, read from the application (needs expose_app_in_browser).
NOTEBOOK_STATE_JS = (
    """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
  let code = 0, pending = 0;
  const errors = [];
  for (const cell of panel.content.widgets) {
    const model = cell.model;
    if (model.type !== 'code' || model.sharedModel.getSource().trim() === '') continue;
    code += 1;
    if (model.executionCount === null) pending += 1;
    for (let i = 0; i < model.outputs.length; i++) {
      const out = model.outputs.get(i).toJSON();
      if (out.output_type === 'error') {
        errors.push([out.ename, out.evalue, (out.traceback || []).join('\\n')].join(': '));
      } else if (out.output_type === 'stream' && out.name === 'stderr'
                 && String(out.text).includes('Traceback')) {
        errors.push(String(out.text));
      }
    }
  }
  return {
    code, pending, errors,
    kernel: kernel ? kernel.status : 'none',
    kernelName: kernel ? kernel.name : null,
    kernelErrors: window.__sqxKernelErrors || [],
    widgetError: document.body.textContent.includes('"""
    + WIDGET_ERROR
    + """'),
    // ipywidgets 8 draws a view that failed to load as a "broken widget" icon instead
    brokenWidgets: document.querySelectorAll('.jupyter-widgets-error-widget').length,
  };
}
"""
)

# Errors the kernel reports outside cell executions (exceptions in widget callbacks run on
# comm messages) reach no cell's output: listen to the session's IOPub channel for them.
LISTEN_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  window.__sqxKernelErrors = [];
  window.__sqxIopub = [];
  panel.sessionContext.iopubMessage.connect((_, msg) => {
    const type = msg.header.msg_type, parent = (msg.parent_header || {}).msg_type;
    // the last messages, printed if the test fails
    window.__sqxIopub.push(`${type} <- ${parent}: ${JSON.stringify(msg.content).slice(0, 200)}`);
    if (window.__sqxIopub.length > 100) window.__sqxIopub.shift();
    if (parent === 'execute_request') return;  // cells: their outputs are checked
    const c = msg.content;
    if (type === 'error') {
      window.__sqxKernelErrors.push(
        `${c.ename}: ${c.evalue}\\n${(c.traceback || []).join('\\n')}`);
    } else if (type === 'stream' && c.name === 'stderr' && c.text.includes('Traceback')) {
      window.__sqxKernelErrors.push(c.text);
    }
  });
}
"""

# Tracebacks shown in the rendered outputs (JupyterLab renders error outputs as stderr; the
# model check above also catches errors whose display has no "Traceback", e.g. SyntaxError).
DOM_TRACEBACKS_JS = """
() => [...document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(e => e.innerText).filter(t => t.includes('Traceback'))
"""

EXPLORER = ".squeezex-explorer"
COMPARE = ".squeezex-compare"
TILE_SRCS_JS = f"() => [...document.querySelectorAll('{EXPLORER} .sqx-tile img')].map(i => i.src)"
#: The Explorer's parts that must always show one state (sample, target, SE rule).
PARTS = ("tiles", "se", "scores")

# What the Explorer shows, read in one go: the state each part says it shows (its
# data-state), the busy line, and whether the controls are disabled.
VIEW_JS = f"""
() => {{
  const ex = document.querySelector('{EXPLORER}');
  if (!ex) return null;
  const part = p => {{
    const e = ex.querySelector('.squeezex-view .sqx-' + p);
    return e ? e.dataset.state : null;
  }};
  const busy = ex.querySelector('.squeezex-busy');
  const methods = ex.querySelector('select[multiple]');
  return {{
    tiles: part('tiles'), se: part('se'), scores: part('scores'),
    busy: busy ? busy.innerText.trim() : null,
    disabled: methods ? methods.disabled : null,
    t: performance.now(),
  }};
}}
"""

# Read VIEW_JS on every change of the Explorer's DOM (the browser reports each one), so a
# state shown for even one frame is seen.
RECORD_JS = f"""
() => {{
  const ex = document.querySelector('{EXPLORER}');
  const read = {VIEW_JS};
  if (window.__sqxObserver) window.__sqxObserver.disconnect();
  window.__sqxViews = [read()];
  window.__sqxObserver = new MutationObserver(() => window.__sqxViews.push(read()));
  window.__sqxObserver.observe(
    ex, {{subtree: true, childList: true, characterData: true, attributes: true}});
}}
"""

# Where the Compare widget's controls and ranking chart are, and the chart's own pixels.
COMPARE_LAYOUT_JS = f"""
() => {{
  const c = document.querySelector('{COMPARE}');
  const img = c && c.querySelector('img.squeezex-ranking');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const box = e => {{
    const r = e.getBoundingClientRect();
    return {{top: r.top, bottom: r.bottom, width: r.width, height: r.height}};
  }};
  return {{
    compare: box(c), chart: box(img), natural: [img.naturalWidth, img.naturalHeight],
    controls: [...c.querySelectorAll('.widget-dropdown, .widget-toggle-buttons')].map(box),
    viewport: window.innerHeight, src: img.src,
  }};
}}
"""


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _check_clean(page, lab: Lab, when: str) -> dict:
    state = page.evaluate(NOTEBOOK_STATE_JS)
    assert state is not None, f"{when}: no notebook panel is current"
    assert not state["widgetError"], f"{when}: the page shows {WIDGET_ERROR!r}"
    assert not state["brokenWidgets"], (
        f"{when}: {state['brokenWidgets']} widget(s) failed to render"
        " (ipywidgets' error view, .jupyter-widgets-error-widget)"
    )
    assert not state["errors"], f"{when}: a cell raised:\n" + _ansi_free(
        "\n\n".join(state["errors"])
    )
    assert not state["kernelErrors"], f"{when}: the kernel reported (outside a cell):\n" + (
        _ansi_free("\n\n".join(state["kernelErrors"]))
    )
    shown = page.evaluate(DOM_TRACEBACKS_JS)
    assert not shown, f"{when}: an output shows a traceback:\n" + "\n\n".join(shown)
    log = lab.log.read_text(errors="replace")
    assert "Traceback" not in log, (
        f"{when}: the server log (the server's and the kernel process's own errors) has a"
        f" traceback:\n{_tail(lab.log)}"
    )
    return state


def _wait(page, lab: Lab, what: str, deadline_s: float, probe, interval: float = 0.25):
    """Poll `probe()` until it returns a truthy value, checking for errors meanwhile."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value:
            return value
        _check_clean(page, lab, f"while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {deadline_s:.0f} s")
        page.wait_for_timeout(int(interval * 1000))


def _labelled(page, widget_class: str, label: str, root: str = EXPLORER):
    """The control of `widget_class` in `root` whose description reads `label`."""
    exact = re.compile(rf"^\s*{re.escape(label)}\s*:?\s*$", re.IGNORECASE)
    controls = page.locator(f"{root} {widget_class}").filter(
        has=page.locator(".widget-label", has_text=exact)
    )
    n = controls.count()
    assert n == 1, f"expected one {widget_class} labelled {label!r} in {root}, found {n}"
    return controls.first


def _in_browser(lab: Lab, tmp_path: Path, capsys, drive, shot: str) -> None:
    """Open a page in Chromium, run `drive(page, timings, lap)`; print timings and the
    screenshot's path; on failure, the console errors, the last IOPub messages and a
    full-page screenshot."""
    from playwright.sync_api import sync_playwright

    timings = {"server start": lab.startup_seconds}
    t = time.monotonic()
    t0 = t

    def lap(name: str) -> None:
        nonlocal t0
        now = time.monotonic()
        timings[name] = now - t0
        t0 = now

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            console = []
            page.on(
                "console",
                lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            try:
                drive(page, timings, lap)
            except BaseException:
                print("browser console errors:\n" + "\n".join(console[-40:]))
                try:
                    print(
                        "iopub:\n" + "\n".join(page.evaluate("() => window.__sqxIopub || []")[-30:])
                    )
                except Exception:
                    pass
                try:
                    page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                    print(f"screenshot at failure: {tmp_path / 'failure.png'}")
                except Exception as e:  # the page may be gone
                    print(f"no failure screenshot: {e}")
                raise
        finally:
            browser.close()
    timings["total (browser)"] = time.monotonic() - t
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    with capsys.disabled():  # also in a plain `make test` run, which hides a pass's prints
        print(f"\n{shot} screenshot: {tmp_path / f'{shot}.png'}")


def _run_notebook(page, lab: Lab, path: str, lap, workspace: str | None = None) -> None:
    """Open the notebook at lab path `path` (in its own `workspace`, so no tab of another
    test is restored), wait for its kernel, run all cells cleanly."""
    where = f"workspaces/{workspace}/tree" if workspace else "tree"
    page.goto(f"{lab.url}/lab/{where}/{path}?token={lab.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    lap("lab loaded")

    # Kernel-start race: the execution indicator reads idle before the kernel exists.
    # The status bar speaks of the current notebook: it must be ours.
    page.wait_for_function(
        """([name, path]) => {
          const panel = window.jupyterapp.shell.currentWidget;
          const bar = document.querySelector('#jp-main-statusbar');
          return panel && panel.context && panel.context.path === path
            && bar && bar.innerText.includes(name) && /\\|\\s*Idle/.test(bar.innerText);
        }""",
        arg=[KERNEL_DISPLAY, path],
        timeout=KERNEL_DEADLINE * 1000,
    )
    page.evaluate(LISTEN_JS)
    state = _check_clean(page, lab, "before running")
    assert state["kernelName"] == KERNEL_NAME, state
    lap("kernel idle")

    # Run all from a clean slate (a stored execution count would read as "done").
    page.evaluate(
        """() => {
          window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')
            .then(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
        }"""
    )

    def finished():
        s = page.evaluate(NOTEBOOK_STATE_JS)
        if s is None or s["kernel"] in ("dead", "unknown"):
            pytest.fail(f"the kernel is gone while running all cells: {s}")
        return s if s["pending"] == 0 and s["kernel"] == "idle" else None

    page.wait_for_timeout(500)  # let "run all" queue the cells
    state = _wait(page, lab, "all cells to run", RUN_DEADLINE, finished, interval=1.0)
    lap(f"run all ({state['code']} code cells)")
    # Nothing failed to render, no cell raised.
    _check_clean(page, lab, "after running all cells")


def _screenshot(page, locator, path: Path) -> None:
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    locator.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)


def test_quickstart_explorer_in_browser(lab, tmp_path, capsys):
    _in_browser(
        lab,
        tmp_path,
        capsys,
        lambda page, timings, lap: _drive(page, lab, tmp_path, timings, lap),
        "explorer",
    )


def _drive(page, lab: Lab, tmp_path: Path, timings: dict, lap) -> None:
    _run_notebook(page, lab, lab.notebook_path, lap)

    # 1. The Explorer rendered, with a tile per image and per method.
    explorer = page.locator(EXPLORER)
    assert explorer.count() >= 1, f"no {EXPLORER} element on the page"
    explorer.first.scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelectorAll('{EXPLORER} .sqx-tile img').length >= 3",
        timeout=10_000,
    )
    before = page.evaluate(TILE_SRCS_JS)
    assert len(before) >= 3, f"the Explorer shows {len(before)} images, expected >= 3"
    assert all(before), f"an Explorer image has no src: {before}"
    lap("explorer rendered")

    # 2. The opacity slider redraws the heatmaps (the first image, the sample itself, may stay).
    slider = _labelled(page, ".widget-slider", "opacity")
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text()
    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    _wait(
        page,
        lab,
        "a heatmap tile to change after moving the opacity slider",
        REACT_DEADLINE,
        lambda: any(
            a != b for a, b in zip(page.evaluate(TILE_SRCS_JS)[1:], before[1:], strict=False)
        ),
    )
    value_after = readout.inner_text()
    assert value_after != value_before, "the opacity readout did not move"
    page.wait_for_timeout(300)
    now = page.evaluate(TILE_SRCS_JS)
    changed = [i for i, (a, b) in enumerate(zip(now, before, strict=False)) if a != b]
    lap("opacity slider")

    # 3. One more method changes the tiles.
    methods = _labelled(page, ".widget-select-multiple", "methods").locator("select[multiple]")
    assert methods.count() == 1, "the 'methods' control has no <select multiple>"
    options = methods.evaluate(
        "s => [...s.options].map(o => ({label: o.textContent.trim(), selected: o.selected}))"
    )
    chosen = [o["label"] for o in options if o["selected"]]
    extra = [o["label"] for o in options if not o["selected"]]
    assert extra, f"every method is already selected: {options}"
    before = page.evaluate(TILE_SRCS_JS)
    methods.select_option(label=[*chosen, extra[0]])
    _wait(
        page,
        lab,
        f"the tiles to change after adding the method {extra[0]!r} to {chosen}",
        REACT_DEADLINE,
        lambda: page.evaluate(TILE_SRCS_JS) != before,
    )
    page.wait_for_timeout(500)
    after = page.evaluate(TILE_SRCS_JS)
    lap("methods")

    # 4. Sample, target and rule: tiles, SE chart and scores always show one state, behind
    # a busy indicator.
    _one_state_after_each_change(page, lab, timings)
    lap("sample, target and rule")

    # 5. The colour bar, the score table's names and mask, and the picture.
    _check_colour_bar_and_scores(page)
    _check_clean(page, lab, "after the interactions")
    _screenshot(page, explorer.first, tmp_path / "explorer.png")
    print(
        f"\nexplorer screenshot: {tmp_path / 'explorer.png'}\n"
        f"opacity {value_before} -> {value_after}: images {changed} of {len(now)} redrawn;"
        f" adding {extra[0]!r} to {chosen}: {len(before)} -> {len(after)} images"
    )


def _shows_one_state(page, lab: Lab, what: str, act, expect: str) -> tuple[dict, float]:
    """Do `act()`, wait until the three parts show `expect`, and check, from every DOM
    change meanwhile, that they never disagreed, that "computing…" was shown with the
    controls disabled, and that both cleared. Returns the final reading and the seconds
    from the action to it."""
    start = page.evaluate(VIEW_JS)
    assert len({start[p] for p in PARTS}) == 1, f"before {what}: the parts disagree: {start}"
    assert expect not in start["tiles"], f"before {what}: already showing {expect!r}: {start}"
    page.evaluate(RECORD_JS)
    t = time.monotonic()
    act()

    def settled():
        v = page.evaluate(VIEW_JS)
        return v if v["busy"] == "" and all(expect in (v[p] or "") for p in PARTS) else None

    final = _wait(page, lab, f"tiles, chart and scores showing {expect!r} after {what}",
                  REACT_DEADLINE, settled, interval=0.05)  # fmt: skip
    seconds = time.monotonic() - t
    page.wait_for_timeout(300)  # anything still arriving is recorded too
    log = page.evaluate("() => { window.__sqxObserver.disconnect(); return window.__sqxViews; }")
    mixed = [r for r in log if len({r[p] for p in PARTS}) != 1]
    assert not mixed, f"{what}: the parts disagreed on screen:\n" + "\n".join(map(str, mixed))
    shown = [r[PARTS[0]] for r in log]
    assert set(shown) == {start["tiles"], final["tiles"]}, f"{what}: showed {set(shown)}"
    busy = [r for r in log if "computing" in (r["busy"] or "")]
    assert busy, f"{what}: no busy indicator in {len(log)} DOM changes: {log[-3:]}"
    assert any(r["disabled"] for r in busy), f"{what}: controls stayed enabled while busy"
    last = page.evaluate(VIEW_JS)
    assert last["busy"] == "" and last["disabled"] is False, f"{what}: not cleared: {last}"
    assert {last[p] for p in PARTS} == {final["tiles"]}, f"{what}: changed after: {last}"
    return final, seconds


def _one_state_after_each_change(page, lab: Lab, timings: dict) -> None:
    # the sample slider, by keyboard (it reports on release: continuous_update=False)
    slider = _labelled(page, ".widget-slider", "sample")
    old = int(slider.locator(".widget-readout").inner_text())
    handle = slider.locator(".noUi-handle")
    handle.focus()
    key = "ArrowLeft" if old > 0 else "ArrowRight"
    new = old - 1 if old > 0 else old + 1
    final, timings["sample shown"] = _shows_one_state(
        page, lab, f"sample {old} -> {new}", lambda: handle.press(key), f"sample {new} ·"
    )

    # the target: another class than the one shown (ipywidgets writes the options' spaces
    # as no-break spaces)
    target = _labelled(page, ".widget-dropdown", "target").locator("select")
    labels = target.evaluate(
        "s => [...s.options].map(o => o.textContent.replace(/\\u00a0/g, ' ').trim())"
    )
    shown = final["tiles"].split(" · ")[1]
    index = next(i for i, x in enumerate(labels) if i and x.split(": ", 1)[1] not in shown)
    name = labels[index].split(": ", 1)[1]
    final, timings["target shown"] = _shows_one_state(
        page, lab, f"target -> {labels[index]}", lambda: target.select_option(index=index),
        f"target {name} ·",
    )  # fmt: skip

    # the SE rule: the paper's, with z = 1.282 shown exactly
    rule = _labelled(page, ".widget-dropdown", "SE rule").locator("select")
    final, timings["rule shown"] = _shows_one_state(
        page, lab, "rule -> paper", lambda: rule.select_option(label="paper"),
        "rule paper z=1.282",
    )  # fmt: skip
    z = _labelled(page, ".widget-slider", "z").locator(".widget-readout").inner_text()
    assert z.strip() == "1.282", f"the z slider reads {z!r}, the paper's z is 1.282"
    assert f"sample {new} · target {name} · rule paper" in final["tiles"], final


def _check_colour_bar_and_scores(page) -> None:
    bar = page.evaluate(
        f"""() => [...document.querySelectorAll('{EXPLORER} .sqx-colorbar img')]
              .map(i => [i.alt, i.naturalWidth, i.getBoundingClientRect().width])"""
    )
    assert len(bar) == 1 and bar[0][1] > 0, f"one colour bar under the tiles expected: {bar}"
    assert bar[0][0] == "relevance (normalised per map)" and bar[0][2] == bar[0][1], bar
    table = page.locator(f"{EXPLORER} .sqx-scores").inner_text()
    assert "pointing game ↑" in table and "mask AUC ↑" in table, table
    assert table.count("relevance mass") == 1 and "energy_pointing_game" not in table, table
    assert "scored against the mask of:" in table and "(true label)" in table, table


# --------------------------------------------------------------------------- Compare


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny benchmark run (two test images per class) for the Compare widget."""
    from squeezex.cli import main

    tmp = tmp_path_factory.mktemp("compare-run")
    args = ["bench", "--dataset", "an8flower-single-6c", "--n-train", "4", "--n-test", "2"]
    args += ["--epochs", "1", "--seeds", "1", "--size", "32", "--methods", "se,gradcam,random"]
    args += ["--out", str(tmp / "run"), "--checkpoints", str(tmp / "ckpt"), "--quiet"]
    args += ["--families", "localisation"]
    assert main(args) == 0
    return tmp / "run"


def _compare_notebook(lab: Lab, run: Path) -> str:
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "compare",
        "metadata": {},
        "outputs": [],
        "source": f"from squeezex.widgets import Compare\n\nCompare({str(run)!r}, k=2)",
    }
    nb = {
        "cells": [cell],
        "metadata": {"kernelspec": {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / "notebooks" / "compare.ipynb").write_text(json.dumps(nb))
    return "notebooks/compare.ipynb"


def test_compare_in_browser(lab, run_dir, tmp_path, capsys):
    path = _compare_notebook(lab, run_dir)

    def drive(page, timings, lap):
        _run_notebook(page, lab, path, lap, workspace="compare")
        compare = page.locator(COMPARE)
        assert compare.count() == 1, f"no {COMPARE} element on the page"
        compare.first.scroll_into_view_if_needed()
        box = _wait(page, lab, "the ranking chart", REACT_DEADLINE,
                    lambda: page.evaluate(COMPARE_LAYOUT_JS))  # fmt: skip
        _check_compare_layout(box)
        lap("compare rendered")

        # another metric: a new chart, laid out the same way
        metric = _labelled(page, ".widget-dropdown", "metric", COMPARE).locator("select")
        other = metric.evaluate("s => [...s.options].map(o => o.value).find(v => v != s.value)")
        metric.select_option(value=other)
        old = box["src"]

        def redrawn():
            b = page.evaluate(COMPARE_LAYOUT_JS)
            return b if b and b["src"] != old else None

        box = _wait(page, lab, f"the ranking chart of {other}", REACT_DEADLINE, redrawn)
        _check_compare_layout(box)

        # another method: its best and worst samples
        buttons = page.locator(f"{COMPARE} .widget-toggle-button:not(.mod-active)")
        name = buttons.first.inner_text().strip()
        buttons.first.click()
        _wait(page, lab, f"the best samples of {name}", REACT_DEADLINE,
              lambda: f"best {name}" in compare.inner_text())  # fmt: skip
        lap("metric and method")
        _check_clean(page, lab, "after the interactions")
        _screenshot(page, compare.first, tmp_path / "compare.png")

    _in_browser(lab, tmp_path, capsys, drive, "compare")


def _check_compare_layout(box: dict) -> None:
    """The ranking is shown at half its pixels, its aspect ratio kept, under every control,
    and the controls are near the widget's top (none below a long chart)."""
    (nw, nh), chart = box["natural"], box["chart"]
    assert abs(chart["width"] * 2 - nw) <= 2, f"chart {chart} for a {nw}×{nh} PNG"
    ratio = (chart["width"] / chart["height"]) / (nw / nh)
    assert abs(ratio - 1) < 0.01, f"the chart is stretched ×{ratio:.3f}: {chart}, {nw}×{nh}"
    for c in box["controls"]:
        assert c["bottom"] <= chart["top"] + 1, f"a control {c} is below the chart {chart}"
        assert c["bottom"] - box["compare"]["top"] < 200, f"a control sits low: {c}"
