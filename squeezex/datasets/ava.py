"""AVA-ActiveSpeaker from a local folder, in the preprocessed layout ASD code uses
(TalkNet, LoCoNet and others), never downloaded::

    <root>/csv/<split>_orig.csv                                  one row per face frame
    <root>/clips_audios/<split>/<video_id>/<entity_id>.wav        the entity's audio track
    <root>/clips_videos/<split>/<video_id>/<entity_id>/<t:.2f>.jpg  the face crop at time t

CSV columns: ``video_id, frame_timestamp, entity_box_x1, entity_box_y1, entity_box_x2,
entity_box_y2, label, entity_id, label_id, instance_id`` (a header line is optional);
``label`` is one of AVA's ``NOT_SPEAKING``, ``SPEAKING_AUDIBLE`` and
``SPEAKING_NOT_AUDIBLE``, and ``label_id`` its number (0, 1, 2): 1 is speaking, 0 and 2
are not. Any other label or label_id, the two disagreeing, or a timestamp that is not a
finite number is refused with a ``ValueError`` naming the value, the file and the line.

:class:`AVASpeakers` cuts each entity's track into clips of ``clip_frames`` consecutive
face frames: items are ``(frames T×1×H×W grey in [0, 1], waveform (samples,), labels
(T,) long)``, the audio being the entity's track from the clip's first timestamp for
``T / fps`` seconds (zero-padded past its end). The WAV files are 16-bit PCM, read with
the standard library's :mod:`wave`; the face crops with :func:`squeezex.images.read_image`.

The parameters are checked when the dataset is made (``clip_frames`` an integer ≥ 1,
``size`` an integer from 1 to 1024, ``fps`` a number from 1 to 1000; a wrong type is a
``TypeError``, a value out of range a ``ValueError``, each naming the parameter). Tracks
shorter than a clip give no clip: when no track is long enough the dataset is empty, with
a ``UserWarning`` that says how many tracks there are, their lengths and the clip length.
"""

from __future__ import annotations

import csv
import math
import warnings
import wave
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..images import read_image
from ..options import Float, Int, Text, check

__all__ = ["AVASpeakers", "read_ava_csv", "read_wav"]

_COLUMNS = (
    "video_id", "frame_timestamp", "entity_box_x1", "entity_box_y1", "entity_box_x2",
    "entity_box_y2", "label", "entity_id", "label_id", "instance_id",
)  # fmt: skip
#: AVA-ActiveSpeaker's labels and their ``label_id``.
LABELS = {"NOT_SPEAKING": 0, "SPEAKING_AUDIBLE": 1, "SPEAKING_NOT_AUDIBLE": 2}
_LAYOUT = (
    "<root>/csv/<split>_orig.csv, <root>/clips_audios/<split>/<video_id>/<entity_id>.wav and "
    "<root>/clips_videos/<split>/<video_id>/<entity_id>/<timestamp:.2f>.jpg"
)


def read_ava_csv(path) -> list[dict]:
    """The rows of an ``<split>_orig.csv`` as dicts (timestamp float, label_id int)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no AVA-ActiveSpeaker annotation file at {path}; expected {_LAYOUT}"
        )
    rows = []
    with path.open(newline="") as f:
        for n, rec in enumerate(csv.reader(f), start=1):
            if not rec or (n == 1 and rec[0] == "video_id"):
                continue
            if len(rec) != len(_COLUMNS):
                raise ValueError(f"{path}:{n}: {len(rec)} columns, expected {len(_COLUMNS)}")
            row = dict(zip(_COLUMNS, rec, strict=True))
            try:
                row["frame_timestamp"] = float(row["frame_timestamp"])
                row["label_id"] = int(row["label_id"])
            except ValueError:
                raise ValueError(f"{path}:{n}: bad timestamp or label_id in {rec}") from None
            _check_row(row, f"{path}:{n}")
            rows.append(row)
    return rows


def _check_row(row: dict, where: str) -> None:
    """A row's timestamp is finite, its label AVA's and its label_id the label's."""
    if not math.isfinite(row["frame_timestamp"]):
        raise ValueError(f"{where}: frame_timestamp {row['frame_timestamp']} is not finite")
    label, label_id = row["label"].strip(), row["label_id"]
    if label not in LABELS:
        raise ValueError(
            f"{where}: unknown label {label!r}; AVA-ActiveSpeaker's are {', '.join(LABELS)}"
        )
    if label_id != LABELS[label]:
        raise ValueError(
            f"{where}: label_id {label_id} does not match label {label} (its label_id is "
            f"{LABELS[label]}; {', '.join(f'{k} {v}' for k, v in LABELS.items())})"
        )


