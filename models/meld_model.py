"""The reference MELD fusion model (REFERENCE-MODEL.md), with the exact module names
of the seed project's checkpoints so their `model.pth` state_dicts load unchanged.

text (BERT-base pooler -> 128) + video (r3d_18 -> 128) + audio (mel 1-D CNN -> 128)
-> concat 384 -> fusion 256 -> emotion head (7) and sentiment head (3).
"""

import torch
from torch import nn
from torchvision.models.video import r3d_18
from transformers import BertConfig, BertModel

EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
SENTIMENTS = ["negative", "neutral", "positive"]


class TextEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        # bert-base-uncased architecture (BertConfig's defaults), built from its config:
        # a checkpoint carries the weights.
        config = BertConfig(
            vocab_size=30522,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            max_position_embeddings=512,
            type_vocab_size=2,
            attn_implementation="eager",
        )
        self.bert = BertModel(config)
        self.projection = nn.Linear(768, 128)

    def forward(self, input_ids, attention_mask):
        outputs = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return self.projection(outputs.pooler_output)


class VideoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = r3d_18(weights=None)
        num_fs = self.backbone.fc.in_features
        self.backbone.fc = nn.Sequential(nn.Linear(num_fs, 128), nn.ReLU(), nn.Dropout(0.2))

    def forward(self, x):
        # [B, T, C, H, W] -> [B, C, T, H, W]
        x = x.transpose(1, 2)
        return self.backbone(x)


class ChannelsLastVideoEncoder(nn.Module):
    """A VideoEncoder running its backbone in channels-last-3d memory format: the
    same weights and arithmetic, faster 3-D convolutions. Used for export only (its
    state_dict keys differ from the seed project's)."""

    def __init__(self, encoder: VideoEncoder):
        super().__init__()
        self.backbone = encoder.backbone.to(memory_format=torch.channels_last_3d)

    def forward(self, x):
        x = x.transpose(1, 2).contiguous(memory_format=torch.channels_last_3d)
        return self.backbone(x)


class AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv1d(64, 64, kernel_size=3),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(64, 128, kernel_size=3),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
        )
        self.projection = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.2))

    def forward(self, x):
        x = x.squeeze(1)  # [B, 1, 64, 300] -> [B, 64, 300]
        features = self.conv_layers(x)  # [B, 128, 1]
        return self.projection(features.squeeze(-1))


class MultimodalSentimentModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.text_encoder = TextEncoder()
        self.video_encoder = VideoEncoder()
        self.audio_encoder = AudioEncoder()
        self.fusion_layer = nn.Sequential(
            nn.Linear(128 * 3, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.3)
        )
        self.emotion_classifier = nn.Sequential(
            nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 7)
        )
        self.sentiment_classifier = nn.Sequential(
            nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 3)
        )

    def forward(self, text_inputs, video_frames, audio_features):
        text_features = self.text_encoder(text_inputs["input_ids"], text_inputs["attention_mask"])
        video_features = self.video_encoder(video_frames)
        audio_features = self.audio_encoder(audio_features)
        combined = torch.cat([text_features, video_features, audio_features], dim=1)
        fused = self.fusion_layer(combined)
        return {
            "emotions": self.emotion_classifier(fused),
            "sentiments": self.sentiment_classifier(fused),
        }


class FlatInputs(nn.Module):
    """forward(input_ids, attention_mask, video_frames, audio_features): the same model
    with plain tensor arguments, the form that is traced to TorchScript."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, video_frames, audio_features):
        return self.model(
            {"input_ids": input_ids, "attention_mask": attention_mask}, video_frames, audio_features
        )


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Loads a seed-project `model.pth` (a state_dict). Buffers that newer transformers
    versions no longer keep (BERT's position_ids) are ignored; anything else missing
    or unexpected is an error."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model_state_dict" in state:
        state = state["model_state_dict"]
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.endswith("position_ids")}
    missing = [k for k in own if k not in state and not k.endswith("position_ids")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise SystemExit(
            f"{path}: not a checkpoint of the reference MELD model: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    model.load_state_dict(state, strict=False)
