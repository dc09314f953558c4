"""``squeezex squeeze``: a torchvision builder and a local state dict, an image folder, a
checkpoint that rebuilds the squeezed model (its normalisation included) for
``squeezex explain``; and a one-line error for each thing a user can get wrong."""

import json

import pytest
import torch
import torchvision

from squeezex.bench.bulk import load_model
from squeezex.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("squeeze-cli")
    assert main(["generate", "--dataset", "an8flower-single-6c", "--n-per-class", "4",
                 "--size", "32", "--out", str(root / "train")]) == 0  # fmt: skip
    torch.manual_seed(0)
    weights = root / "resnet18.pt"
    torch.save(torchvision.models.resnet18(num_classes=6).state_dict(), weights)
    return root


def _squeeze(folder, *extra):
    return main(["squeeze", "--arch", "resnet18", "--weights", str(folder / "resnet18.pt"),
                 "--data", str(folder / "train"), "--size", "32", "--epochs", "1",
                 "--batch-size", "8", "--quiet", *extra])  # fmt: skip


def test_a_squeezed_checkpoint_rebuilds_and_explains(folder, capsys):
    out = folder / "squeezed.pt"
    assert _squeeze(folder, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "max |Δ logit| = 0" in printed and "wrote" in printed
    model, arch = load_model(out)
    assert arch["builder"] == "torchvision:resnet18" and arch["size"] == 32
    assert (
        arch["mean"] == pytest.approx([0.485, 0.456, 0.406]) and arch["se"]["gate"] == "normalised"
    )
    assert arch["squeezed"]["frozen_unchanged"] is True and len(arch["classes"]) == 6
    original = torchvision.models.resnet18(num_classes=6)
    original.load_state_dict(torch.load(folder / "resnet18.pt"))
    frozen = {k: v for k, v in original.state_dict().items() if not k.startswith("fc.")}
    rebuilt = {k.removeprefix("1.").replace(".body.", "."): v
               for k, v in model.state_dict().items() if ".se." not in k}  # fmt: skip
    assert all(torch.equal(rebuilt[k], v) for k, v in frozen.items()), "backbone as it was"
    maps = folder / "maps"
    assert main(["explain", "--model", str(out), "--data", str(folder / "train"),
                 "--methods", "se,gradcam", "--out", str(maps), "--quiet"]) == 0  # fmt: skip
    index = json.loads((maps / "index.json").read_text())
    assert set(index["methods"]) == {"se", "gradcam"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "resnet1800"], "unknown torchvision model 'resnet1800'"),
        (["--arch", "resnet34"], "does not fit ResNet: missing: layer1.2"),
        (["--val-split", "1.5"], "expected a number in (0, 1)"),
        (["--data", "{root}/empty"], "holds no image"),
        (["--val", "{root}/other"], "--val {root}/other has classes the training data does not: zebra"),
        (["--weights", "{root}/none.pt"], "no such file"),
        (["--out", "{root}"], "is a folder: name the checkpoint file"),
        (["--out", "{root}/resnet18.pt/x.pt"], "is a file, not a folder"),
        (["--mean", "0.5,0.5"], "mean and std need one value per channel"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_that_names_it(folder, capsys, args, message):
    (folder / "empty").mkdir(exist_ok=True)
    (folder / "other" / "zebra").mkdir(parents=True, exist_ok=True)
    img = next((folder / "train").rglob("*.png"))
    (folder / "other" / "zebra" / img.name).write_bytes(img.read_bytes())
    args = [a.replace("{root}", str(folder)) for a in args]
    base = ["--out", str(folder / "x.pt")] if "--out" not in args else []
    argv = ["squeeze", "--arch", "resnet18", "--weights", str(folder / "resnet18.pt"),
            "--data", str(folder / "train"), "--size", "32", "--epochs", "1", "--quiet"]  # fmt: skip
    for i in range(0, len(args), 2):  # the case's options replace the defaults
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i : i + 2]
    try:
        code = main(argv + base)
    except SystemExit as exc:  # argparse's own check of a value
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message.replace("{root}", str(folder)) in err and len(err.strip().splitlines()) == 1
