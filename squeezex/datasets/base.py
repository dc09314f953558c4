"""What every generated dataset shares: its whole split held as tensors."""

from __future__ import annotations

from torch.utils.data import Dataset

__all__ = ["TensorSplit"]


class TensorSplit(Dataset):
    """A split held as tensors — ``images`` (N×C×H×W uint8), ``targets``, ``masks`` — read
    as ``(image, target, mask)`` items: the image as floats in [0, 1] through
    ``transform``, the target through ``target_transform`` (both ``None`` by default)."""

    transform = None
    target_transform = None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = self.images[i].float() / 255
        target = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target, self.masks[i]
