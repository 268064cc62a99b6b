#!/usr/bin/env python3
"""PyTorch reference for one VaLR stage-2 training step (Jeon et al., arXiv 2602.04476).

The same tiny multimodal model as valr-node (ViT tower -> 2-layer GELU projector ->
Qwen2 decoder, parameter names as valr's namedParameters(), REPA heads psi.<m>.*) and
the same step, written the straightforward PyTorch way:

  * latent feedback Coconut-style: for every latent slot one decoder forward pass with
    a Hugging Face-style KV cache (k/v tensors concatenated per layer), the last
    (post-final-norm) hidden state fed back as the next input embedding; nothing is
    detached, autograd differentiates through the whole chain;
  * tap at hidden_states[tapLayer] (0 = embeddings, numLayers = after the final norm);
  * REPA: psi = Linear(D,H) -> SiLU -> Linear(H,H) -> SiLU -> Linear(H,D_m) around
    F.interpolate(mode='bilinear', align_corners=False) of the sqrt(K) x sqrt(K) slot
    grid to the teacher grid; loss = mean over teachers of -mean cos
    (F.cosine_similarity, eps 1e-8);
  * CE with valr's target rule (position t predicts labels[t+1] unless ids[t+1] is a
    latent slot or </latent>; <latent> itself is a target), mean over the batch's
    counted targets;
  * total = CE + lambda * REPA, backward, clip_grad_norm_, one torch.optim.AdamW step.

Modes
  --oracle IN.safetensors OUT.safetensors
      IN (written by `npx tsx bench/train.bench.ts --write-fixture`) holds every
      parameter (param.<name>), one batch (batch.ids/labels/lengths [B, T] int32,
      batch.images [N, C, S, S], batch.teacher.<m> [segments, P, D_m] in (sample,
      segment) order) and the config JSON in its metadata. OUT = IN plus
      expected.loss/ce/repa, grad.<name> (every parameter, the vision tower included)
      and after.<name> (the parameters after clip + one AdamW step; the vision tower
      is frozen in stage 2 and does not move). Computed in float64 by default
      (--dtype float32 for the float32 answer); the batched computation is also
      checked against one sample at a time (no padding) before anything is written.
  --bench --config JSON --threads N --steps N [--warmup N]
      random init, a synthetic batch (config.samples, or one made here), times
      fwd + bwd + clip + AdamW steps after warm-up (the vision tower frozen, as in
      stage 2); prints ONE JSON line: {"valr": {"median_s", "min_s", "tokens_per_s",
      "tokens_per_step", "steps"}, "sft": {...} if config.sftSamples is given (the same
      step without latents: CE only), "threads", "torch", "peak_rss_mb", ...}.
      With --serve it runs steps on request instead (stdin "valr N" / "sft N" ->
      {"times": [...]}); bench/train.bench.ts interleaves them with its own steps so
      that both see the same load on a noisy machine.
      Minimal: --config '{}' is not enough; the config needs decoder, vision,
      imageTokenId, tokens, K, tapLayer, lambda, teachers, projectorHidden, lr,
      projectorLr, weightDecay, maxGradNorm (bench/train.bench.ts's StepConfig).
"""
import argparse
import json
import math
import resource
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "valr-torch-step/1"

# ---------------------------------------------------------------------------------------
# Model (attribute names give valr's parameter names)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(positions, dh, theta, dtype):
    # As transformers: inv_freq and pos * inv_freq in float32, then cast.
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    freqs = positions.float()[..., None] * inv_freq  # [B, T, dh/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]  # [B, 1, T, dh]