def read_wav(path) -> tuple[torch.Tensor, int]:
    """``(waveform float32 in [-1, 1], sample rate)`` of a 16-bit PCM WAV (channels
    averaged)."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path} is not 16-bit PCM")
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            channels, rate = w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path} is not a readable WAV file ({exc})") from None
    x = data.reshape(-1, channels).astype(np.float32).mean(1) / 32768.0
    return torch.from_numpy(x), rate


class AVASpeakers(Dataset):
    """Clips of AVA-ActiveSpeaker face tracks (see the module docstring).

    Args:
        root: the folder holding ``csv/``, ``clips_audios/`` and ``clips_videos/``.
        split: ``"train"`` or ``"val"`` (any ``<split>_orig.csv`` present).
        clip_frames: face frames per clip, an integer ≥ 1 (a track's tail shorter than
            this is dropped).
        size: side of the grey face crops, an integer from 1 to 1024.
        fps: the frame rate of the timestamps, from 1 to 1000 (25 in AVA's preprocessed
            clips): a clip's audio lasts ``clip_frames / fps`` seconds.

    Raises:
        FileNotFoundError: no such folder or annotation file (the layout is named).
        TypeError: a parameter of the wrong type (named).
        ValueError: a parameter out of range (named), or an annotation row that is not
            AVA's (the file and line named).
    """

    def __init__(self, root, split: str = "val", *, clip_frames: int = 8, size: int = 112,
                 fps: float = 25.0) -> None:  # fmt: skip
        self.split = check("split", split, Text())
        self.clip_frames = check("clip_frames", clip_frames, Int(1))
        self.size = check("size", size, Int(1, 1024))
        self.fps = check("fps", fps, Float(1, 1000))
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"no AVA-ActiveSpeaker folder at {self.root}; expected {_LAYOUT}"
            )
        annotations = self.root / "csv" / f"{split}_orig.csv"
        tracks = defaultdict(list)
        for row in read_ava_csv(annotations):
            tracks[(row["video_id"], row["entity_id"])].append(row)
        self.clips = []  # (video, entity, rows of the clip)
        self._starts = {}  # (video, entity) → the track's first timestamp (its audio's 0)
        for (video, entity), rows in tracks.items():
            rows.sort(key=lambda r: r["frame_timestamp"])
            self._starts[(video, entity)] = rows[0]["frame_timestamp"]
            for s in range(0, len(rows) - self.clip_frames + 1, self.clip_frames):
                self.clips.append((video, entity, rows[s : s + self.clip_frames]))
        self.classes = ["not speaking", "speaking"]
        if not self.clips:
            warnings.warn(_why_empty(annotations, tracks, self.clip_frames), stacklevel=2)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        video, entity, rows = self.clips[i]
        frames = torch.stack([self._frame(video, entity, r["frame_timestamp"]) for r in rows])
        labels = torch.tensor([int(r["label_id"] == 1) for r in rows])
        return frames, self._audio(video, entity, rows[0]["frame_timestamp"]), labels

    def _frame(self, video: str, entity: str, t: float) -> torch.Tensor:
        path = self.root / "clips_videos" / self.split / video / entity / f"{t:.2f}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"missing face crop {path}; expected {_LAYOUT}")
        img = read_image(path, "L").resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]

    def _audio(self, video: str, entity: str, start: float) -> torch.Tensor:
        path = self.root / "clips_audios" / self.split / video / f"{entity}.wav"
        if not path.is_file():
            raise FileNotFoundError(f"missing audio track {path}; expected {_LAYOUT}")
        x, rate = read_wav(path)
        a = int(round((start - self._starts[(video, entity)]) * rate))
        n = int(round(self.clip_frames / self.fps * rate))
        out = torch.zeros(n)
        piece = x[a : a + n]
        out[: len(piece)] = piece
        return out


def _why_empty(annotations: Path, tracks: dict, clip_frames: int) -> str:
    """Why no clip was cut from ``tracks``, in words."""
    if not tracks:
        return f"{annotations} has no face rows: the AVA-ActiveSpeaker dataset is empty"
    lengths = [len(rows) for rows in tracks.values()]
    span = (
        f"{min(lengths)}" if min(lengths) == max(lengths) else f"{min(lengths)} to {max(lengths)}"
    )
    return (
        f"the AVA-ActiveSpeaker dataset of {annotations} is empty: its {len(lengths)} face "
        f"track(s) have {span} frames, fewer than clip_frames={clip_frames}; pass "
        f"clip_frames <= {max(lengths)} to cut clips from them"
    )
