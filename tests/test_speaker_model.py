"""The audio-visual detector, its explanations, modality importance, the clip metrics and
the harness on ``speakers``."""

import json

import pytest
import torch
import torch.nn.functional as F

from squeezex.bench import BenchConfig, run
from squeezex.datasets import SyntheticSpeakers, get_dataset, list_datasets
from squeezex.explainers.speakers import (
    SPEAKER_METHODS,
    SpeakerGradCAM,
    SpeakerSEAttribution,
    ablation_importance,
    fusion_importance,
    modality_ablation,
    normalise_clip,
    speaker_probabilities,
)
from squeezex.metrics import (
    frame_map,
    frame_pointing_game,
    speech_mass,
    speech_share,
    voc_average_precision,
)
from squeezex.models import SpeakerNet, speaker_loss
from squeezex.models.speakers import AUX_WEIGHT, EMBED
from squeezex.training import fit_speakers


@pytest.fixture(scope="module")
def clips():
    return SyntheticSpeakers(12, frames=8, size=32, seed=0, split="test")


@pytest.fixture(scope="module")
def model(clips):
    torch.manual_seed(0)
    net = SpeakerNet(frames=8, size=32)
    fit_speakers(net, SyntheticSpeakers(16, frames=8, size=32, seed=1), epochs=1, progress=False)
    return net.eval()


def _inputs(clips, n=4):
    return clips.frames[:n], clips.audio[:n]


def test_dataset_items_and_registration(clips):
    frames, wave, label, masks, speech = clips[0]
    assert frames.shape == (8, 1, 32, 32) and wave.shape == (8 * 640,)
    assert masks.shape == (8, 32, 32) and speech.shape == (8,) and label in (0, 1)
    fl = clips.frame_labels
    assert fl.shape == (12, 8)
    assert torch.equal(fl.bool(), clips.labels[:, None].bool() & clips.speech)
    assert sum(len(v) for v in clips.kind_groups().values()) == 12
    assert "speakers" in list_datasets("audio-visual")
    spec = get_dataset("speakers")
    assert spec.task == "audio-visual" and spec.pointing_tolerance == 2
    assert len(spec.build("test", n_per_class=5, size=32)) == 5


def test_model_shapes_checks_and_loss(model, clips):
    video, audio = _inputs(clips)
    out = model.forward_all(video, audio)
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (4, 8) for k in out}
    assert torch.allclose(model(video, audio), out["av"])
    y = clips.frame_labels[:4]
    parts = [F.binary_cross_entropy_with_logits(out[k], y.float()) for k in out]
    assert speaker_loss(out, y).item() == pytest.approx(
        (parts[0] + AUX_WEIGHT * (parts[1] + parts[2])).item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="video must be N×8×1×32×32"):
        model(video[:, :4], audio)
    with pytest.raises(ValueError, match="audio must be N×samples"):
        model(video, audio[:, :100])
    plain = SpeakerNet(se=False, frames=8, size=32)
    assert not any("SEBlock" in type(m).__name__ for m in plain.modules())


def test_the_classifier_depends_on_every_se_vector(model, clips):
    video, audio = _inputs(clips)
    base = model(video, audio)
    for block in (model.visual_se, model.audio_se, model.fusion_se):
        handle = block.scale_activation.register_forward_hook(lambda m, i, s: s * 0)
        try:
            changed = model(video, audio)
        finally:
            handle.remove()
        assert (changed - base).abs().max() > 1e-5, block


