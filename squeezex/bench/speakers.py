"""The harness on an audio-visual dataset (``squeezex bench --dataset speakers``).

The same run folder, cells, schema and resumability as the image datasets; what differs is
what a cell explains and scores:

* models: a :class:`~squeezex.models.SpeakerNet` with and without its SE blocks per training
  seed; the accuracy summary holds the **frame mAP** (AVA's, :func:`~squeezex.metrics.
  frame_map`) under ``accuracy*`` (so every table that reads accuracy reads it) and
  ``map*``;
* method cells (``se``, ``gradcam``, ``random``; :data:`~squeezex.explainers.speakers.
  SPEAKER_METHODS`): the per-frame visual maps (the cell's maps, N×1×T×H×W) and the
  spectrogram maps (beside it, ``_<method>-audio.pt``), scored by the per-frame pointing
  game on the mouth and the relevance mass inside the speech segments; the ``se`` cell
  also holds the modality rows — fusion-SE importance per clip and modality ablation
  (the drop of the clip's mean logit, and the mAP change per run);
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

from ..datasets import get_dataset
from ..explainers.speakers import (
    SPEAKER_METHODS,
    ablation_importance,
    fusion_importance,
    modality_ablation,
    speaker_probabilities,
)
from ..io import atomic_torch_save
from ..metrics import frame_map, frame_pointing_game, speech_mass
from ..models.speakers import SpeakerNet
from ..training import fit_speakers
from .cells import Cell, CellKey, machine_load, model_id
from .config import BenchConfig
from .models import cached_model, model_summary, shard_models, splits
from .store import RunStore, RunWarning, check_data, check_models, quantise

__all__ = [
    "run_speakers",
    "SpeakerUnit",
    "compute_speaker_cell",
    "speaker_methods",
    "speaker_model",
    "train_speaker_models",
]

#: The cell of the modality-importance baseline (Captum's FeatureAblation).
FEATURE_ABLATION = "feature-ablation"


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


def speaker_methods(methods: list[str]) -> list[str]:
    """The run's methods that have an audio-visual version (a :class:`RunWarning` names
    the others); all of them when the run names none."""
    ok = [m for m in methods if m in SPEAKER_METHODS]
    skipped = [m for m in methods if m not in SPEAKER_METHODS]
    if skipped:
        warnings.warn(
            f"no audio-visual version of {', '.join(skipped)}; on speakers the methods are "
            f"{', '.join(SPEAKER_METHODS)}" + ("" if ok else " (running them all)"),
            RunWarning,
            stacklevel=2,
        )
    return ok or list(SPEAKER_METHODS)


def run_speakers(cfg: BenchConfig, store: RunStore, dname: str, done: list[dict], work) -> None:
    """Train (or load) the models of ``dname``, then compute or reuse its cells (the
    ``work`` of :func:`~squeezex.bench.harness.run`: all of it, a shard's, or a reduce)."""
    from .harness import run_cells

    spec = get_dataset(dname)
    train, test = splits(cfg, dname)
    parts = work.parts(cfg, dname)
    if work.shard is None:
        models, summary = train_speaker_models(cfg, spec, train, test, may_train=work.compute)
        store.artifact(store.models_path(dname), lambda: summary, check_models, fresh=True)
    else:
        models = shard_models(cfg, spec, train, parts, train_one=speaker_model)
    store.artifact(store.data_path(dname), lambda: speaker_record(test), check_data)
    methods = speaker_methods(cfg.methods)
    for part in (p for p in parts if p.seed in models):
        model, ckpt = models[part.seed]
        unit = SpeakerUnit(
            cfg, dname, part.seed, model, test, _forward_ms(model, test, cfg.batch_size), ckpt,
            spec.key(), spec.pointing_tolerance,
        )  # fmt: skip
        keys = [CellKey(dname, part.seed, m) for m in methods]
        if "modality" in cfg.families:
            keys.append(CellKey(dname, part.seed, FEATURE_ABLATION, "modality"))
        keys = [k for j, k in enumerate(keys) if part.owns(j)]
        for key in keys:
            if key.kind == "method" and not audio_maps_path(store, key).is_file():
                store.cell_path(key).unlink(missing_ok=True)  # its spectrogram maps are gone
        run_cells(store, unit, keys, done, work, lambda u, k: compute_speaker_cell(u, k, store))


# -- models ---------------------------------------------------------------------------------
def speaker_model(cfg: BenchConfig, spec, train, se: bool, seed: int, may_train: bool = True):
    """``(model in eval mode, training seconds (0 if loaded), checkpoint path)``."""

    def build():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SpeakerNet(se=se, frames=train.n_frames, size=train.size)

    def train_it(model):
        opts = spec.train
        return fit_speakers(
            model, train, epochs=opts.epochs or cfg.epochs, lr=opts.lr or cfg.lr,
            batch_size=opts.batch_size or cfg.batch_size, seed=seed, device=cfg.device,
            progress=cfg.progress, desc=f"train {spec.name} {'SE' if se else 'plain'} seed {seed}",
        ).seconds  # fmt: skip

    return cached_model(cfg, spec, len(train), se, seed, build, train_it, may_train)


def train_speaker_models(cfg: BenchConfig, spec, train, test, may_train: bool = True):
    """A :class:`SpeakerNet` with and without SE per training seed, and the frame-mAP
    summary. Returns ``({seed: (SE model, checkpoint)} for the explained seeds, summary)``."""
    maps = {True: [], False: []}
    seconds, explained = [], {}
    for s in cfg.train_seeds:
        for se in (True, False):
            model, secs, path = speaker_model(cfg, spec, train, se, s, may_train)
            model.to(cfg.device)
            p = speaker_probabilities(model, test.frames.to(cfg.device), test.audio.to(cfg.device))
            maps[se].append(frame_map(p.cpu(), test.frame_labels))
            seconds.append(secs)
            if se and s in cfg.explained_seeds:
                explained[s] = (model, path)
    summary = model_summary(cfg, maps[True], maps[False], seconds)
    summary.update(
        arch="SpeakerNet: 3-D conv front + 2-D trunk + temporal conv | log-mel 2-D conv; "
        "SE (r=8) in each stream and at fusion",
        score="frame mAP (AVA-ActiveSpeaker's)",
        n_train=len(train),
        n_test=len(test),
        kinds=test.kind_counts(),
        **{k.replace("accuracy", "map"): v for k, v in list(summary.items()) if "accuracy" in k},
    )
    return explained, summary


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
    return store.unit_dir(key.dataset, key.seed) / f"_{key.method}-audio.pt"


def compute_speaker_cell(unit: SpeakerUnit, key: CellKey, store: RunStore | None = None) -> Cell:
    """Explain and score one cell (see the module docstring); the spectrogram maps are
    written (atomically, before the cell) when ``store`` is given."""
    cfg, test, fam = unit.cfg, unit.test, unit.cfg.families
    device = next(unit.model.parameters()).device
    video, audio = test.frames.to(device), test.audio.to(device)
    if key.kind == "modality":
        fa = ablation_importance(unit.model, video, audio, cfg.batch_size).cpu()
        values = {"fa_visual": ("modality", fa[:, 0].numpy()),
                  "fa_audio": ("modality", fa[:, 1].numpy())}  # fmt: skip
        return _finish(Cell(key, values, torch.zeros(len(fa), 0), groups=unit.groups), unit)
    explainer = SPEAKER_METHODS[key.method](unit.model)
    explainer.attribute((video[:2], audio[:2]))  # warm-up
    start, vis, aud = time.perf_counter(), [], []
    for i in range(0, len(video), cfg.batch_size):
        v, a = explainer.attribute((video[i : i + cfg.batch_size], audio[i : i + cfg.batch_size]))
        vis.append(v.cpu())
        aud.append(a.cpu())
    ms = (time.perf_counter() - start) * 1000 / len(video)
    vis, aud = torch.cat(vis), torch.cat(aud)
    cell = Cell(key, {}, vis, groups=unit.groups)
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
