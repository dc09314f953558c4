from dataclasses import dataclass

import pytest
import torch
from torch import nn

from squeezex import attach_se_head
from squeezex.models import build_model

#: Test modules that need a system service CI installs; their skips are shouted at the end.
LOUD_SKIPS = {"test_slurm": "a real Slurm", "test_browser": "a real browser"}


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
