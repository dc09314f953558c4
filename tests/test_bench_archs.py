"""Your model, your data in the benchmark: ``squeezex bench --arch`` for every registered
architecture, ``--model`` with a squeezed checkpoint, ``--data`` with a folder with masks
and one without; the architecture and its normalisation in the fingerprint, the tables
and results.json; a clear error for each thing a user can get wrong."""

import copy
import json
import shutil

import pytest
import torch
import torchvision

from squeezex.bench import BenchConfig
from squeezex.bench.models import load_model
from squeezex.cli import main
from squeezex.datasets.user import register_folder
from squeezex.models import Normalize
from squeezex.models.archs import build_arch, get_arch, list_archs
from squeezex.models.records import arch_record, rebuild
from squeezex.models.se import find_se_block

ARCHS = ["small", "resnet", "convnext", "vit"]


@pytest.fixture(autouse=True)
def _forget_folders(forget_datasets):
    """``--data`` registers the folder as a dataset in this process: forgotten after each
    test (:func:`tests.conftest.forget_datasets`)."""
    yield


def test_the_registry_has_the_four_architectures():
    assert list_archs()[:4] == ARCHS
    assert get_arch("small").mean is None
    assert all(get_arch(a).mean is not None for a in ARCHS[1:])


@pytest.mark.parametrize("arch", ARCHS)
def test_an_architecture_builds_with_and_without_se_and_rebuilds(arch):
    x = torch.rand(2, 3, 32, 32)
    plain = build_arch(arch, 5, seed=0, size=32).eval()
    model = build_arch(arch, 5, se=True, seed=0, size=32).eval()
    assert find_se_block(plain, required=False) is None
    assert plain(x).shape == model(x).shape == (2, 5)
    first = next(iter(model.children()))
    assert (arch == "small") != isinstance(first, Normalize)  # normalised: its first layer
    record = arch_record(f"squeezex:{arch}", model, classes=list("abcde"), size=32)
    again = rebuild(record)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again(x), model(x))
    assert torch.equal(
        build_arch(arch, 5, se=True, seed=0, size=32).state_dict()[next(iter(model.state_dict()))],
        model.state_dict()[next(iter(model.state_dict()))],
    ), "the seed fixes the initial weights"


def test_the_fingerprint_changes_with_the_architecture_and_its_normalisation(monkeypatch):
    prints = {a: BenchConfig(arch=a).fingerprint() for a in ARCHS}
    assert len(set(prints.values())) == len(ARCHS)
    arch = get_arch("resnet")
    from squeezex.models import archs

    monkeypatch.setitem(archs._ARCHS, "resnet", type(arch)(**{**arch.__dict__, "mean": (0.5,) * 3}))
    assert BenchConfig(arch="resnet").fingerprint() != prints["resnet"]


def test_an_unknown_architecture_lists_the_choices(capsys):
    with pytest.raises(ValueError, match="unknown architecture 'resnet5'; choose from small, res"):
        BenchConfig(arch="resnet5")
    with pytest.raises(SystemExit):
        main(["bench", "--arch", "resnet5"])
    assert "small, resnet, convnext, vit" in capsys.readouterr().err


def _bench(out, *args):
    return main(["bench", "--seeds", "1", "--epochs", "1", "--size", "32", "--methods",
                 "se,gradcam", "--families", "localisation,faithfulness,sanity",
                 "--out", str(out), "--checkpoints", str(out / "ck"), "--quiet", *args])  # fmt: skip


