import pytest
import torch

from squeezex.models import build_model


@pytest.fixture
def se_model():
    """An untrained SmallCNN with an SE head, in eval mode (6 classes)."""
    return build_model("small", 6, se=True, seed=0).eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 32, 32, generator=g)


def hook_count(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )
