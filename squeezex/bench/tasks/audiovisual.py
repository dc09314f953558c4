"""The audio-visual task kind (``squeezex bench --dataset speakers``).

The same run folder, cells, schema and resumability as the image datasets; what differs is
what a cell explains and scores:

* models: a :class:`~squeezex.models.SpeakerNet` with and without its SE blocks per training
  seed, trained with :class:`~squeezex.models.speakers.SpeakerObjective`; the accuracy
  summary holds the **frame mAP** (AVA's, :func:`~squeezex.metrics.frame_map`) under
  ``accuracy*`` (so every table that reads accuracy reads it) and ``map*``;
* method cells (the audio-visual methods of the explainer registry,
  ``list_explainers("audio-visual")``: ``se``, ``gradcam``, ``random``): the per-frame visual
  maps (the cell's maps, N×1×T×H×W) and the spectrogram maps (the cell's ``audio`` maps,
  beside it as ``_<method>-audio.pt``), scored by the per-frame pointing game on the mouth
  and the relevance mass inside the speech segments; the ``se`` cell also holds the
  modality rows — fusion-SE importance per clip and modality ablation (the drop of the
  clip's mean logit, and the mAP change per run);
* a ``feature-ablation`` cell (kind ``"modality"``, no maps): Captum's ``FeatureAblation``
  with one mask per modality, the baseline of modality importance.

Every per-clip metric is also broken down by clip kind (speaking and the three hard
negatives) in ``results-attributes.csv`` (its ``attribute`` column holds the kind).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...datasets import get_dataset
from ...explainers import explainer_info, list_explainers
from ...explainers.speakers import (
    ablation_importance,
    fusion_importance,
    modality_ablation,
    speaker_probabilities,
)
from ...io import atomic_torch_save
from ...metrics import frame_map, frame_pointing_game, speech_mass
from ...models.speakers import SpeakerNet, SpeakerObjective
from ..cells import Cell, CellKey, machine_load, model_id
from ..config import BenchConfig
from ..store import RunStore, RunWarning, quantise
from .base import Task, model_summary, register_task

__all__ = [
    "AudioVisual",
    "SpeakerUnit",
    "compute_speaker_cell",
    "speaker_methods",
    "speaker_record",
    "audio_maps_path",
    "modality_values",
    "FEATURE_ABLATION",
]

#: The cell of the modality-importance baseline (Captum's FeatureAblation).
FEATURE_ABLATION = "feature-ablation"
_ABLATION_FOOTING = (
    "no maps: Captum FeatureAblation, one mask per modality (zeros), clip mean logit"
)
#: Inputs in the explainer registry
INPUTS = "audio-visual"


@dataclass
class SpeakerUnit:
    """What every cell of one (audio-visual dataset, training seed) shares."""

    cfg: BenchConfig
    dataset: str
    seed: int
    model: SpeakerNet
    test: object  # a SyntheticSpeakers-like split
    forward_ms: float
    checkpoint: Path | None = None
    spec_key: str | None = None
    pointing_tolerance: int = 0

    @property
    def x(self) -> torch.Tensor:  # what the harness counts the cells' maps against
        return self.test.frames

    @property
    def groups(self) -> dict[str, list[int]]:
        return {k: v for k, v in self.test.kind_groups().items() if v}


class AudioVisual(Task):
    """Active speaker detection on ``(video, audio)`` clips (see the module docstring)."""

    name = "audio-visual"
    inputs = INPUTS
    builder = "SpeakerNet"
    extra_maps = ("audio",)
    objective = SpeakerObjective()
    figures = "squeezex.figures.speakers:speaker_jobs"
    explorer = "squeezex.widgets.speakers:SpeakerExplorer"

    # -- data -----------------------------------------------------------------------------
    def split_record(self, test) -> dict:
        return speaker_record(test)

    # -- models ---------------------------------------------------------------------------
    def build_model(self, cfg, spec, train, *, se: bool, seed: int) -> SpeakerNet:
        if cfg.arch != "small":
            raise ValueError(
                f"--arch {cfg.arch} applies to image datasets: {spec.name} trains its SpeakerNet"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SpeakerNet(se=se, frames=train.n_frames, size=train.size)

    def evaluate(self, cfg, model, test, *, se: bool, seed: int) -> dict:
        model.to(cfg.device)
        p = speaker_probabilities(model, test.frames.to(cfg.device), test.audio.to(cfg.device))
        return {"se": se, "seed": seed, "score": frame_map(p.cpu(), test.frame_labels)}

    def summarise(self, cfg, spec, train, test, scores: list[dict], seconds: list) -> dict:
        summary = model_summary(
            cfg, [s["score"] for s in scores if s["se"]],
            [s["score"] for s in scores if not s["se"]], seconds,
        )  # fmt: skip
        summary.update(
            arch="SpeakerNet: 3-D conv front + 2-D trunk + temporal conv | log-mel 2-D conv; "
            "SE (r=8) in each stream and at fusion",
            arch_name="SpeakerNet",
            score="frame mAP (AVA-ActiveSpeaker's)",
            n_train=len(train),
            n_test=len(test),
            kinds=test.kind_counts(),
            **{
                k.replace("accuracy", "map"): v for k, v in list(summary.items()) if "accuracy" in k
            },  # fmt: skip
        )
        return summary

    # -- cells ----------------------------------------------------------------------------
    def make_unit(self, cfg, store, dataset: str, seed: int, model, checkpoint, train,
                  test) -> SpeakerUnit:  # fmt: skip
        spec = get_dataset(dataset)
        return SpeakerUnit(
            cfg, dataset, seed, model, test, _forward_ms(model, test, cfg.batch_size),
            checkpoint, spec.key(), spec.pointing_tolerance,
        )  # fmt: skip

    def cell_keys(self, unit: SpeakerUnit) -> list[CellKey]:
        keys = [CellKey(unit.dataset, unit.seed, m) for m in speaker_methods(unit.cfg.methods)]
        if "modality" in unit.cfg.families:
            keys.append(CellKey(unit.dataset, unit.seed, FEATURE_ABLATION, "modality"))
        return keys

    def compute_cell(self, unit: SpeakerUnit, key: CellKey) -> Cell:
        return compute_speaker_cell(unit, key)

    def footing(self, dataset: str, method: str, kind: str) -> tuple[str, str] | None:
        key = f"{method} ({dataset})"
        if kind == "modality":
            return key, _ABLATION_FOOTING
        if method in list_explainers(INPUTS):
            return key, explainer_info(method, INPUTS).footing
        return None


register_task(AudioVisual())


def speaker_methods(methods: list[str]) -> list[str]:
    """The run's methods that have an audio-visual version (a :class:`RunWarning` names
    the others); all of them when the run names none."""
    known = list_explainers(INPUTS)
    ok = [m for m in methods if m in known]
    skipped = [m for m in methods if m not in known]
    if skipped:
        warnings.warn(
            f"no audio-visual version of {', '.join(skipped)}; on speakers the methods are "
            f"{', '.join(known)}" + ("" if ok else " (running them all)"),
            RunWarning,
            stacklevel=2,
        )
    return ok or known


def speaker_record(test) -> dict:
    """The test split a run explains: uint8 frames, the audio, labels, masks, speech."""
    return {
        "images": (test.frames * 255).round().to(torch.uint8),
        "audio": test.audio.clone(),
        "masks": test.mouth_masks.clone(),
        "targets": test.labels.clone(),
        "frame_labels": test.frame_labels.clone(),
        "speech": test.speech.clone(),
        "kinds": list(test.kinds),
        "classes": list(test.classes),
    }


@torch.no_grad()
def _forward_ms(model: SpeakerNet, test, batch_size: int) -> float:
    """Milliseconds per clip of a plain forward pass (after a warm-up)."""
    device = next(model.parameters()).device
    v, a = test.frames.to(device), test.audio.to(device)
    model(v[:batch_size], a[:batch_size])
    start = time.perf_counter()
    speaker_probabilities(model, v, a, batch_size)
    return (time.perf_counter() - start) * 1000 / len(v)


# -- cells -------------------------------------------------------------------------------------
def audio_maps_path(store: RunStore, key: CellKey) -> Path:
    """Where a method cell's spectrogram maps are written (beside its visual maps)."""
    return store.extra_maps_path(key, "audio")