@pytest.mark.parametrize("arch", ARCHS)
def test_bench_runs_end_to_end_for_every_architecture(tmp_path, capsys, arch):
    assert _bench(tmp_path, "--arch", arch, "--dataset", "scenes-6c", "--n-train", "3",
                  "--n-test", "2") == 0  # fmt: skip
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    model = results["models"]["scenes-6c"]
    assert results["config"]["arch"] == arch and model["arch_name"] == arch
    assert results["normalisation"] == get_arch(arch).normalisation
    assert "black (0 in pixel space" in results["pixel_baselines"]
    assert f"== scenes-6c, seed 0, {arch} ==" in printed and "input normalisation" in printed
    caption = (tmp_path / "results.tex").read_text().split("caption{")[1]
    assert model["arch"][:8] in caption and "input normalisation" in caption
    methods = {r["method"] for r in results["rows"]}
    assert {"se", "gradcam"} <= methods
    assert {r["family"] for r in results["rows"]} >= {"localisation", "faithfulness", "sanity"}
    ck = list((tmp_path / "ck").glob("*.pt"))
    assert len(ck) == 2 and all(p.name.startswith(f"{arch}-") == (arch != "small") for p in ck)
    se_ck = next(p for p in ck if "-se-" in p.name)  # squeezex explain reads it, normalisation too
    assert main(["explain", "--model", str(se_ck), "--data", "scenes-6c", "--n-per-class", "1",
                 "--methods", "se", "--out", str(tmp_path / "maps"), "--quiet"]) == 0  # fmt: skip
    index = json.loads((tmp_path / "maps" / "index.json").read_text())
    assert index["size"] == 32 and index["n"] == 6
    _, record = load_model(se_ck)
    expected = get_arch(arch).mean
    assert record.get("mean") == (pytest.approx(list(expected)) if expected else None)
    if arch == "resnet":  # the figures' captions name the model and its normalisation
        assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "fig")]) == 0
        captions = (tmp_path / "fig" / "CAPTIONS.md").read_text()
        assert f"{model['arch']}; input normalisation ImageNet mean/std" in captions
        assert "Faithfulness baselines, in pixel space: deletion" in captions


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """An an8Flower folder with masks (written by ``squeezex generate``), the same images
    without masks, and a torchvision resnet18 squeezed on them."""
    root = tmp_path_factory.mktemp("user-data")
    assert main(["generate", "--dataset", "an8flower-single-6c", "--n-per-class", "5",
                 "--size", "32", "--out", str(root / "flowers")]) == 0  # fmt: skip
    shutil.copytree(root / "flowers", root / "nomasks" / "flowers")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=6).state_dict(), root / "r18.pt")
    assert main(["squeeze", "--arch", "resnet18", "--weights", str(root / "r18.pt"), "--data",
                 str(root / "flowers"), "--size", "32", "--epochs", "1", "--batch-size", "8",
                 "--out", str(root / "squeezed.pt"), "--quiet"]) == 0  # fmt: skip
    return root


def test_a_folder_with_masks_is_scored_for_localisation(folders, tmp_path, capsys):
    assert _bench(tmp_path, "--data", str(folders / "flowers")) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["datasets"] == ["folder-flowers"] and results["n_test"] == 6  # 1 per class
    assert "localisation" in {r["family"] for r in results["rows"]}
    assert "oracle" in {r["method"] for r in results["rows"]}
    assert "skipped_families" not in results["models"]["folder-flowers"]


def test_a_folder_without_masks_skips_localisation_and_says_why(folders, tmp_path, capsys):
    assert _bench(tmp_path, "--data", str(folders / "nomasks" / "flowers")) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    families = {r["family"] for r in results["rows"]}
    assert "localisation" not in families and {"faithfulness", "sanity"} <= families
    why = results["models"]["folder-flowers"]["skipped_families"]["localisation"]
    assert "no masks" in why and "flowers_MASK does not exist" in why
    assert "not scored: localisation (no masks" in printed


def test_a_squeezed_checkpoint_is_scored_without_training(folders, tmp_path, capsys):
    assert _bench(tmp_path, "--model", str(folders / "squeezed.pt"), "--data",
                  str(folders / "flowers")) == 0  # fmt: skip
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    model = results["models"]["folder-flowers"]
    assert model["accuracy_without_se"] is None and model["seeds"] == [0]
    assert model["arch_name"] == "torchvision:resnet18" and model["normalisation"].startswith(
        "ImageNet mean/std"
    )
    assert "no model without SE (a given checkpoint)" in printed
    assert not (tmp_path / "ck").exists() or not list((tmp_path / "ck").glob("*.pt"))
    assert {"se", "gradcam"} <= {r["method"] for r in results["rows"]}
    other = BenchConfig(model=str(folders / "squeezed.pt"), data=str(folders / "flowers"))
    assert other.fingerprint() != BenchConfig(data=str(folders / "flowers")).fingerprint()


