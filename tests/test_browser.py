"""The quickstart notebook's widgets, in a real browser.

JupyterLab runs on a free loopback port in a temporary root (its configuration, data,
runtime, settings and caches included), with a kernel that is this interpreter; Debian's
Chromium, driven headless by Playwright, opens ``notebooks/00_quickstart.ipynb``, runs all
cells and then works the Explorer: the opacity slider must redraw a tile, adding a method
must change the tiles, and no widget may fail to render. A screenshot is kept.

Skips (with the reason) only where Chromium, Playwright, JupyterLab, ipykernel or ipywidgets
is absent; ``.ci/run`` installs Debian's ``chromium`` (never ``playwright install``). Run it
alone with ``pytest -m browser -rA tests/test_browser.py`` (about 25 s with the quickstart's
checkpoint cached, 90 s when it trains); deselect it with ``-m "not browser"``.

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
TILE_SRCS_JS = f"() => [...document.querySelectorAll('{EXPLORER} img')].map(i => i.src)"


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


def _labelled(page, widget_class: str, label: str):
    """The Explorer's control of `widget_class` whose description reads `label`."""
    exact = re.compile(rf"^\s*{re.escape(label)}\s*:?\s*$", re.IGNORECASE)
    controls = page.locator(f"{EXPLORER} {widget_class}").filter(
        has=page.locator(".widget-label", has_text=exact)
    )
    n = controls.count()
    assert n == 1, f"expected one {widget_class} labelled {label!r} in {EXPLORER}, found {n}"
    return controls.first


def test_quickstart_explorer_in_browser(lab, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    timings = {"server start": lab.startup_seconds}
    t = time.monotonic()
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
                _drive(page, lab, tmp_path, timings, t)
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
        print(f"\nexplorer screenshot: {tmp_path / 'explorer.png'}")


def _drive(page, lab: Lab, tmp_path: Path, timings: dict, t0: float) -> None:
    def lap(name: str) -> None:
        nonlocal t0
        now = time.monotonic()
        timings[name] = now - t0
        t0 = now

    page.goto(f"{lab.url}/lab/tree/{lab.notebook_path}?token={lab.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    lap("lab loaded")

    # Kernel-start race: the execution indicator reads idle before the kernel exists.
    page.wait_for_function(
        """(name) => {
          const bar = document.querySelector('#jp-main-statusbar');
          return bar && bar.innerText.includes(name) && /\\|\\s*Idle/.test(bar.innerText);
        }""",
        arg=KERNEL_DISPLAY,
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

    # 1. Nothing failed to render, no cell raised.
    _check_clean(page, lab, "after running all cells")

    # 2. The Explorer rendered, with a tile per image and per method.
    explorer = page.locator(EXPLORER)
    assert explorer.count() >= 1, f"no {EXPLORER} element on the page"
    explorer.first.scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelectorAll('{EXPLORER} img').length >= 3", timeout=10_000
    )
    before = page.evaluate(TILE_SRCS_JS)
    assert len(before) >= 3, f"the Explorer shows {len(before)} images, expected >= 3"
    assert all(before), f"an Explorer image has no src: {before}"
    lap("explorer rendered")

    # 3. The opacity slider redraws the heatmaps (the first image, the sample itself, may stay).
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

    # 4. One more method changes the tiles.
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

    # 5. Final checks and the picture.
    _check_clean(page, lab, "after the interactions")
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    explorer.first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot), full_page=True)
    print(
        f"\nexplorer screenshot: {shot}\n"
        f"opacity {value_before} -> {value_after}: images {changed} of {len(now)} redrawn;"
        f" adding {extra[0]!r} to {chosen}: {len(before)} -> {len(after)} images"
    )