def compute_speaker_cell(unit: SpeakerUnit, key: CellKey, store: RunStore | None = None) -> Cell:
    """Explain and score one cell (see the module docstring). The spectrogram maps are
    the cell's ``extra_maps["audio"]`` (the store writes them with the cell), and are
    written here at once (atomically) when ``store`` is given."""
    cfg, test, fam = unit.cfg, unit.test, unit.cfg.families
    device = next(unit.model.parameters()).device
    video, audio = test.frames.to(device), test.audio.to(device)
    if key.kind == "modality":
        fa = ablation_importance(unit.model, video, audio, cfg.batch_size).cpu()
        values = {"fa_visual": ("modality", fa[:, 0].numpy()),
                  "fa_audio": ("modality", fa[:, 1].numpy())}  # fmt: skip
        return _finish(Cell(key, values, torch.zeros(len(fa), 0), groups=unit.groups), unit)
    explainer = explainer_info(key.method, INPUTS).build(unit.model)
    explainer.attribute((video[:2], audio[:2]))  # warm-up
    start, vis, aud = time.perf_counter(), [], []
    for i in range(0, len(video), cfg.batch_size):
        v, a = explainer.attribute((video[i : i + cfg.batch_size], audio[i : i + cfg.batch_size]))
        vis.append(v.cpu())
        aud.append(a.cpu())
    ms = (time.perf_counter() - start) * 1000 / len(video)
    vis, aud = torch.cat(vis), torch.cat(aud)
    cell = Cell(key, {}, vis, groups=unit.groups, extra_maps={"audio": aud})
    cell.timing = {"ms_per_image": ms, "forward_ms_per_image": unit.forward_ms}
    cell.load = machine_load()
    if "localisation" in fam:
        pg = frame_pointing_game(vis, test.mouth_masks, tolerance=unit.pointing_tolerance)
        cell.values["frame_pointing_game"] = ("localisation", pg.numpy())
        cell.values["speech_mass"] = ("localisation", speech_mass(aud, test.speech).numpy())
    if "cost" in fam:
        cell.values["ms_per_clip"] = ("cost", np.array([ms]))
        cell.values["cost_ratio"] = ("cost", np.array([ms / max(unit.forward_ms, 1e-9)]))
    if key.method == "se" and "modality" in fam:
        cell.values.update(modality_values(unit.model, test, video, audio, cfg.batch_size))
    if store is not None:
        atomic_torch_save(quantise(aud), audio_maps_path(store, key))
    return _finish(cell, unit)