def test_se_maps_are_the_channel_mean_of_s_u(model, clips):
    video, audio = _inputs(clips)
    v, a = SpeakerSEAttribution(model).attribute((video, audio))
    assert v.shape == (4, 1, 8, 32, 32) and a.shape == (4, 1, 40, 32)
    assert 0 <= v.min() and v.max() <= 1 and 0 <= a.min() and a.max() <= 1
    with model.visual_se.recording() as tape, torch.no_grad():
        model(video, audio)
    layer = tape["x"].mean(1, keepdim=True)  # N×1×T×h×w
    up = F.interpolate(layer[:, :, 3], size=(32, 32), mode="bilinear", align_corners=False)
    expect = normalise_clip(layer)  # per-clip scale: frame 3 relative to the whole clip
    got = v[:, :, 3]
    # the argmax of frame 3 is where the upsampled channel mean peaks
    assert torch.equal(got.flatten(1).argmax(1), up.flatten(1).argmax(1))
    assert expect.shape == layer.shape
    with pytest.raises(ValueError, match="needs a SpeakerNet built with se=True"):
        SpeakerSEAttribution(SpeakerNet(se=False, frames=8, size=32))
    with pytest.raises(ValueError, match="tuple"):
        SpeakerSEAttribution(model).attribute(video)
    with pytest.raises(TypeError, match="SpeakerNet"):
        SpeakerSEAttribution(torch.nn.Linear(2, 2))


def test_gradcam_matches_autograd_on_the_same_layer(model, clips):
    video, audio = _inputs(clips, 2)
    got, _ = SpeakerGradCAM(model).attribute((video, audio))
    feats = {}
    handle = model.visual_se.register_forward_hook(lambda m, i, o: feats.setdefault("a", o))
    try:
        score = model(video, audio).mean(1).sum()
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(score, feats["a"])
    w = grad.mean(dim=(2, 3, 4), keepdim=True)
    cam = (w * feats["a"]).sum(1, keepdim=True).clamp(min=0).detach()
    n, _, t, h, ww = cam.shape
    up = F.interpolate(cam.transpose(1, 2).reshape(n * t, 1, h, ww), size=(32, 32),
                       mode="bilinear", align_corners=False)  # fmt: skip
    expect = normalise_clip(up.reshape(n, t, 1, 32, 32).transpose(1, 2))
    assert torch.allclose(got, expect, atol=1e-5)


def test_fusion_importance_reads_the_fusion_se_vector(model, clips):
    video, audio = _inputs(clips)
    imp = fusion_importance(model, (video, audio))
    s = imp["s"]
    assert s.shape == (4, 8, 2 * EMBED)
    assert torch.allclose(imp["frame"][..., 0], s[..., :EMBED].mean(-1))
    assert torch.allclose(imp["clip"], imp["frame"].mean(1))


def test_modality_ablation_zeroes_the_right_entries(model, clips):
    video, audio = _inputs(clips)
    whole = modality_ablation(model, video, audio, rule="all")
    kept = {}

    def zero_visual(m, i, s):
        s = s.clone()
        s.reshape(s.shape[0], -1)[:, :EMBED] = 0
        return s

    handle = model.fusion_se.scale_activation.register_forward_hook(zero_visual)
    try:
        kept["visual"] = torch.sigmoid(model(video, audio))
    finally:
        handle.remove()
    assert torch.allclose(whole["visual"], kept["visual"], atol=1e-6)
    assert torch.allclose(whole["none"], speaker_probabilities(model, video, audio))
    partial = modality_ablation(model, video, audio)  # below-threshold entries only
    gap = (partial["visual"] - whole["none"]).abs().mean()
    assert gap <= (whole["visual"] - whole["none"]).abs().mean() + 1e-6
    with pytest.raises(ValueError, match="rule must be"):
        modality_ablation(model, video, audio, rule="some")


def test_feature_ablation_baseline_is_the_drop_when_a_stream_is_zeroed(model, clips):
    video, audio = _inputs(clips)
    imp = ablation_importance(model, video, audio)
    with torch.no_grad():
        p = model(video, audio).mean(1)
        pv = model(torch.zeros_like(video), audio).mean(1)
        pa = model(video, torch.zeros_like(audio)).mean(1)
    assert torch.allclose(imp, torch.stack([p - pv, p - pa], 1), atol=1e-5)
    logits = modality_ablation(model, video, audio, output="logit")
    assert torch.allclose(
        torch.sigmoid(logits["audio"]), modality_ablation(model, video, audio)["audio"]
    )
    with pytest.raises(ValueError, match="output must be"):
        speaker_probabilities(model, video, audio, output="odds")


