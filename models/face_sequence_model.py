"""The two face-sequence model shapes of the robot-camera project: a CNN over each of
T face crops, an LSTM over the T frame features, and a linear layer giving one
emotion per frame ([B, T, classes] logits).

- `light`: small CNN, input (B, T, H, W, C) channels last, raw [0, 1] pixels (the
  robot CLI's `--no-normalize`), 48x48.
- `large`: wider CNN with batch norm and a 2-layer LSTM, input (B, T, C, H, W)
  channels first, ImageNet mean/std.

Used by export_face_sequence.py (export) and reference_face_sequence.py (the
checkpoint side of parity checks).
"""

import torch
from torch import nn

LABELS = ["angry", "fear", "happy", "neutral", "sad", "surprise"]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class LightCnnLstm(nn.Module):
    """(B, T, H, W, C) in [0, 1] -> (B, T, classes)."""

    def __init__(self, classes: int = 6, channels: int = 3, hidden: int = 64):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.lstm = nn.LSTM(64, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        x = x.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w)
        f = self.cnn(x).reshape(b, t, -1)
        out, _ = self.lstm(f)
        return self.fc(out)


class LargeCnnLstm(nn.Module):
    """(B, T, C, H, W) ImageNet-normalised -> (B, T, classes)."""

    def __init__(self, classes: int = 6, channels: int = 3, hidden: int = 128):
        super().__init__()

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.cnn = nn.Sequential(
            *block(channels, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
            *block(64, 128), *block(128, 128), nn.MaxPool2d(2),
            *block(128, 256), nn.AdaptiveAvgPool2d(1),
        )
        self.lstm = nn.LSTM(256, hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.fc = nn.Sequential(nn.Dropout(0.3), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        f = self.cnn(x.reshape(b * t, c, h, w)).reshape(b, t, -1)
        out, _ = self.lstm(f)
        return self.fc(out)


# How each shape is fed: the bundle's [inputs.frames] fields.
ARCHS = {
    "light": {
        "cls": LightCnnLstm,
        "layout": "THWC",
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "normalisation": "none: pixels / 255 in [0, 1] (the robot CLI's --no-normalize)",
    },
    "large": {
        "cls": LargeCnnLstm,
        "layout": "TCHW",
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "normalisation": "ImageNet: (pixels / 255 - mean) / std per RGB channel",
    },
}


def build(arch: str, classes: int) -> nn.Module:
    return ARCHS[arch]["cls"](classes=classes)


def load_state(model: nn.Module, path: str) -> nn.Module:
    """A state_dict checkpoint (or a dict holding one under 'state_dict' or
    'model_state_dict') into `model`; keys must match exactly."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    model.load_state_dict(state, strict=True)
    return model