class KVCache:
    """Per layer, keys and values [B, Hkv, T, dh] grown by concatenation (HF DynamicCache style)."""

    def __init__(self, n):
        self.k = [None] * n
        self.v = [None] * n
        self.length = 0

    def update(self, layer, k, v):
        if self.k[layer] is not None:
            k = torch.cat((self.k[layer], k), dim=2)
            v = torch.cat((self.v[layer], v), dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class Qwen2Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H, Hkv = c["hiddenSize"], c["numHeads"], c["numKvHeads"]
        dh = D // H
        self.H, self.Hkv, self.dh = H, Hkv, dh
        self.q_proj = nn.Linear(D, H * dh, bias=c["attentionBias"])
        self.k_proj = nn.Linear(D, Hkv * dh, bias=c["attentionBias"])
        self.v_proj = nn.Linear(D, Hkv * dh, bias=c["attentionBias"])
        self.o_proj = nn.Linear(H * dh, D, bias=False)

    def forward(self, x, cos, sin, mask, cache, layer):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.dh).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.Hkv, self.dh).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.Hkv, self.dh).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(layer, k, v)
        rep = self.H // self.Hkv
        k = k.repeat_interleave(rep, dim=1)  # transformers' repeat_kv
        v = v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.H * self.dh))


class Qwen2MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, I = c["hiddenSize"], c["intermediateSize"]
        self.gate_proj = nn.Linear(D, I, bias=False)
        self.up_proj = nn.Linear(D, I, bias=False)
        self.down_proj = nn.Linear(I, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen2DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Qwen2Attention(c)
        self.mlp = Qwen2MLP(c)
        self.input_layernorm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])
        self.post_attention_layernorm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])

    def forward(self, x, cos, sin, mask, cache, layer):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocabSize"], c["hiddenSize"])
        self.layers = nn.ModuleList([Qwen2DecoderLayer(c) for _ in range(c["numLayers"])])
        self.norm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])

    def forward(self, embeds, positions, key_mask, cache, output_hidden_states=False):
        """embeds [B, T, D]; positions [B, T]; key_mask [B, past + T] bool (True = attend)."""
        B, T, _ = embeds.shape
        past = cache.length if cache is not None else 0
        c = self.c
        cos, sin = rope_cos_sin(positions, c["hiddenSize"] // c["numHeads"], c["ropeTheta"], embeds.dtype)
        kpos = torch.arange(past + T)
        causal = kpos[None, :] <= (past + torch.arange(T))[:, None]  # [T, past + T]
        mask = causal[None, None] & key_mask[:, None, None, :]
        states = []
        x = embeds
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                states.append(x)
            x = layer(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.length += T
        hidden = self.norm(x)
        if output_hidden_states:
            states.append(hidden)
        return hidden, states


class Qwen2ForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = Qwen2Model(c)
        self.lm_head = None if c["tieWordEmbeddings"] else nn.Linear(c["hiddenSize"], c["vocabSize"], bias=False)

    def head(self, hidden):
        w = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(hidden, w)


class VisionBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["hiddenSize"]
        self.H = c["numHeads"]
        self.norm1 = nn.LayerNorm(D, eps=c["layerNormEps"])
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D, eps=c["layerNormEps"])
        self.fc1 = nn.Linear(D, c["intermediateSize"])
        self.fc2 = nn.Linear(c["intermediateSize"], D)

    def forward(self, x):
        N, P, D = x.shape
        qkv = self.qkv(self.norm1(x)).view(N, P, 3, self.H, D // self.H).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # bidirectional
        x = x + self.proj(a.transpose(1, 2).reshape(N, P, D))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # exact (erf) GELU


class VisionTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        D, p, C = c["hiddenSize"], c["patchSize"], c["channels"]
        g = c["imageSize"] // p
        self.patch_embed = nn.Linear(C * p * p, D)
        self.pos_embed = nn.Embedding(g * g, D)
        self.blocks = nn.ModuleList([VisionBlock(c) for _ in range(c["numLayers"])])
        self.post_norm = nn.LayerNorm(D, eps=c["layerNormEps"])

    def forward(self, images):
        c = self.c
        D, p, C = c["hiddenSize"], c["patchSize"], c["channels"]
        # The patch embedding as the stride-p convolution it is (channel-major patches).
        w = self.patch_embed.weight.view(D, C, p, p)
        x = F.conv2d(images, w, self.patch_embed.bias, stride=p).flatten(2).transpose(1, 2)
        x = x + self.pos_embed.weight[None]
        for b in self.blocks:
            x = b(x)
        return self.post_norm(x)


class Projector(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.linear_1 = nn.Linear(din, dout)
        self.linear_2 = nn.Linear(dout, dout)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))


class RepaProjector(nn.Module):
    def __init__(self, din, hidden, dout, token_grid, patch_grid):
        super().__init__()
        self.fc1 = nn.Linear(din, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, dout)
        self.token_grid, self.patch_grid = tuple(token_grid), tuple(patch_grid)

    def forward(self, taps, upsample_first=False):
        """taps [S, K, D] -> [S, P, D_m]. upsample_first: the spec's order, Up then fc1
        (equal to fc1 then Up, bilinear weights sum to 1; the other order is cheaper)."""
        S, K, _ = taps.shape
        gh, gw = self.token_grid

        def up(x):  # [S, K, C] channels last -> [S, P, C]
            C = x.shape[-1]
            grid = x.reshape(S, gh, gw, C).permute(0, 3, 1, 2)
            y = F.interpolate(grid, size=self.patch_grid, mode="bilinear", align_corners=False)
            return y.flatten(2).transpose(1, 2)

        h = self.fc1(up(taps)) if upsample_first else up(self.fc1(taps))
        return self.fc3(F.silu(self.fc2(F.silu(h))))


class Bundle(nn.Module):
    """Everything one stage-2 step trains or reads, named as valr names it."""

    def __init__(self, cfg):
        super().__init__()
        dec, vis = cfg["decoder"], cfg["vision"]
        self.vision_tower = VisionTower(vis)
        self.projector = Projector(vis["hiddenSize"], dec["hiddenSize"])
        self.language_model = Qwen2ForCausalLM(dec)
        g = int(round(math.sqrt(cfg["K"])))
        self.psi = nn.ModuleList(
            [RepaProjector(dec["hiddenSize"], cfg["projectorHidden"], t["dim"], (g, g), t["grid"]) for t in cfg["teachers"]]
        )


def init_like_valr(bundle, seed=0):
    """Random init of the same kind as valr's (N(0, 0.02) matrices and embeddings, zero biases, unit norms)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in bundle.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


# ---------------------------------------------------------------------------------------
# The VaLR step


def split_sample(ids, labels, K, tok):
    """ids, labels: python lists of one sample. Returns (pieces, piece_targets, segments):
    text pieces around the K-slot runs (a piece after a segment starts at its </latent>)."""
    slot, lend, lstart = tok["slot"], tok["latentEnd"], tok["latentStart"]
    n = len(ids)

    def target(t):
        if t + 1 >= n or ids[t + 1] in (slot, lend):
            return -100
        return labels[t + 1]

    pieces, targets, start, i = [], [], 0, 0
    while i < n:
        if ids[i] != slot:
            i += 1
            continue
        j = i
        while j < n and ids[j] == slot:
            j += 1
        if j - i != K or i == 0 or ids[i - 1] != lstart or j >= n or ids[j] != lend:
            raise ValueError(f"malformed latent segment at {i}")
        pieces.append(ids[start:i])
        targets.append([target(t) for t in range(start, i)])
        start = i = j
    pieces.append(ids[start:])
    targets.append([target(t) for t in range(start, n)])
    return pieces, targets, len(pieces) - 1


def latent_chain(bundle, samples, images, cfg, need_taps=True):
    """The batched training forward: samples in lockstep, stage by stage (text piece of
    every sample right-padded and masked, then K latent steps), one KV cache.
    samples: list of (ids, labels) python lists; images [N, C, S, S] in placeholder order.
    Returns (sum of CE over counted targets, number of targets, {(sample, segment): tap [K, D]})."""
    lm = bundle.language_model
    dec = cfg["decoder"]
    K, tap_layer, tok = cfg["K"], cfg["tapLayer"], cfg["tokens"]
    B = len(samples)
    split = [split_sample(ids, labels, K, tok) for ids, labels in samples]
    stages = max(s[2] for s in split)
    cache = KVCache(dec["numLayers"])
    next_pos = [0] * B
    key_mask = torch.zeros(B, 0, dtype=torch.bool)
    ce_sum, n_targets, taps = None, 0, {}
    for s in range(stages + 1):
        lens = [len(sp[0][s]) if s < len(sp[0]) else 0 for sp in split]
        L = max(lens)
        hidden = None
        if L > 0:
            ids = torch.zeros(B, L, dtype=torch.long)
            tgt = torch.full((B, L), -100, dtype=torch.long)
            pos = torch.zeros(B, L, dtype=torch.long)
            real = torch.zeros(B, L, dtype=torch.bool)
            for b, sp in enumerate(split):
                n = lens[b]
                if n:
                    ids[b, :n] = torch.tensor(sp[0][s])
                    tgt[b, :n] = torch.tensor(sp[1][s])
                    real[b, :n] = True
                pos[b] = torch.tensor([next_pos[b] + min(t, n) for t in range(L)])  # padding: no position of its own
                next_pos[b] += n
            embeds = lm.model.embed_tokens(ids)
            if s == 0 and images is not None and images.shape[0] > 0:
                feats = bundle.projector(bundle.vision_tower(images))  # [N, P, D]
                ph = (ids == cfg["imageTokenId"])[..., None]
                embeds = embeds.masked_scatter(ph, feats.reshape(-1, feats.shape[-1]))  # as LLaVA does
            key_mask = torch.cat((key_mask, real), dim=1)
            hidden, _ = lm.model(embeds, pos, key_mask, cache)
            counted = int((tgt != -100).sum())
            if counted:
                # as transformers: logits at every position, ignore_index -100
                logits = lm.head(hidden)
                part = F.cross_entropy(logits.reshape(B * L, -1), tgt.reshape(-1), ignore_index=-100, reduction="sum")
                ce_sum = part if ce_sum is None else ce_sum + part
                n_targets += counted
        if s == stages:
            break
        active = [sp[2] > s for sp in split]
        act = torch.tensor(active)
        # slot 1's input: each sample's hidden state at its last real position (<latent>)
        h = hidden[torch.arange(B), torch.tensor([max(n - 1, 0) for n in lens])][:, None]  # [B, 1, D]
        steps = []
        for _ in range(K):
            pos = torch.tensor(next_pos)[:, None]
            next_pos = [p + (1 if a else 0) for p, a in zip(next_pos, active)]
            key_mask = torch.cat((key_mask, act[:, None]), dim=1)
            h, states = lm.model(h, pos, key_mask, cache, output_hidden_states=True)
            steps.append(states[tap_layer])
        if need_taps:
            seg = torch.cat(steps, dim=1)  # [B, K, D]
            for b in range(B):
                if active[b]:
                    taps[(b, s)] = seg[b]
    return ce_sum, n_targets, taps


def repa_loss(bundle, taps, targets, upsample_first=False):
    """taps {(sample, segment): [K, D]}; targets[m] [S, P, D_m] in sorted (sample, segment) order."""
    keys = sorted(taps)
    F_ = torch.stack([taps[k] for k in keys])
    losses = []
    for psi, tgt in zip(bundle.psi, targets):
        pred = psi(F_, upsample_first=upsample_first)
        losses.append(-F.cosine_similarity(pred, tgt, dim=-1, eps=1e-8).mean())
    return torch.stack(losses).mean()


def valr_loss(bundle, samples, images, teacher_targets, cfg, upsample_first=False):
    ce_sum, n, taps = latent_chain(bundle, samples, images, cfg)
    ce = ce_sum / max(n, 1)
    if taps and teacher_targets:
        repa = repa_loss(bundle, taps, teacher_targets, upsample_first)
        return ce + cfg["lambda"] * repa, ce, repa
    return ce, ce, None


def make_optimizer(bundle, cfg):
    lm = [p for n, p in bundle.named_parameters() if n.startswith(("language_model.", "projector."))]
    psi = [p for n, p in bundle.named_parameters() if n.startswith("psi.")]
    groups = [{"params": lm, "lr": cfg["lr"]}]
    if psi:
        groups.append({"params": psi, "lr": cfg["projectorLr"]})
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, weight_decay=cfg["weightDecay"])
    return opt, lm + psi


# ---------------------------------------------------------------------------------------
# safetensors without the safetensors package (F32, F64, I32, I64)

_DT = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}
_DT_NAME = {v: k for k, v in _DT.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dt = _DT[info["dtype"]]
        t = torch.frombuffer(bytearray(buf[base + a : base + b]), dtype=dt) if b > a else torch.zeros(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def write_safetensors(path, tensors, meta):
    header, parts, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _DT_NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        parts.append(data)
        off += len(data)
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for p in parts:
            f.write(p)


# ---------------------------------------------------------------------------------------
# Modes


def batch_from_file(t, cfg):
    ids, labels, lengths = t["batch.ids"], t["batch.labels"], t["batch.lengths"]
    samples = [(ids[b, : int(lengths[b])].tolist(), labels[b, : int(lengths[b])].tolist()) for b in range(ids.shape[0])]
    teachers = [t[f"batch.teacher.{m}"] for m in range(len(cfg["teachers"]))]
    return samples, t["batch.images"], teachers


def oracle(inp, outp, dtype):
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    t, meta = read_safetensors(inp)
    cfg = json.loads(meta["config"])
    bundle = Bundle(cfg).to(dtype)
    params = dict(bundle.named_parameters())
    given = {k[len("param.") :] for k in t if k.startswith("param.")}
    if given != set(params):
        raise SystemExit(f"parameter names differ: only in the file {sorted(given - set(params))}, only here {sorted(set(params) - given)}")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(t["param." + n].to(dtype))
    samples, images, teachers = batch_from_file(t, cfg)
    images = images.to(dtype)
    teachers = [x.to(dtype) for x in teachers]

    # 1. the batched step (the spec's order inside psi: upsample, then the first Linear)
    loss, ce, repa = valr_loss(bundle, samples, images, teachers, cfg, upsample_first=True)
    loss.backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).clone() for n, p in params.items()}

    # 2. self-check: one sample at a time (no padding, no masking), the other psi order
    with torch.no_grad():
        tpi = cfg["vision"]["imageSize"] // cfg["vision"]["patchSize"]
        tpi *= tpi
        ce_sum, n_all, taps, img0 = 0.0, 0, {}, 0
        for b, smp in enumerate(samples):
            n_img = sum(1 for x in smp[0] if x == cfg["imageTokenId"]) // tpi
            c, n, tp = latent_chain(bundle, [smp], images[img0 : img0 + n_img], cfg)
            img0 += n_img
            ce_sum, n_all = ce_sum + c, n_all + n
            taps.update({(b, s): v for (_, s), v in tp.items()})
        ce1 = ce_sum / n_all
        repa1 = repa_loss(bundle, taps, teachers, upsample_first=False)
        loss1 = ce1 + cfg["lambda"] * repa1
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        lb, l1 = float(loss.detach()), float(loss1)
        if abs(l1 - lb) > tol * abs(lb):
            raise SystemExit(f"self-check failed: batched loss {lb!r} vs one-at-a-time {l1!r}")
    per_sample = f"batched {lb!r} == one-at-a-time {l1!r}"

    # 3. clip + one AdamW step (stage 2: the vision tower is frozen)
    opt, trainable = make_optimizer(bundle, cfg)
    for n, p in params.items():
        if n.startswith("vision_tower."):
            p.grad = None
    norm = torch.nn.utils.clip_grad_norm_(trainable, cfg["maxGradNorm"])
    opt.step()

    out = {k: v for k, v in t.items()}
    out["expected.loss"] = loss.detach().reshape(1).float()
    out["expected.ce"] = ce.detach().reshape(1).float()
    out["expected.repa"] = repa.detach().reshape(1).float()
    out["expected.grad_norm"] = norm.detach().reshape(1).float()
    for n, p in params.items():
        out["grad." + n] = grads[n].float()
        out["after." + n] = p.detach().float()
    meta = dict(meta)
    meta["format"] = FORMAT
    meta["oracle"] = f"torch {torch.__version__}, {str(dtype).replace('torch.', '')}, bench/torch_valr_reference.py --oracle"
    meta["oracle_self_check"] = per_sample
    write_safetensors(outp, out, meta)
    print(
        json.dumps(
            {
                "loss": loss.item(), "ce": ce.item(), "repa": repa.item(), "grad_norm": norm.item(),
                "parameters": len(params), "self_check": per_sample, "out": outp,
            }
        )
    )


def default_batch(cfg, B=8, views=3, segments=3, seed=0):
    """A synthetic batch like bench/train.bench.ts's (used when config.samples is absent)."""
    tok, K, img = cfg["tokens"], cfg["K"], cfg["imageTokenId"]
    tpi = (cfg["vision"]["imageSize"] // cfg["vision"]["patchSize"]) ** 2
    V = cfg["decoder"]["vocabSize"]
    out = []
    for b in range(B):
        word = lambda i: 16 + (b * 31 + i * 7) % (V - 16)
        ids = [1] + [img] * (views * tpi) + [word(i) for i in range(8 + b % 4)]
        prompt = len(ids)
        for s in range(segments):
            ids += [tok["latentStart"]] + [tok["slot"]] * K + [tok["latentEnd"]] + [word(100 + s * 10 + i) for i in range(6 + (b + s) % 5)]
        ids += [word(999), 2]
        labels = [-100 if p < prompt else x for p, x in enumerate(ids)]
        out.append({"ids": ids, "labels": labels, "images": views})
    return out


def bench(a):
    cfg = json.loads(a.config)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    bundle = Bundle(cfg)
    init_like_valr(bundle)
    bundle.vision_tower.requires_grad_(False)  # stage 2: frozen
    opt, trainable = make_optimizer(bundle, cfg)
    vis = cfg["vision"]
    gen = torch.Generator().manual_seed(1)

    def prepare(smps, with_teachers):
        samples = [(s["ids"], s["labels"]) for s in smps]
        n_img = sum(s.get("images", 0) for s in smps)
        images = torch.randn(n_img, vis["channels"], vis["imageSize"], vis["imageSize"], generator=gen)
        segs = sum(split_sample(i, l, cfg["K"], cfg["tokens"])[2] for i, l in samples)
        teachers = (
            [torch.randn(segs, t["grid"][0] * t["grid"][1], t["dim"], generator=gen) for t in cfg["teachers"]] if with_teachers else []
        )
        return samples, images, teachers, sum(len(i) for i, _ in samples)

    def make_step(smps, with_teachers):
        samples, images, teachers, ntok = prepare(smps, with_teachers)

        def step():
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, _, _ = valr_loss(bundle, samples, images, teachers, cfg)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, cfg["maxGradNorm"])
            opt.step()
            return time.perf_counter() - t0

        return step, ntok

    runs = {"valr": make_step(cfg.get("samples") or default_batch(cfg), True)}
    if cfg.get("sftSamples"):
        runs["sft"] = make_step(cfg["sftSamples"], False)
    info = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in bundle.parameters()),
        "tokens_per_step": {k: n for k, (_, n) in runs.items()},
    }
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    if a.serve:
        # Steps on request, so that a caller can interleave them with its own:
        # stdin "valr N" / "sft N" -> stdout {"times": [s, ...]}; "quit" -> {"peak_rss_mb"}.
        print(json.dumps({"ready": True, **info}), flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            step, _ = runs[cmd[0]]
            print(json.dumps({"times": [step() for _ in range(int(cmd[1]))]}), flush=True)
        print(json.dumps({"peak_rss_mb": peak()}), flush=True)
        return

    res = dict(info)
    for name, (step, ntok) in runs.items():
        for _ in range(a.warmup):
            step()
        times = [step() for _ in range(a.steps)]
        med = statistics.median(times)
        res[name] = {"median_s": med, "min_s": min(times), "tokens_per_step": ntok, "tokens_per_s": ntok / med, "steps": len(times)}
    res["peak_rss_mb"] = peak()
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oracle", nargs=2, metavar=("IN", "OUT"))
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--config", help="JSON: model config, batch (samples), step hyper-parameters")
    ap.add_argument("--threads", type=int, default=0, help="0 = PyTorch's default")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--serve", action="store_true", help="with --bench: run steps on request from stdin (see bench())")
    a = ap.parse_args()
    if a.oracle:
        oracle(a.oracle[0], a.oracle[1], torch.float64 if a.dtype == "float64" else torch.float32)
    elif a.bench:
        if not a.config:
            ap.error("--bench needs --config JSON")
        bench(a)
    else:
        ap.error("give --oracle IN OUT or --bench")


if __name__ == "__main__":
    main()
