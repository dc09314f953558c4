"""Synthetic talking heads: the four kinds, mouth and speech ground truth, alignment."""

import pytest
import torch

from squeezex.audio import log_mel
from squeezex.datasets.speakers import make_speakers


@pytest.fixture(scope="module")
def clips():
    return make_speakers(60, frames=16, size=48, seed=0)


def _opening(masks):  # mouth height per frame: its pixel count
    return masks.flatten(-2).sum(-1).float()


def test_shapes_kinds_and_determinism(clips):
    assert clips.frames.shape == (60, 16, 1, 48, 48) and clips.audio.shape == (60, 16 * 640)
    assert clips.mouth_masks.shape == (60, 16, 48, 48) and clips.speech.shape == (60, 16)
    assert set(clips.kinds) == {"speaking", "silent", "dubbed", "still"}
    assert clips.labels.tolist() == [int(k == "speaking") for k in clips.kinds]
    again = make_speakers(3, frames=16, size=48, seed=0)
    assert torch.equal(again.frames, clips.frames[:3]) and torch.equal(again.audio, clips.audio[:3])
    with pytest.raises(ValueError, match="split must be"):
        make_speakers(2, split="dev")


def test_speaking_mouths_follow_the_audio_and_negatives_do_not(clips):
    talking = [i for i, k in enumerate(clips.kinds) if k == "speaking"]
    wide = torch.stack([_opening(clips.mouth_masks[i]).max() for i in talking]).median()
    energy = log_mel(clips.audio).exp().sum(1)  # N × 4T audio frames
    per_frame = energy.view(len(clips.kinds), 16, 4).mean(2).log()
    for i, kind in enumerate(clips.kinds):
        mouth = _opening(clips.mouth_masks[i])
        speech = clips.speech[i]
        if kind == "still":
            assert mouth.max() < 0.5 * wide  # closed throughout (a thin line)
            assert speech.any()
        if kind == "silent":
            assert not speech.any() and mouth.max() > 1.5 * mouth.min()
        if kind in ("speaking", "dubbed") and speech.any() and (~speech).any():
            loud = per_frame[i][speech].mean() - per_frame[i][~speech].mean()
            assert loud > 2.0, (i, kind)  # the speech mask marks where the audio is loud
        if kind == "speaking":
            corr = torch.corrcoef(torch.stack([mouth, speech.float()]))[0, 1]
            assert corr > 0.5, (i, corr)


def test_mouth_masks_are_dark_pixels_of_the_frames(clips):
    f, m = clips.frames[:, :, 0], clips.mouth_masks
    assert (f[m] < 0.2).float().mean() > 0.95
