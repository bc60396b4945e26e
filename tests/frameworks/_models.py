"""Small hand-built models (torch and Keras) for boundary tests. Imported only inside tests."""

from __future__ import annotations


def torch_models():
    import torch
    from torch import nn

    class SoftmaxNet(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base

        def forward(self, x):
            return torch.softmax(self.base(x), dim=1)

    class BinaryNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(64, 1)

        def forward(self, x):
            return self.fc(x.reshape(len(x), -1))

    class ChannelsLastNet(nn.Module):
        """Expects (n, H, W, C) input."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = nn.Linear(3 * 4 * 4, 5)
            self.seen_shape = None

        def forward(self, x):
            self.seen_shape = tuple(x.shape)
            assert x.shape[-1] == 3, "channels must come last"
            return self.fc(x.reshape(len(x), -1))

    return SoftmaxNet, BinaryNet, ChannelsLastNet


def torch_quantized(base):
    """``base`` behind a non-differentiable 4-level input quantisation step (zero input gradients)."""
    import torch
    from torch import nn

    class Quantized(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base

        def forward(self, x):
            return self.base(torch.round(x * 4) / 4)

    return Quantized()
