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

__version__ = "0.1.0"

#: The package's names, imported from their modules when first used: ``import squeezex``
#: (and ``squeezex --help``) does not import torch.
_LAZY = {
    **dict.fromkeys(
        ["GradCAM", "RandomAttribution", "RelevantFeatures", "SEAttribution", "VEBIAttribution",
         "get_explainer", "list_explainers", "register_explainer"],
        ".explainers",
    ),
    **dict.fromkeys(["SEBlock", "attach_se_head", "find_feature_layer", "find_se_block"],
                    ".models.se"),
    **dict.fromkeys(["squeeze", "SqueezeReport"], ".squeezing"),
}  # fmt: skip

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'squeezex' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
