"""squeezex: make deep models explain themselves, and prove it.

The SE explanation (Roxo et al., arXiv 2412.05134), VEBI (Oramas et al., ICLR 2019) and
Captum-compatible baselines,
ground-truth datasets to judge them on, metrics, a benchmark, widgets and notebooks.

Example:
    >>> import torch, squeezex
    >>> from squeezex.models import SmallCNN
    >>> model = squeezex.attach_se_head(SmallCNN(num_classes=6)).eval()
    >>> squeezex.get_explainer("se", model).attribute(torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 1, 64, 64])
"""

from .explainers import (
    GradCAM,
    RandomAttribution,
    RelevantFeatures,
    SEAttribution,
    VEBIAttribution,
    get_explainer,
    list_explainers,
    register_explainer,
)
from .models.se import SEBlock, attach_se_head, find_feature_layer, find_se_block

__version__ = "0.1.0"

__all__ = [
    "SEBlock",
    "attach_se_head",
    "find_feature_layer",
    "find_se_block",
    "SEAttribution",
    "VEBIAttribution",
    "RelevantFeatures",
    "GradCAM",
    "RandomAttribution",
    "get_explainer",
    "list_explainers",
    "register_explainer",
    "__version__",
]
