"""A BERT-large-shaped text regressor: the encoder of the data-plane benchmark.

The architecture of BERT-large (Devlin et al. 2019): word, position and token-type embeddings,
24 post-LayerNorm transformer layers of 1024 hidden units, 16 heads and a 4096-wide GELU
feed-forward, a tanh pooler over the [CLS] position, and a linear regression head. The weights
are random (seeded): the benchmark times the arithmetic, not the answers. Written with plain
torch ops (attention through F.scaled_dot_product_attention) so that one module serves as the
eager baseline, the torch.compile baseline and, scripted, the TorchScript artifact Inferline
serves.

    input_ids       INT64 [B, S]   word pieces (BERT's uncased vocabulary of 30,522)
    attention_mask  INT64 [B, S]   1 for tokens, 0 for padding
    ->              FP32  [B, 1]   the score
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int = 30522
    max_positions: int = 512

    def flops_per_sample(self, seq: int) -> float:
        """Multiply-adds x 2 of the matrix products (embeddings, norms and softmax left out)."""
        h, f = self.hidden, self.ffn
        dense = 2 * seq * (3 * h * h + h * h + 2 * h * f)
        attention = 2 * 2 * seq * seq * h
        return float(self.layers * (dense + attention) + 2 * (h * h + h))


SHAPES = {
    "large": EncoderShape(layers=24, hidden=1024, heads=16, ffn=4096),  # BERT-large
    "tiny": EncoderShape(layers=2, hidden=64, heads=4, ffn=128),  # for a CPU dry run
}


class TransformerLayer(nn.Module):
    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.heads = s.heads
        self.qkv = nn.Linear(s.hidden, 3 * s.hidden)
        self.attn_out = nn.Linear(s.hidden, s.hidden)
        self.norm1 = nn.LayerNorm(s.hidden, eps=1e-12)
        self.ffn_in = nn.Linear(s.hidden, s.ffn)
        self.ffn_out = nn.Linear(s.ffn, s.hidden)
        self.norm2 = nn.LayerNorm(s.hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        qkv = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        x = self.norm1(x + self.attn_out(a.transpose(1, 2).reshape(b, s, h)))
        return self.norm2(x + self.ffn_out(F.gelu(self.ffn_in(x))))


class TextRegressor(nn.Module):
    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.words = nn.Embedding(s.vocab, s.hidden)
        self.positions = nn.Embedding(s.max_positions, s.hidden)
        self.token_type = nn.Embedding(2, s.hidden)
        self.norm = nn.LayerNorm(s.hidden, eps=1e-12)
        self.layers = nn.ModuleList([TransformerLayer(s) for _ in range(s.layers)])
        self.pool = nn.Linear(s.hidden, s.hidden)
        self.head = nn.Linear(s.hidden, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.words(input_ids) + self.positions(positions)[None] + self.token_type.weight[0]
        x = self.norm(x)
        mask = attention_mask.ne(0).unsqueeze(1).unsqueeze(2)  # [B,1,1,S], True: attend
        for layer in self.layers:
            x = layer(x, mask)
        pooled = torch.tanh(self.pool(x[:, 0]))
        return self.head(pooled).float()


def build(shape: str, seed: int = 0) -> TextRegressor:
    """The regressor with BERT's initialization (normal, std 0.02), float32, on the CPU."""
    torch.manual_seed(seed)
    model = TextRegressor(SHAPES[shape])
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return model.eval()