def test_a_changed_folder_is_another_dataset_key(folders, tmp_path):
    shutil.copytree(folders / "flowers", tmp_path / "flowers")
    shutil.copytree(folders / "flowers_MASK", tmp_path / "flowers_MASK")
    before = register_folder(tmp_path / "flowers")
    assert before.key() != register_folder(folders / "flowers").key(), "another folder"
    before = register_folder(tmp_path / "flowers")
    img = next((tmp_path / "flowers").rglob("*.png"))
    img.write_bytes(next((tmp_path / "flowers").rglob("*.png")).read_bytes() + b"\0")
    assert register_folder(tmp_path / "flowers").key() != before.key()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty-class", "class folder 'b' holds no image"),
        ("one-class", "needs one folder per class (at least 2)"),
        ("mask-size", "is 8×8 but image"),
        ("no-mask", "no mask for"),
        ("empty-mask", "is empty: mark at least one pixel of 2.png's explanation"),
        ("both", "give --data (your folder) or --dataset"),
        ("plain-model", "has no SE block: squeeze it first"),
        ("classes", "'s classes (a, b) are not the data's"),
        ("size", "takes 32-px images: run with --size 32"),
        ("model-and-arch", "--model and --arch exclude each other"),
    ],
)
def test_bad_input_is_one_line_that_names_it(tmp_path, capsys, case, message):
    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        (tmp_path / "data_MASK" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")
            mask = np.zeros((32, 32), np.uint8)
            mask[8:16, 8:16] = 255
            Image.fromarray(mask).save(tmp_path / "data_MASK" / c / f"{i}.png")
    args = ["--data", str(root)]
    if case == "empty-class":
        for p in (root / "b").iterdir():
            p.unlink()
    elif case == "one-class":
        shutil.rmtree(root / "b")
    elif case == "mask-size":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "data_MASK" / "a" / "0.png")
    elif case == "empty-mask":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "data_MASK" / "b" / "2.png")
    elif case == "no-mask":
        (tmp_path / "data_MASK" / "a" / "1.png").unlink()
    elif case == "both":
        args += ["--dataset", "scenes-6c"]
    elif case in ("plain-model", "classes", "size", "model-and-arch"):
        se = case != "plain-model"
        model = build_arch("small", 2 if case != "classes" else 2, se=se, seed=0, size=32)
        classes = ["a", "b"] if case != "classes" else ["x", "y"]
        record = arch_record("squeezex:small", model, classes=classes, size=32)
        from squeezex.training import save_checkpoint

        save_checkpoint(tmp_path / "m.pt", model, arch=record)
        args += ["--model", str(tmp_path / "m.pt")]
        args += {"size": ["--size", "64"], "model-and-arch": ["--arch", "vit"]}.get(case, [])
        if case == "classes":
            message = f"--model {tmp_path / 'm.pt'}'s classes (x, y) are not the data's (a, b)"
    base = ["--seeds", "1", "--epochs", "1", "--methods", "se", "--families", "localisation",
            "--out", str(tmp_path / "out"), "--checkpoints", "", "--quiet"]  # fmt: skip
    if "--size" not in args:
        base += ["--size", "32"]
    assert main(["bench", *args, *base]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_normalised_model_is_scored_in_pixel_space_like_an_unnormalised_one():
    """The same function with and without a Normalize layer in front (its first
    convolution folds the normalisation back out) scores the same deletion, insertion,
    infidelity and ROAD: the baselines replace pixels, before the model normalises."""
    from squeezex.metrics import deletion_curve, infidelity_score, insertion_curve, road_curve
    from squeezex.models import SmallCNN

    torch.manual_seed(0)  # a 1×1 convolution first: no zero padding to tell the two apart
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), SmallCNN(3)).eval()
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    folded = copy.deepcopy(plain)
    with torch.no_grad():  # conv(x) = conv'((x − μ)/σ) with w' = w·σ, b' = b + w·μ
        w, b = plain[0].weight, plain[0].bias
        folded[0].weight.copy_(w * std.view(1, 3, 1, 1))
        folded[0].bias.copy_(b + (w * mean.view(1, 3, 1, 1)).sum((1, 2, 3)))
    normalised = torch.nn.Sequential(Normalize(mean.tolist(), std.tolist()), folded).eval()
    x, maps, y = torch.rand(4, 3, 32, 32), torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 0])
    assert torch.allclose(plain(x), normalised(x), atol=1e-4)
    for curve in (deletion_curve, insertion_curve):
        a, b = curve(plain, x, maps, y, baseline="zero")[1], curve(normalised, x, maps, y, baseline="zero")[1]  # fmt: skip
        assert torch.allclose(a, b, atol=1e-4)
    torch.manual_seed(1)
    a = infidelity_score(plain, x, maps, y, baseline="zero")
    torch.manual_seed(1)
    assert torch.allclose(a, infidelity_score(normalised, x, maps, y, baseline="zero"), atol=1e-3)
    a, b = road_curve(plain, x, maps, y)[1], road_curve(normalised, x, maps, y)[1]
    assert torch.allclose(a, b, atol=1e-4)


def test_arch_is_refused_on_an_audio_visual_dataset():
    from squeezex.bench.tasks import get_task
    from squeezex.datasets import get_dataset, list_datasets

    name = list_datasets("audio-visual")[0]
    cfg = BenchConfig(arch="resnet", dataset=name)
    with pytest.raises(ValueError, match=f"--arch resnet applies to image datasets: {name}"):
        get_task("audio-visual").build_model(cfg, get_dataset(name), None, se=True, seed=0)
