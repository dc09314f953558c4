"""VEBI: visual explanation by interpretation (Oramas, Wang & Tuytelaars, ICLR 2019).

Three stages (METHODS.md §2):

1. :func:`extract_features` — every channel of the chosen layers is one feature, its
   squared-L2 energy over positions; L1-normalised within the layer, concatenated,
   L2-normalised overall.
2. :class:`RelevantFeatures` — per class, a non-negative least-squares fit with an L1
   budget μ (the "μ-lasso", solved on scikit-learn's LARS/Lasso path with
   ``positive=True``); the non-zero weights are the class's relevant features.
3. :func:`interpret` (average visualisation of each relevant feature over the images of
   its class where it responds most) and :class:`VEBIAttribution` (test-time heatmaps:
   the top relevant features of the class, each propagated back to the input from its
   own activation map with the guided rule, transposed convolutions and unpooling with
   switches, combined by pixel-wise max).

The backward pass runs through autograd with forward hooks, so it works on any
``nn.Module`` (skip connections, strided convolutions and max-pools anywhere): the
gradient of a convolution *is* its transposed convolution, the gradient of a max-pool
*is* unpooling with the forward switches, and a hook on every ``nn.ReLU`` (and
``nn.ReLU6``) adds the guided
rule (the backward signal is clamped at 0; autograd's ReLU gradient already masks where
the forward input was not positive). ReLUs called as functions (``F.relu``) are not
modules and keep the plain gradient rule.

**Stride fix.** Run backwards, a convolution with stride s > 1 paints a checkerboard
(its kernel overlaps the input unevenly). With ``stride_fix=True`` (default) the
incoming signal is resized to the size a stride-1 convolution of that layer would give
(its own input size + 2·padding − dilation·(kernel − 1)), divided by the number of copies
so its mass is kept, and run through the transposed convolution with stride 1 and the
same kernel, padding and dilation. The resize is nearest-neighbour *aligned to where the
cells sit*: cell j of the strided output covers the same input window as cell s·j of the
stride-1 output, so stride-1 cell i takes the value of the strided cell nearest to i/s
(halfway between two cells it takes half of each). ``stride_fix="nearest"`` is the
literal reading (``F.interpolate(mode="nearest")``: cell j fills cells s·j … s·j + s − 1),
which removes the checkerboard as well but shifts the map by (s − 1)/2 pixels per strided
layer. Max-pools keep unpooling with switches (the deconvnet rule). Padding modes other
than zeros are treated as zeros in the fixed backward pass.

The package follows the stages: :mod:`.features` (stage 1), :mod:`.lasso` (stage 2),
:mod:`.backward` (the guided backward pass and the stride fix), :mod:`.interpret`
(average visualisations) and :mod:`.attribution` (the explainer, its fit step and its
registration).
"""

from .attribution import VEBIAttribution, fit_vebi
from .backward import STRIDE_FIXES, backproject, feature_heatmap
from .features import FeatureSet, default_layers, extract_features
from .interpret import Interpretation, interpret
from .lasso import RelevantFeatures, data_fingerprint, model_fingerprint, mu_lasso

__all__ = [
    "default_layers",
    "extract_features",
    "FeatureSet",
    "mu_lasso",
    "RelevantFeatures",
    "model_fingerprint",
    "data_fingerprint",
    "backproject",
    "feature_heatmap",
    "STRIDE_FIXES",
    "interpret",
    "Interpretation",
    "VEBIAttribution",
    "fit_vebi",
]
