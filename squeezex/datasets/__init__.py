"""Datasets: ground-truth generators and loaders for real data in local folders."""

from .an8flower import An8Flower, An8FlowerFolder
from .digits import Digits, mnist
from .imagenet import ImageNetBoxes
from .scenes import DISTRACTOR_SHAPES, SHAPES, SceneArrays, Scenes, make_scenes
from .voc import VOC_CLASSES, VOCMasks

__all__ = [
    "An8Flower",
    "An8FlowerFolder",
    "Digits",
    "mnist",
    "VOCMasks",
    "VOC_CLASSES",
    "ImageNetBoxes",
    "Scenes",
    "SceneArrays",
    "make_scenes",
    "SHAPES",
    "DISTRACTOR_SHAPES",
]
