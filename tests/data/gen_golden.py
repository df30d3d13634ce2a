#!/usr/bin/env python3
"""Generates the golden data for tests/nn/test_golden.cpp with PyTorch (float64).

A tiny pre-LN transformer block (d=16, 2 heads, T=5, batch 2, GELU-tanh MLP of width 64, layernorm
eps 1e-5) with deterministic weights; records the output, the loss 0.5 * sum((y - target)^2), the
gradient of every parameter and of the input, the same for a causal variant, and the parameters after
each of 3 AdamW steps. Parameter names are PyTorch's nn.Module names, identical to moelab's.

Writes (next to this script):
  golden_block_weights.safetensors  the block's parameters (loadable with Module::load)
  golden_block.safetensors          x, target, y, loss, grad.<name>, grad.x, causal.*, adamw.<k>.<name>

Run: python3 tests/data/gen_golden.py   (needs python3-torch; the tests themselves do not)
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
D, HEADS, T, B, HIDDEN, EPS = 16, 2, 5, 2, 64, 1e-5
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
ADAMW_STEPS = 3
HERE = os.path.dirname(os.path.abspath(__file__))


class Attention(nn.Module):
    def __init__(self, causal):
        super().__init__()
        self.causal = causal
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # softmax(q k^T / sqrt(Dh) [+ causal mask]) v, written out (torch 1.13 has no scaled_dot_product_attention)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // HEADS)
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        o = scores.softmax(-1) @ v
        return self.proj(o.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, causal=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=EPS)
        self.attn = Attention(causal)
        self.norm2 = nn.LayerNorm(D, eps=EPS)
        self.mlp = Mlp()

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def deterministic_weights(block):
    """Weights from a fixed-seed generator; layernorm gains near 1 so normalization is exercised."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in block.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if name.startswith("norm"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * r)
            elif name.endswith("bias"):
                p.copy_(0.1 * r)
            else:
                p.copy_(r / math.sqrt(p.shape[1]))


def loss_fn(y, target):
    return 0.5 * ((y - target) ** 2).sum()


def write_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer: u64 LE header length, JSON header padded to 8, raw LE data."""
    dtypes = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def forward_backward(block, x, target):
    block.zero_grad()
    xg = x.clone().requires_grad_(True)
    y = block(xg)
    loss = loss_fn(y, target)
    loss.backward()
    return y.detach(), loss.detach(), {n: p.grad.detach().clone() for n, p in block.named_parameters()}, xg.grad


def main():
    block = Block(causal=False)
    deterministic_weights(block)
    g = torch.Generator().manual_seed(99)
    x = torch.randn(B, T, D, generator=g)
    target = torch.randn(B, T, D, generator=g)
    weights = {n: p.detach().clone() for n, p in block.named_parameters()}

    out = {"x": x, "target": target}
    y, loss, grads, gx = forward_backward(block, x, target)
    out.update({"y": y, "loss": loss.reshape(()), "grad.x": gx})
    out.update({"grad." + n: t for n, t in grads.items()})

    causal = Block(causal=True)
    causal.load_state_dict(block.state_dict())
    y, loss, grads, gx = forward_backward(causal, x, target)
    out.update({"causal.y": y, "causal.loss": loss.reshape(()), "causal.grad.x": gx})
    out.update({"causal.grad." + n: t for n, t in grads.items()})

    opt = torch.optim.AdamW(block.parameters(), **ADAMW)
    for step in range(1, ADAMW_STEPS + 1):
        opt.zero_grad()
        loss_fn(block(x), target).backward()
        opt.step()
        out.update({f"adamw.{step}.{n}": p.detach().clone() for n, p in block.named_parameters()})

    meta = {"generator": "tests/data/gen_golden.py", "torch": torch.__version__,
            "adamw": json.dumps(ADAMW), "shape": f"B={B} T={T} d={D} heads={HEADS} hidden={HIDDEN}"}
    write_safetensors(os.path.join(HERE, "golden_block_weights.safetensors"), weights, meta)
    write_safetensors(os.path.join(HERE, "golden_block.safetensors"), out, meta)
    print(f"wrote {len(weights)} weights and {len(out)} golden tensors; loss {out['loss'].item():.12g}")


if __name__ == "__main__":
    main()
