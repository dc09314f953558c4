"""Datasets: ground-truth generators and loaders for real data in local folders."""

from .an8flower import An8Flower, An8FlowerFolder
from .digits import Digits, mnist

__all__ = ["An8Flower", "An8FlowerFolder", "Digits", "mnist"]
