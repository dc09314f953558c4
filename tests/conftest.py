import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from torch import nn

from squeezex import attach_se_head
from squeezex.models import build_model

#: Property tests (Hypothesis): the same draws on every run (`make test` cannot pass on one
#: machine and fail on the next), no example database written into the checkout, no
#: per-example deadline (shared cores vary). ``pytest --hypothesis-profile=explore`` draws
#: new random examples, ten times as many, to look for what the fixed draws miss.
settings.register_profile("squeezex", database=None, deadline=None, derandomize=True)
settings.register_profile(
    "explore", database=None, deadline=None, max_examples=1000, derandomize=False
)
settings.load_profile("squeezex")

#: Test modules that need a system service CI installs; their skips are shouted at the end.
LOUD_SKIPS = {"test_slurm": "a real Slurm", "test_browser": "a real browser"}

# -- running in parallel (pytest-xdist: `make test` runs -n <cores> --dist loadscope) ------------
#: Work that must run in one process, in order: notebooks 05, 06, 07 and 11 share one
#: benchmark run (preset "notebooks": the first computes it, the others reuse its cells; two
#: processes would leave each other's claimed cells out), the quickstart notebook and the browser
#: test that opens it share its checkpoint, the sharding tests compare with one reference
#: run (the session fixture ``single_bench``). Every other file is one unit (its
#: module-scoped fixtures are made once), except the conformance suite, whose ~2,000 small
#: tests are spread over the processes one by one, the options' property tests (one per
#: method) and the docs' snippet tests (each its own interpreter).
GROUPS = {
    "notebooks/05_localisation.ipynb": "notebooks-run",
    "notebooks/06_faithfulness.ipynb": "notebooks-run",
    "notebooks/07_sanity.ipynb": "notebooks-run",
    "notebooks/11_paper_figures.ipynb": "notebooks-run",
    "notebooks/00_quickstart.ipynb": "quickstart",
    "tests/test_browser.py": "quickstart",
    "tests/test_shards.py": "single-bench",
    "tests/test_slurm.py": "single-bench",
    "tests/test_bulk.py": "single-bench",
}
SPREAD = ("tests/test_explainers.py", "tests/test_docs.py", "tests/test_options.py")
#: The longest units, started first so that none is left to run alone at the end
#: (measured with --durations on 2 cores); the rest follow in collection order.
LONGEST_FIRST = (
    "notebooks-run", "notebooks/08_model_truth.ipynb", "single-bench",
    "notebooks/09_faces.ipynb", "quickstart", "tests/test_benchmark.py",
    "notebooks/10_active_speaker.ipynb", "notebooks/04_vebi.ipynb",
    "notebooks/03_an8flower.ipynb", "tests/test_figures.py", "tests/test_faces.py",
)  # fmt: skip
#: Tests that take seconds (a harness run, a subprocess, a trained model, a notebook):
#: marked ``slow`` and left out of `make test-fast`.
SLOW_FILES = (
    "notebooks/", "tests/test_shards.py", "tests/test_slurm.py", "tests/test_bulk.py",
    "tests/test_cli.py", "tests/test_faces.py", "tests/test_figures.py",
    "tests/test_speaker_figures.py", "tests/test_presets.py", "tests/test_browser.py",
    "tests/test_browser_speakers.py", "tests/test_docs_site.py",
)  # fmt: skip
SLOW_TESTS = (
    "test_every_metric_of_a_methods_all_run_has_a_direction",
    "test_scenes_small_cnn_learns_the_shapes",
    "test_every_module_imports_on_its_own",
    "test_bench_runs_end_to_end_for_every_architecture",
    "test_a_folder_with_masks_is_scored_for_localisation",
    "test_a_folder_without_masks_skips_localisation_and_says_why",
    "test_a_squeezed_checkpoint_is_scored_without_training",
    "test_a_changed_folder_is_another_dataset_key",
    "test_the_python_snippets_of_a_page_run",
    "test_the_readme_quick_start_runs_as_written",
    "test_options_are_refused_at_the_door_or_give_finite_maps",
)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to (one process runs a unit, in order)."""
    path = nodeid.split("::")[0]
    if path in GROUPS:
        return GROUPS[path]
    return nodeid if path.startswith(SPREAD) else path


def _rank(item) -> int:
    unit = unit_of(item.nodeid)
    return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::")[0]
        if path.startswith(SLOW_FILES) or item.name.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if path == "tests/test_slurm.py":
            item.add_marker(pytest.mark.slurm)
    items.sort(key=_rank)  # stable: the longest units first, the rest as collected


def pytest_xdist_make_scheduler(config, log):
    """Units as :func:`unit_of` says, handed out in collection order (longest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False
    return Units(config, log)


@pytest.fixture(scope="session")
def shared_folder(tmp_path_factory) -> Path:
    """A folder every test process of this run shares (the checkpoint cache of the harness
    tests: a model trained by one test is loaded by the others, and the checkpoints'
    claims make two processes that need the same model train it once)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # workers' temp folders share a parent
        base = base.parent
    folder = base / "shared"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def checkpoints(shared_folder) -> Path:
    """The checkpoint folder the harness tests share (see :func:`shared_folder`)."""
    folder = shared_folder / "checkpoints"
    folder.mkdir(exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter):
    """Say loudly, after the run, when the Slurm or browser tests did not run."""
    for module, what in LOUD_SKIPS.items():
        skipped = [r for r in terminalreporter.stats.get("skipped", [])
                   if r.nodeid.split("::")[0].rsplit("/", 1)[-1].startswith(module)]  # fmt: skip
        if skipped:
            reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else ""
            terminalreporter.write_sep(
                "!", f"{len(skipped)} tests needing {what} SKIPPED", red=True
            )
            terminalreporter.write_line(f"{reason}")


@pytest.fixture(scope="session")
def single_bench(tmp_path_factory):
    """``(results, root)`` of the sharding tests' configuration run in one process
    (``root/ck`` holds its checkpoints)."""
    from tests.sharding import single_run

    root = tmp_path_factory.mktemp("single-bench")
    return single_run(root), root


@pytest.fixture
def forget_datasets():
    """The datasets a test registers (``register_folder``, ``--data``) are forgotten after
    it: the registry is global to the process, and other tests read the built-in one."""
    from squeezex.datasets.registry import _REGISTRY

    before = set(_REGISTRY)
    yield
    for name in set(_REGISTRY) - before:
        del _REGISTRY[name]


@pytest.fixture
def se_model():
    """An untrained SmallCNN with an SE head, in eval mode (6 classes)."""
    return build_model("small", 6, se=True, seed=0).eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 32, 32, generator=g)


@pytest.fixture
def one_thread():
    """Tiny tensors: intra-op threads only add synchronisation on shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def hook_count(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )


# -- the model kinds the conformance suite runs every explainer on ------------------------------
class ClipCNN(nn.Module):
    """A small 3-D CNN for N×3×T×H×W clips: conv stages, an SE head, max pool, linear."""

    def __init__(self, classes: int = 6) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm3d(8),
            nn.ReLU(inplace=True),
            nn.Conv3d(8, 16, 3, stride=(1, 2, 2), padding=1, bias=False),
            nn.BatchNorm3d(16),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveMaxPool3d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


class TwoHeads(nn.Module):
    """A SmallCNN trunk with an SE head and two classifiers: (6 classes, 3 classes)."""

    def __init__(self) -> None:
        super().__init__()
        base = build_model("small", 6, se=True, seed=0)
        self.features, self.pool, self.fc = base.features, base.pool, base.fc
        self.aux = nn.Linear(self.fc.in_features, 3)

    def forward(self, x):
        z = self.pool(self.features(x)).flatten(1)
        return self.fc(z), self.aux(z)


@dataclass
class Case:
    """A model kind: the model, a batch, its classes, the module its classifier is, and
    the options every explainer needs for it (``output`` for a multi-head model)."""

    name: str
    model: nn.Module
    x: torch.Tensor
    classes: int
    head: nn.Module
    options: dict
    has_se: bool

    def fit_data(self, n: int = 24):
        g = torch.Generator().manual_seed(1)
        return torch.rand(n, *self.x.shape[1:], generator=g), torch.arange(n) % self.classes


def make_case(name: str) -> Case:
    g = torch.Generator().manual_seed(0)
    if name == "se-cnn":
        m = build_model("small", 6, se=True, seed=0).eval()
        return Case(name, m, torch.rand(3, 3, 32, 32, generator=g), 6, m.fc, {}, True)
    if name == "plain-cnn":
        m = build_model("small", 6, se=False, seed=0).eval()
        return Case(name, m, torch.rand(3, 3, 32, 32, generator=g), 6, m.fc, {}, False)
    if name == "clip-cnn":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            m = attach_se_head(ClipCNN(), input_size=(3, 4, 16, 16)).eval()
        return Case(name, m, torch.rand(3, 3, 4, 16, 16, generator=g), 6, m.fc, {}, True)
    if name == "two-heads":
        m = TwoHeads().eval()
        return Case(name, m, torch.rand(3, 3, 32, 32, generator=g), 6, m.fc, {"output": 0}, True)
    if name == "plain-vit":
        m = tiny_vit().eval()
        head = m.heads.head
        return Case(name, m, torch.rand(3, 3, 32, 32, generator=g), 6, head, {}, False)
    raise ValueError(name)


def tiny_vit(classes: int = 6, seed: int = 0) -> nn.Module:
    """torchvision's VisionTransformer, 32 px, 8 px patches (4×4 tokens + class token),
    two blocks, width 32; its zero-initialised head is redrawn (logits ≢ 0)."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        m = torchvision.models.VisionTransformer(32, 8, 2, 2, 32, 64, num_classes=classes)
        nn.init.normal_(m.heads.head.weight, std=0.2)
    return m


#: the kinds without an SE block (SE methods must refuse them by name)
PLAIN = ("plain-cnn", "plain-vit")
CASES = ("se-cnn", "plain-cnn", "clip-cnn", "two-heads", "plain-vit")
