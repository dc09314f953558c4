"""Geometry-aware upsampling, on networks whose receptive-field centres are known."""

import pytest
import torch
from torch import nn

from squeezex.geometry import FeatureGeometry, feature_geometry, upsample


def _argmax2d(x):
    i = int(x.flatten().argmax())
    return divmod(i, x.shape[-1])


@pytest.mark.parametrize(
    "net, stride, offset",
    [
        (nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 2, 1)), 4.0, 0.0),
        (nn.Sequential(nn.Conv2d(1, 1, 3, 1, 1), nn.MaxPool2d(2)), 2.0, 0.5),
        (nn.Sequential(nn.Conv2d(1, 1, 4, 4, 0)), 4.0, 1.5),  # ConvNeXt's stem
        (nn.Sequential(nn.Conv2d(1, 1, 3, 1, 0), nn.Conv2d(1, 1, 3, 2, 0)), 2.0, 2.0),
    ],
)
def test_feature_geometry_of_known_layers(net, stride, offset):
    g = feature_geometry(net, net[-1], torch.zeros(1, 1, 32, 32))
    assert g.stride == (stride, stride) and g.offset == (offset, offset)


def test_geometry_agrees_with_the_gradient_centre_of_a_cell():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1, bias=False), nn.Conv2d(1, 1, 3, 2, 1, bias=False))
    for conv in net:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.ones(1, 1, 32, 32, requires_grad=True)
    net(x)[0, 0, 3, 4].backward()
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    w = x.grad[0, 0]
    centre = ((w * yy).sum() / w.sum(), (w * xx).sum() / w.sum())
    g = feature_geometry(net, net[-1], torch.zeros(1, 1, 32, 32))
    assert centre == (
        pytest.approx(g.stride[0] * 3 + g.offset[0]),
        pytest.approx(g.stride[1] * 4 + g.offset[1]),
    )


def test_upsample_puts_a_hot_cell_where_the_network_puts_it():
    f = torch.zeros(1, 1, 8, 8)
    f[0, 0, 3, 5] = 1
    assert _argmax2d(upsample(f, (64, 64), FeatureGeometry((8.0, 8.0), (0.0, 0.0)))) == (24, 40)
    # F.interpolate's even tiling puts it 3.5 px further (the shift METHODS.md warns about)
    naive = upsample(f, (64, 64), None)
    ref = nn.functional.interpolate(f, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(naive, ref, atol=1e-6, rtol=0)
    assert _argmax2d(naive) in {(27, 43), (28, 44), (27, 44), (28, 43)}


def test_upsample_video_maps():
    f = torch.zeros(1, 1, 2, 4, 4)
    f[0, 0, 1, 2, 1] = 1
    out = upsample(f, (8, 16, 16), FeatureGeometry((4.0, 4.0, 4.0), (1.5, 0.0, 0.0)))
    assert out.shape == (1, 1, 8, 16, 16)
    t, rest = divmod(int(out.flatten().argmax()), 256)
    assert divmod(rest, 16) == (8, 4) and t in (5, 6)  # frame 4·1 + 1.5 lies between 5 and 6
