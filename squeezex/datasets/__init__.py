"""Datasets: the registry of benchmark datasets, ground-truth generators, and loaders
for real data in local folders."""

from .an8flower import An8Flower, An8FlowerFolder
from .ava import AVASpeakers
from .celeba import ATTRIBUTE_PARTS, CELEBA_ATTRIBUTES, MASK_PARTS, CelebA, CelebAMaskHQ
from .cues import CueDataset, CueFlowers, cue_reliance, decode_cue, plant_cue
from .digits import Digits, mnist
from .faces import ATTRIBUTES, AttributePairs, SyntheticFaces, make_faces
from .folders import write_folders
from .imagenet import ImageNetBoxes
from .registry import (
    TASKS,
    DatasetSpec,
    TrainOptions,
    build_dataset,
    get_dataset,
    list_datasets,
    register_dataset,
)
from .scenes import DISTRACTOR_SHAPES, SHAPES, SceneArrays, Scenes, make_scenes
from .speakers import KINDS, SyntheticSpeakers, make_speakers
from .voc import VOC_CLASSES, VOCMasks

__all__ = [
    "An8Flower",
    "An8FlowerFolder",
    "CueDataset",
    "CueFlowers",
    "plant_cue",
    "decode_cue",
    "cue_reliance",
    "SyntheticFaces",
    "AttributePairs",
    "make_faces",
    "ATTRIBUTES",
    "AVASpeakers",
    "SyntheticSpeakers",
    "make_speakers",
    "KINDS",
    "CelebA",
    "CelebAMaskHQ",
    "CELEBA_ATTRIBUTES",
    "MASK_PARTS",
    "ATTRIBUTE_PARTS",
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
    "TASKS",
    "DatasetSpec",
    "TrainOptions",
    "register_dataset",
    "get_dataset",
    "list_datasets",
    "build_dataset",
    "write_folders",
]
