"""Transformer tokens as a feature map, for the methods that read a layer (Grad-CAM …).

A vision transformer's features are tokens, N×(P+L)×D: P class/register tokens, then L
patch tokens in raster order. Layer-map methods need N×D×h×w (pytorch-grad-cam's
``reshape_transform``). squeezex does that reshape once, here:

* :func:`patches_to_map` — the patch tokens as N×D×grid (class tokens dropped);
* :class:`TokenView` — for a transformer **without** an SE block: while an explainer
  runs, a forward hook on the tokens that enter the last encoder block (where the SE head
  would sit, :func:`token_site`) sends them through ``view`` (an identity on N×D×h×w)
  and back, so Captum's layer methods, squeezex's and the adapters hook ``view`` and see
  a feature map, gradients included. The hook exists only inside ``attribute``
  (:func:`active_token_views`): the model is not changed and no hook is left behind.

A model with a token SE block has its own ``view`` (:class:`~squeezex.models.se.TokenSEBlock`).
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

__all__ = ["TokenView", "patches_to_map", "prefix_tokens", "token_site", "token_view"]


def prefix_tokens(model: nn.Module) -> int:
    """Class, distillation and register tokens before the patch tokens: the count a timm
    model declares (``num_prefix_tokens``), else the token parameters found (torchvision's
    ViT ``class_token`` (1, 1, D), MViT's ``pos_encoding.class_token`` (D,), a distilled
    DeiT's ``dist_token``, ``register_tokens`` (1, k, D); a list of them, one per token
    branch (CrossViT's), counts one branch's)."""
    for m in model.modules():
        declared = getattr(m, "num_prefix_tokens", None)
        if isinstance(declared, int) and not isinstance(declared, bool):
            return declared
    n, branches = 0, set()
    for name, p in model.named_parameters():
        parts = name.split(".")
        tail = f"{parts[-2]}_{parts[-1]}" if len(parts) > 1 and parts[-1].isdigit() else parts[-1]
        match = _TOKEN_NAME.fullmatch(tail)
        if match is None:
            continue
        if match[2] is not None:  # one per branch (CrossViT's cls_token_0, _1): count one
            if match[1] in branches:
                continue
            branches.add(match[1])
        n += 1 if p.dim() == 1 else p.shape[-2]  # (D,), (k, D) or (1, k, D)
    return n


_TOKEN_NAME = re.compile(r"(class_token|cls_token|dist_token|register_tokens)(?:_(\d+))?")


def token_site(model: nn.Module) -> str | None:
    """The module whose output is the tokens entering the last encoder block: ViT's
    ``encoder.layers`` second-to-last block (``encoder.dropout`` for one block), MViT's
    ``blocks`` second-to-last, timm's PiT last stage's second-to-last block (its head reads
    only the class token, which attends to the patch tokens there); ``None`` for other
    models. The transformer may sit inside a wrapper (``nn.Sequential(Normalize(), vit)``:
    the name is then the wrapper's, ``1.encoder.layers.…``)."""
    for prefix, module in model.named_modules():  # the model itself first
        if (site := _own_token_site(module)) is not None:
            return f"{prefix}.{site}" if prefix else site
    return None


def _own_token_site(model: nn.Module) -> str | None:
    blocks = getattr(getattr(model, "encoder", None), "layers", None)
    if isinstance(blocks, nn.Sequential) and hasattr(model, "class_token"):  # ViT
        names = [f"encoder.layers.{n}" for n, _ in blocks.named_children()]
        return names[-2] if len(names) > 1 else "encoder.dropout"
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList) and hasattr(model, "pos_encoding") and len(blocks) > 1:
        return f"blocks.{len(blocks) - 2}"  # MViT: blocks return (tokens, [t, h, w])
    stages = getattr(model, "transformers", None)  # timm's PiT: pooling stages, a class token
    if isinstance(stages, nn.Sequential) and hasattr(model, "cls_token") and len(stages):
        last = len(stages) - 1
        blocks = getattr(stages[last], "blocks", None)
        if isinstance(blocks, nn.Sequential) and len(blocks) > 1:
            return f"transformers.{last}.blocks.{len(blocks) - 2}"
    return None


def square_grid(n: int, hint: str = "attach_se_head") -> tuple[int, int]:
    """(h, w) of ``n`` patch tokens that form a square; a ValueError naming ``grid=``."""
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(
            f"{n} patch tokens are not a square grid; give grid=(h, w) (or (t, h, w)) to {hint}"
        )
    return side, side


def patches_to_map(
    tokens: torch.Tensor, prefix: int, grid: Sequence[int] | None = None, hint: str = ""
) -> torch.Tensor:
    """N×(P+L)×D tokens → their L patch tokens as N×D×grid (raster order; ``grid`` given,
    or a square). A ValueError names the shapes when they do not fit."""
    if tokens.dim() != 3:
        raise ValueError(f"expected N×tokens×D tokens, got shape {tuple(tokens.shape)}")
    patches = tokens[:, prefix:]
    grid = tuple(grid) if grid is not None else square_grid(patches.shape[1], hint or "it")
    if math.prod(grid) != patches.shape[1]:
        raise ValueError(
            f"{patches.shape[1]} patch tokens do not fill the grid {grid}; give grid= "
            f"(h, w) or (t, h, w) to {hint or 'it'} for this input size"
        )
    return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def map_to_tokens(maps: torch.Tensor, tokens: torch.Tensor, prefix: int) -> torch.Tensor:
    """The inverse of :func:`patches_to_map`: ``tokens``' prefix, then ``maps`` as tokens."""
    patches = maps.flatten(2).transpose(1, 2)
    return torch.cat([tokens[:, :prefix], patches], dim=1) if prefix else patches


class TokenView(nn.Module):
    """A plain transformer's tokens at ``site`` as a feature map (see the module docstring).

    ``view`` is the module layer-map methods read (N×D×h×w, or N×D×t×h×w for MViT, whose
    blocks report their grid); ``last_grid`` is the grid of the last pass (the heatmap's
    geometry). Calling the view on the site's output is an identity in value.
    """

    def __init__(self, site: str, prefix: int, grid: Sequence[int] | None = None) -> None:
        super().__init__()
        self.site, self.prefix = site, prefix
        self.grid = tuple(grid) if grid is not None else None
        self.last_grid: tuple[int, ...] | None = None
        self.view = nn.Identity()
        self.view.reads_tokens = True  # the SE map's rule for tokens applies (SEAttribution)
        self._depth = 0  # how many active() blocks are open

    def forward(self, output):
        tokens, rest = (output[0], output[1:]) if isinstance(output, tuple) else (output, None)
        grid = self.grid or (tuple(rest[0]) if rest else None)  # MViT: (tokens, thw)
        maps = self.view(patches_to_map(tokens, self.prefix, grid, "TokenView"))
        self.last_grid = tuple(maps.shape[2:])
        back = map_to_tokens(maps, tokens, self.prefix)
        return (back, *rest) if rest is not None else back

    @contextmanager
    def active(self, model: nn.Module):
        """The forward hook on ``model``'s site, for the duration of the block (re-entrant:
        an inner block while one is active adds nothing)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        handle = model.get_submodule(self.site).register_forward_hook(lambda m, a, o: self(o))
        self._depth = 1
        try:
            yield self
        finally:
            self._depth = 0
            handle.remove()

    def extra_repr(self) -> str:
        return f"site={self.site!r}, prefix={self.prefix}"


_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_view(model: nn.Module, create: bool = True) -> TokenView | None:
    """The :class:`TokenView` of a transformer without an SE block (made on first use,
    kept beside the model, not in it); ``None`` for models that are not transformers
    squeezex knows (torchvision's ViT and MViT), and for those with an SE block (a module
    with ``reads_tokens_itself``, :class:`~squeezex.models.se.SEBlock`)."""
    view = _VIEWS.get(model)
    if view is None and create:
        site = token_site(model)
        if site is None or any(getattr(m, "reads_tokens_itself", False) for m in model.modules()):
            return None  # not a transformer, or one whose SE block has its own view
        view = _VIEWS[model] = TokenView(site, prefix_tokens(model))
    return view


@contextmanager
def active_token_views(*models: nn.Module):
    """Activate the token views of ``models`` (the plain transformers among them, their
    view made on first use) within the block."""
    with ExitStack() as stack:
        for m in models:
            view = token_view(m)
            if view is not None:
                stack.enter_context(view.active(m))
        yield