def _finish(cell: Cell, unit: SpeakerUnit) -> Cell:
    cell.model = model_id(unit.checkpoint)
    cell.spec = unit.spec_key
    return cell


def modality_values(model: SpeakerNet, test, video, audio, batch_size: int) -> dict:
    """Fusion-SE importance per clip and the modality ablation (below-threshold entries
    zeroed): the drop of each clip's mean logit (the footing of ``FeatureAblation``'s
    rows) and the change of the frame mAP."""
    imp = fusion_importance(model, (video, audio))["clip"].cpu()
    logits = modality_ablation(model, video, audio, batch_size=batch_size, output="logit")
    logits = {k: v.cpu() for k, v in logits.items()}
    base = frame_map(logits["none"], test.frame_labels)  # the ranking: logits or probabilities
    out = {"fusion_visual": ("modality", imp[:, 0].numpy()),
           "fusion_audio": ("modality", imp[:, 1].numpy())}  # fmt: skip
    for m in ("visual", "audio"):
        drop = (logits["none"] - logits[m]).mean(1)
        out[f"ablation_{m}_drop"] = ("modality", drop.numpy())
        dmap = frame_map(logits[m], test.frame_labels) - base
        out[f"ablation_{m}_dmap"] = ("modality", np.array([dmap]))
    return out
