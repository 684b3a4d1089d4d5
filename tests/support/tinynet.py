"""A tiny hand-written PyTorch CNN for the tests of PyTorch models.

Convolution -> in-place ReLU (the value filtag reads is overwritten as soon as
the ReLU runs), a convolution called twice (filtag reads its first call), a
strided convolution, global average pooling and a linear classifier. Named
``tests.support.tinynet:make`` (a module) or ``<path>/tinynet.py:make`` (a file).
"""

from torch import nn


class TinyNet(nn.Module):
    """The network: images (batch, channels, h, w) -> logits (batch, classes)."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.down = nn.Conv2d(8, 16, 3, stride=2)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        x = self.features(x)
        x = self.act(self.mid(x))
        x = self.act(self.mid(x))  # the same module again
        x = self.act(self.down(x))
        return self.head(x.mean(dim=(2, 3)))


def make() -> nn.Module:
    """A 1-channel (grayscale) TinyNet with 10 outputs."""
    return TinyNet()


def make_rgb() -> nn.Module:
    """A 3-channel (RGB) TinyNet with 10 outputs."""
    return TinyNet(channels=3)


def not_a_module() -> int:
    """A factory that returns no module."""
    return 42
