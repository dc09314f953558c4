"""Small models that train on a CPU (an image CNN, a vision transformer, an audio-visual
speaker detector), and torchvision's zoo without downloads."""

from .cnn import SmallCNN, build_model, torchvision_model
from .normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from .speakers import LogMel, SpeakerNet, speaker_loss
from .vit import small_vit

__all__ = [
    "SmallCNN",
    "build_model",
    "torchvision_model",
    "SpeakerNet",
    "LogMel",
    "speaker_loss",
    "small_vit",
    "Normalize",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]