def test_clip_metrics():
    masks = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    masks[:, :2, 5:7, 3:5] = True  # frame 2 has no mouth pixel
    maps = torch.zeros(2, 1, 3, 8, 8)
    maps[0, 0, :, 6, 4] = 1.0  # on the mouth in every frame
    maps[1, 0, :, 0, 0] = 1.0  # far from it
    maps[1, 0, 1, 6, 3] = 2.0  # frame 1 on it
    pg = frame_pointing_game(maps, masks)
    assert pg.tolist() == [1.0, 0.5]
    assert torch.isnan(frame_pointing_game(maps, torch.zeros_like(masks))).all()
    speech = torch.tensor([[True, False, False, True], [False, False, False, False]])
    uniform = torch.ones(2, 1, 5, 16)
    sm = speech_mass(uniform, speech)
    assert sm[0].item() == pytest.approx(0.5) and torch.isnan(sm[1])
    assert speech_share(speech)[0].item() == pytest.approx(0.5)
    inside = torch.zeros(2, 1, 5, 16)
    inside[0, 0, :, 12:] = 1
    assert speech_mass(inside, speech)[0].item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="multiple"):
        speech_mass(torch.ones(1, 1, 5, 7), speech[:1])
    p, y = torch.rand(3, 4), torch.tensor([[1, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]])
    assert frame_map(p, y) == pytest.approx(voc_average_precision(p.flatten(), y.flatten()))


def test_fit_speakers_is_seeded():
    data = SyntheticSpeakers(8, frames=8, size=32, seed=2)
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = SpeakerNet(frames=8, size=32)
        res = fit_speakers(net, data, epochs=1, batch_size=4, seed=3, progress=False)
        nets.append(net)
        assert len(res.losses) == 1 and not net.training
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="epochs"):
        fit_speakers(nets[0], data, epochs=0)


def test_harness_runs_speakers_and_resumes(tmp_path):
    cfg = BenchConfig(
        dataset="speakers", methods=["se", "gradcam", "random", "vebi"], seeds=1, size=32,
        n_train_per_class=24, n_test_per_class=12, out=str(tmp_path / "run"),
        checkpoints=str(tmp_path / "ck"), progress=False,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="no audio-visual version of vebi"):
        res = run(cfg)
    metrics = {(r["method"], r["metric"]) for r in res["rows"]}
    for m in ("se", "gradcam", "random"):
        assert (m, "frame_pointing_game") in metrics and (m, "speech_mass") in metrics
    assert ("se", "ablation_audio_dmap") in metrics and ("se", "ablation_visual_drop") in metrics
    assert ("feature-ablation", "fa_visual") in metrics
    kinds = {r["attribute"] for r in res["attribute_rows"]}
    assert kinds <= {"speaking", "silent", "dubbed", "still"} and "speaking" in kinds
    model = res["models"]["speakers"]
    assert model["score"].startswith("frame mAP") and len(model["map_per_seed"]) == 1
    unit = tmp_path / "run" / res["cells_dir"] / "speakers" / "0"
    assert (unit / "_se-audio.pt").is_file()
    maps = torch.load(unit / "se.pt")
    assert maps.shape == (12, 1, 16, 32, 32)
    (unit / "_gradcam-audio.pt").unlink()
    with pytest.warns(UserWarning):
        again = run(cfg)
    reused = {c["key"]: c["reused"] for c in again["cells"]}
    assert reused["speakers/0/se"] and not reused["speakers/0/gradcam"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["rows"] == again["rows"]


def test_speaker_methods_cover_the_registry_names():
    assert list(SPEAKER_METHODS) == ["se", "gradcam", "random"]
