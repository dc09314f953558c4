"""The AVA-ActiveSpeaker loader on fake files written in the preprocessed layout."""

import wave

import numpy as np
import pytest
import torch
from PIL import Image

from squeezex.datasets.ava import AVASpeakers, read_ava_csv, read_wav


def _write(root, n_frames=10, rate=16000):
    (root / "csv").mkdir(parents=True)
    lines = ["video_id,frame_timestamp,entity_box_x1,entity_box_y1,entity_box_x2,entity_box_y2,"
             "label,entity_id,label_id,instance_id"]  # fmt: skip
    crops = root / "clips_videos" / "val" / "vidA" / "vidA:1"
    crops.mkdir(parents=True)
    for k in range(n_frames):
        t = 900.0 + k * 0.04
        label = ("SPEAKING_AUDIBLE", 1) if k % 3 == 0 else ("NOT_SPEAKING", 0)
        lines.append(f"vidA,{t:.2f},0.1,0.1,0.5,0.5,{label[0]},vidA:1,{label[1]},vidA:1:0")
        Image.fromarray(np.full((20, 24, 3), 10 * k, np.uint8)).save(crops / f"{t:.2f}.jpg")
    (root / "csv" / "val_orig.csv").write_text("\n".join(lines) + "\n")
    audio = root / "clips_audios" / "val" / "vidA"
    audio.mkdir(parents=True)
    ramp = (np.arange(int(n_frames * 0.04 * rate)) % 1000).astype("<i2")  # sample i → i % 1000
    with wave.open(str(audio / "vidA:1.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(ramp.tobytes())


def test_clips_hold_frames_audio_and_per_frame_labels(tmp_path):
    _write(tmp_path)
    ds = AVASpeakers(tmp_path, "val", clip_frames=4, size=16)
    assert len(ds) == 2  # 10 frames → two whole 4-frame clips
    frames, audio, labels = ds[1]
    assert frames.shape == (4, 1, 16, 16) and frames.max() <= 1
    assert labels.tolist() == [0, 0, 1, 0]  # frames 4–7: label_id 1 on frame 6
    assert abs(frames[1].mean().item() - 50 / 255) < 0.02  # frame 5's grey level
    assert audio.shape == (int(4 * 0.04 * 16000),)
    start = int(round(4 * 0.04 * 16000))  # the clip starts 0.16 s into the track
    assert audio[0].item() == pytest.approx((start % 1000) / 32768, abs=1e-6)


def test_csv_and_wav_readers_name_their_problems(tmp_path):
    _write(tmp_path)
    rows = read_ava_csv(tmp_path / "csv" / "val_orig.csv")
    assert len(rows) == 10 and rows[0]["label_id"] == 1 and rows[0]["frame_timestamp"] == 900.0
    x, rate = read_wav(tmp_path / "clips_audios" / "val" / "vidA" / "vidA:1.wav")
    assert rate == 16000 and x.dtype == torch.float32
    bad = tmp_path / "csv" / "train_orig.csv"
    bad.write_text("vidA,900.00,0.1,0.1\n")
    with pytest.raises(ValueError, match="train_orig.csv:1: 4 columns"):
        read_ava_csv(bad)
    with pytest.raises(FileNotFoundError, match="clips_audios/<split>"):
        AVASpeakers(tmp_path / "nowhere")
    (tmp_path / "noise.wav").write_bytes(b"RIFFjunk")
    with pytest.raises(ValueError, match="not a readable WAV"):
        read_wav(tmp_path / "noise.wav")
