"""Training is seeded without global state; checkpoints round-trip and are written atomically."""

import torch

from squeezex.datasets import An8Flower
from squeezex.models import build_model
from squeezex.training import fit, load_checkpoint, save_checkpoint


def test_fit_is_deterministic_and_checkpoints_round_trip(tmp_path):
    data = An8Flower(n_per_class=4, size=32, seed=0)
    a, b = build_model("small", 6, seed=0), build_model("small", 6, seed=0)
    ra = fit(a, data, epochs=2, progress=False, seed=1)
    rb = fit(b, data, epochs=2, progress=False, seed=1)
    assert ra.losses == rb.losses
    path = save_checkpoint(tmp_path / "ck" / "m.pt", a, note="x")
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]
    c = build_model("small", 6, seed=5)
    assert load_checkpoint(path, c) == {"note": "x"}
    for (k, v), w in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        torch.testing.assert_close(v, w, msg=k)


def test_any_number_of_steps_trains():
    """OneCycleLR divides by zero when its warm-up ends at step 0 (4 steps at 25 %)."""
    data = An8Flower(n_per_class=2, size=32, seed=0)  # 12 images: one batch per epoch
    for epochs in (1, 3, 4, 5, 8):
        r = fit(build_model("small", 6, seed=0), data, epochs=epochs, progress=False)
        assert len(r.losses) == epochs and all(v == v for v in r.losses)
