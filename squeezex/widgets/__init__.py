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

The widgets hold state in their traitlets and do all work in those plain functions, which
are tested without a kernel. Each widget carries a static PNG in ``_repr_mimebundle_``, so
nbval, nbconvert and GitHub show a picture too.

Example (in JupyterLab)::

    from squeezex.widgets import Explorer
    Explorer(model, test_set, methods=["se", "gradcam", "gradcam++"])
"""

from .compare import Compare
from .explorer import Explorer
from .speakers import SpeakerExplorer

__all__ = ["Explorer", "Compare", "SpeakerExplorer"]
