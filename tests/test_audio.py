"""Audio features with torch.stft: the mel filter bank, log-mel framing (4 audio frames per
25-fps video frame) and MFCCs, checked on known tones."""

import math

import pytest
import torch

from squeezex.audio import hz_to_mel, log_mel, mel_filterbank, mel_to_hz, mfcc


def _tone(freq: float, seconds: float = 1.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return torch.sin(2 * math.pi * freq * t).float()


def test_mel_scale_round_trips_and_filters_peak_at_their_centres():
    f = torch.tensor([0.0, 440.0, 1000.0, 8000.0])
    assert torch.allclose(mel_to_hz(hz_to_mel(f)), f.double(), atol=1e-6)
    assert hz_to_mel(1000.0).item() == pytest.approx(1000.0, abs=0.1)  # HTK: 1 kHz ≈ 1000 mel
    fb = mel_filterbank(512, 40, 16000)
    assert fb.shape == (257, 40) and fb.min() >= 0 and fb.max() <= 1
    peaks = fb.argmax(0)
    assert (peaks[1:] >= peaks[:-1]).all()  # centres rise with the filter index


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_a_tone_lights_the_mel_band_that_holds_its_frequency(freq):
    lm = log_mel(_tone(freq))
    band = int(lm.mean(-1).argmax())
    edges = mel_to_hz(torch.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), 42))
    assert edges[band] <= freq <= edges[band + 2]  # inside the winning filter's support


def test_four_audio_frames_fall_on_each_video_frame_at_25_fps():
    x = _tone(500.0, seconds=2.0)  # 50 video frames
    assert log_mel(x).shape == (40, 200)
    assert log_mel(x[:15999]).shape[-1] == 4 * 24  # only whole video frames
    batch = torch.stack([x, _tone(2000.0, seconds=2.0)])
    assert log_mel(batch).shape == (2, 40, 200)
    # a burst in video frame 10 (0.40–0.44 s) shows in audio frames 40–43
    burst = torch.zeros(32000)
    burst[6400:7040] = _tone(1000.0, seconds=0.04)
    energy = log_mel(burst).exp().sum(0)
    assert set(torch.topk(energy, 4).indices.tolist()) <= set(range(39, 46))


def test_mfcc_is_the_dct_of_log_mel():
    x = _tone(800.0)
    m, lm = mfcc(x), log_mel(x)
    assert m.shape == (13, 100)
    assert torch.allclose(m[0], lm.sum(0) / math.sqrt(40), atol=1e-3)  # DC term


def test_bad_audio_options_are_named():
    with pytest.raises(ValueError, match="waveform must be float"):
        log_mel(torch.zeros(3, 2, 100))
    with pytest.raises(ValueError, match="whole-sample hop"):
        log_mel(_tone(440.0), 16000, fps=30.0)
    with pytest.raises(ValueError, match="n_mfcc must be in"):
        mfcc(_tone(440.0), n_mfcc=41)
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(512, 40, 16000, f_max=9000.0)
