"""Task kinds: what the benchmark trains, explains and scores for each kind of dataset.

:class:`Task` is the protocol (:mod:`.base`); the built-in kinds are single-label and
multi-label image classification (:mod:`.images`) and audio-visual active speaker
detection (:mod:`.audiovisual`). Generic code asks ``task_of(dataset)`` or
``get_task(spec.task)`` and never branches on a task's or a dataset's name.
"""

from .audiovisual import AudioVisual, SpeakerUnit
from .base import (
    Task,
    get_task,
    list_tasks,
    model_summary,
    register_task,
    resolve,
    task_datasets,
    task_of,
)
from .images import MultiLabel, SingleLabel

__all__ = [
    "Task",
    "register_task",
    "get_task",
    "list_tasks",
    "task_of",
    "task_datasets",
    "resolve",
    "model_summary",
    "SingleLabel",
    "MultiLabel",
    "AudioVisual",
    "SpeakerUnit",
]
