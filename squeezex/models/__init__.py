"""Small models that train on a CPU, and torchvision's zoo without downloads."""

from .cnn import SmallCNN, build_model, torchvision_model

__all__ = ["SmallCNN", "build_model", "torchvision_model"]
