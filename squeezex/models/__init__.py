"""Small models that train on a CPU (an image CNN, an audio-visual speaker detector), and
torchvision's zoo without downloads."""

from .cnn import SmallCNN, build_model, torchvision_model
from .speakers import LogMel, SpeakerNet, speaker_loss

__all__ = [
    "SmallCNN",
    "build_model",
    "torchvision_model",
    "SpeakerNet",
    "LogMel",
    "speaker_loss",
]
