"""Progress output: redrawn bars only where they can redraw, one line per stage in a log."""

import subprocess
import sys

import pytest

from squeezex.progress import LineProgress, bars_redraw, progress


class _Log:
    def __init__(self, capsys):
        self.capsys = capsys

    def getvalue(self) -> str:
        return self.capsys.readouterr().err


@pytest.fixture
def log(capsys, monkeypatch):
    """stderr captured as a log file would be (not a terminal), the choice left to squeezex."""
    monkeypatch.delenv("SQUEEZEX_PROGRESS", raising=False)
    return _Log(capsys)


def test_a_log_gets_one_line_per_stage(log):
    assert not bars_redraw()
    bar = progress(range(5), desc="train scenes-6c")
    assert isinstance(bar, LineProgress)
    for _ in bar:
        bar.set_postfix(loss="0.5", acc="0.9")
    text = log.getvalue()
    assert text.count("\n") == 1, text
    assert text.startswith("train scenes-6c: 5/5 it in ") and "(loss=0.5, acc=0.9)" in text
    assert "\r" not in text and "\x1b" not in text


def test_a_long_stage_says_where_it_is_and_messages_pass(log, monkeypatch):
    monkeypatch.setattr(LineProgress, "every", 0.0)
    bar = progress(total=3, desc="se", unit="img")
    bar.update(2)
    bar.write("skipped rollout: not a transformer")
    bar.update(1)
    bar.close()
    bar.close()  # a second close writes nothing
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("se: 2/3 img in ") and lines[0].endswith("…")
    assert lines[2].startswith("se: 3/3 img in ") and lines[1].startswith("skipped rollout")
    assert len(lines) == 3  # the last item's update leaves the report to the closing line


def test_a_failed_stage_claims_nothing(log):
    with pytest.raises(RuntimeError), progress(total=2, desc="fit") as bar:
        bar.update(1)
        raise RuntimeError("boom")
    assert log.getvalue() == ""


def test_disabled_is_silent_but_passes_messages(log, monkeypatch):
    monkeypatch.setattr(LineProgress, "every", 0.0)
    bar = progress(range(3), desc="quiet", disable=True)
    assert list(bar) == [0, 1, 2]
    bar.write("a message")
    assert log.getvalue() == "a message\n"


def test_the_environment_chooses(log, monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.setenv("SQUEEZEX_PROGRESS", "bars")
    bar = progress(range(2), desc="x")
    assert isinstance(bar, tqdm)
    bar.close()
    log.getvalue()  # the tqdm bar's own output
    monkeypatch.setenv("SQUEEZEX_PROGRESS", "off")
    assert list(progress(range(2), desc="x")) == [0, 1] and log.getvalue() == ""


def test_training_logged_to_a_file_has_no_redraw_codes(tmp_path):
    code = (
        "from squeezex.datasets import An8Flower\n"
        "from squeezex.models import build_model\n"
        "from squeezex.training import fit\n"
        "data = An8Flower('single-6c', 'train', n_per_class=2, size=32, seed=0)\n"
        "fit(build_model('small', 6, seed=0), data, epochs=2, desc='train tiny')\n"
    )
    err = tmp_path / "log"
    with err.open("w") as f:
        subprocess.run([sys.executable, "-c", code], stderr=f, check=True, timeout=300)
    text = err.read_text()
    assert "\x1b[" not in text and "\r" not in text, text
    assert [ln for ln in text.splitlines() if ln.startswith("train tiny: 2/2 it in ")], text
