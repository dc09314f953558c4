"""JupyterLab widgets built from stock ipywidgets (no custom JavaScript), each module beside
the plain functions it computes with.

* :class:`Explorer` (:mod:`.explorer`) — one model, one dataset, several methods side by
  side: pick a sample, the methods, the target class, the SE channel-selection rule;
  change the overlay's opacity and the ground-truth outline; read the SE vector and the
  sample's scores. It computes with :mod:`.logic` and draws with :mod:`.render`.
* :class:`Compare` (:mod:`.compare`) — a benchmark run folder: pick dataset, seed and
  metric, see the methods ranked with their 95 % intervals, pick a method to see its best
  and worst samples (drawn with :mod:`.render`).
* :class:`SpeakerExplorer` (:mod:`.speakers`) — an active speaker model, clip by clip;
  it computes with :mod:`.speaker_logic` and draws with :mod:`.speaker_render`.
* :func:`explorer_for` — the explorer of a dataset's task kind
  (:attr:`squeezex.bench.tasks.Task.explorer`).

The widgets hold state in their traitlets and do all work in those plain functions, which
are tested without a kernel. Each widget carries a static PNG in ``_repr_mimebundle_``, so
nbval, nbconvert and GitHub show a picture too.

Example (in JupyterLab)::

    from squeezex.widgets import Explorer, explorer_for
    Explorer(model, test_set, methods=["se", "gradcam", "gradcam++"])
    explorer_for(speaker_model, "speakers")  # the SpeakerExplorer on the test clips
"""

from __future__ import annotations

from ..bench.tasks import Task, get_task, list_tasks, resolve, task_of
from ..bench.tasks.base import DEFAULT_TASK
from ..explainers.registry import input_kind
from .compare import Compare
from .explorer import Explorer
from .logic import dataset_named
from .speakers import SpeakerExplorer

__all__ = ["Explorer", "Compare", "SpeakerExplorer", "explorer_for", "task_for"]


def task_for(model, data) -> Task:
    """The task kind whose explorer shows ``model`` on ``data``.

    A registered dataset's name gives its task; a dataset whose ``task`` attribute names a
    registered kind gives that kind; otherwise the first kind whose models take the
    model's inputs (:func:`squeezex.explainers.registry.input_kind`): single-label for an
    image classifier, audio-visual for a :class:`~squeezex.models.SpeakerNet`, and
    single-label when no kind takes them.

    Example:
        >>> import torch
        >>> task_for(torch.nn.Identity(), "an8flower-single-6c").name
        'single-label'
    """
    if isinstance(data, str):
        return task_of(data)
    kind = getattr(data, "task", None)
    if isinstance(kind, str) and kind in list_tasks():
        return get_task(kind)
    inputs = input_kind(model)
    takes = [t for t in list_tasks() if get_task(t).inputs == inputs]
    return get_task(takes[0] if takes else DEFAULT_TASK)


def explorer_for(model, data, **options):
    """The explorer of ``data``'s task kind (:func:`task_for`) on ``model`` and ``data``.

    The task names its widget (:attr:`~squeezex.bench.tasks.Task.explorer`), so a new
    task kind brings its own explorer and this function needs no change: the
    :class:`Explorer` for single- and multi-label images, the :class:`SpeakerExplorer`
    for audio-visual clips. A registered dataset's name opens its test split
    (:func:`.logic.dataset_named`).

    Args:
        model: the model to explore.
        data: a dataset, a registered dataset's name, or what the explorer takes (for
            images, a tuple ``(images, targets[, masks])``).
        **options: the explorer's keyword arguments (e.g. ``methods=``).

    Example:
        >>> import torch
        >>> from squeezex.models import build_model
        >>> model = build_model("small", 6, se=True, seed=0).eval()
        >>> images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> data = (images, torch.tensor([0, 1]))
        >>> type(explorer_for(model, data, methods=["se"])).__name__
        'Explorer'
    """
    task = task_for(model, data)
    if not task.explorer:
        raise ValueError(f"the {task.name!r} task kind names no explorer (Task.explorer)")
    explorer = resolve(task.explorer)
    return explorer(model, dataset_named(data) if isinstance(data, str) else data, **options)
