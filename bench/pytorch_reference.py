#!/usr/bin/python3
"""PyTorch reference side of the aha side-by-side CPU benchmark.

A small, self-contained PyTorch implementation of the Qwen2 / Llama decoder
(HF semantics: y = x W^T + b, RMSNorm x / sqrt(mean(x^2) + eps) * w, rotate-half
RoPE, GQA, SwiGLU MLP, optionally tied lm_head), plus

  * a training-step benchmark (forward on random tokens, next-token
    cross-entropy, backward, clip_grad_norm_(1.0), torch.optim.AdamW step; eager fp32),
  * a batched sampling benchmark with a preallocated KV cache (prefill all
    prompts, then one token at a time for all sequences, temperature-1.0
    multinomial sampling),
  * a self-test (--self-test) checking the KV-cached path against a full
    forward and a float64 naive reference, and the safetensors reader.

No dependency beyond torch + numpy (transformers / safetensors are not needed).
Run with the Debian interpreter: /usr/bin/python3 bench/pytorch_reference.py --help
"""

import argparse
import ctypes
import json
import math
import os
import platform
import resource
import statistics
import struct
import sys
import time
from dataclasses import dataclass, asdict
from typing import Dict, List, Optional, Tuple

# torch's OpenMP pool (libgomp) and the pthread OpenBLAS pool each spin-wait when idle and steal the cores from
# each other; with libgomp's default (active) waiting, elementwise ops and decode ran 5-20x slower on the 2-core
# bench machine. Passive waiting is the fair setting for torch here. libgomp reads this once when torch loads, so
# it has to be set before the import. --omp-wait-policy passive|active|unset overrides; without the option an
# OMP_WAIT_POLICY already in the environment is kept.
def _omp_wait_policy_from_argv() -> Optional[str]:
    for i, a in enumerate(sys.argv):
        if a == "--omp-wait-policy" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--omp-wait-policy="):
            return a.split("=", 1)[1]
    return None


_owp = _omp_wait_policy_from_argv()
if _owp == "unset":
    os.environ.pop("OMP_WAIT_POLICY", None)
elif _owp in ("passive", "active"):
    os.environ["OMP_WAIT_POLICY"] = _owp.upper()
else:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- config


@dataclass
class ModelConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    rope_theta: float
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    attention_bias: bool = True  # bias on q/k/v projections (Qwen2: always; Llama: config.attention_bias)
    head_dim: Optional[int] = None
    model_type: str = "qwen2"

    def __post_init__(self):
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_heads
        if self.num_heads % self.num_kv_heads != 0:
            raise ValueError("num_heads must be a multiple of num_kv_heads")


PRESETS: Dict[str, ModelConfig] = {
    "qwen2-27m": ModelConfig(vocab_size=4096, hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=4,
                             intermediate_size=1536, rope_theta=10000.0, rms_norm_eps=1e-6,
                             tie_word_embeddings=True, attention_bias=True),
    "qwen2.5-0.5b": ModelConfig(vocab_size=151936, hidden_size=896, num_layers=24, num_heads=14, num_kv_heads=2,
                                intermediate_size=4864, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                tie_word_embeddings=True, attention_bias=True),
}


def config_from_hf(path: str) -> ModelConfig:
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    mt = c.get("model_type", "qwen2")
    if mt not in ("qwen2", "llama"):
        raise ValueError(f"{path}/config.json: unsupported model_type {mt!r} (qwen2 or llama)")
    rs = c.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) not in (None, "default"):
        raise ValueError(f"{path}/config.json: rope_scaling {rs!r} not implemented")
    if c.get("mlp_bias"):
        raise ValueError(f"{path}/config.json: mlp_bias not implemented")
    heads = c["num_attention_heads"]
    return ModelConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
        num_heads=heads, num_kv_heads=c.get("num_key_value_heads") or heads,
        intermediate_size=c["intermediate_size"], rope_theta=float(c.get("rope_theta", 10000.0)),
        rms_norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        tie_word_embeddings=bool(c.get("tie_word_embeddings", mt == "qwen2")),
        attention_bias=True if mt == "qwen2" else bool(c.get("attention_bias", False)),
        head_dim=c.get("head_dim"), model_type=mt)


# --------------------------------------------------------------------------- safetensors


def _tensor_from_bytes(buf: memoryview, dtype: str, shape: List[int]) -> torch.Tensor:
    if dtype == "F32":
        a = np.frombuffer(buf, dtype="<f4").copy()
    elif dtype == "F16":
        a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F64":
        a = np.frombuffer(buf, dtype="<f8").astype(np.float32)
    else:
        raise ValueError(f"safetensors dtype {dtype} not supported (F32/BF16/F16/F64)")
    return torch.from_numpy(a.reshape(shape))


def read_safetensors(file: str) -> Dict[str, torch.Tensor]:
    """Reads every tensor of one .safetensors file as float32 (header parsed by hand)."""
    with open(file, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    mv = memoryview(data)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = _tensor_from_bytes(mv[base + start:base + end], info["dtype"], info["shape"])
    return out


def write_safetensors(file: str, tensors: Dict[str, torch.Tensor], dtype: str = "F32") -> None:
    """Minimal writer, used by the self-test to round-trip the reader."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().to(torch.float32).contiguous().numpy()
        if dtype == "F32":
            b = a.astype("<f4").tobytes()
        elif dtype == "F16":
            b = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            b = (a.view(np.uint32) >> 16).astype("<u2").tobytes()  # truncation; exact for bf16-representable values
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_hf_weights(path: str) -> Dict[str, torch.Tensor]:
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        sd = {}
        for fn in files:
            sd.update(read_safetensors(os.path.join(path, fn)))
        return sd
    return read_safetensors(os.path.join(path, "model.safetensors"))


# --------------------------------------------------------------------------- model

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")  # torch >= 2.0; Debian bookworm ships 1.13
USE_SDPA = HAS_SDPA


def _acc(dtype):
    """Accumulation dtype: float32 as in HF (which upcasts bf16/fp16 to float32), float64 stays float64
    so the self-test can run the whole model in float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        h = x.to(_acc(dt))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dt)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def forward(self, start: int, length: int, dtype):
        acc = _acc(dtype)  # HF: inv_freq and the angles in float32
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).to(acc) / self.head_dim))
        pos = torch.arange(start, start + length, dtype=acc)
        freqs = torch.outer(pos, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)  # [T, head_dim]


def causal_attention(q, k, v, q_offset: int):
    """q [B,H,Tq,D]; k,v [B,KVH,Tk,D] (Tk = q_offset + Tq). Query i sits at absolute position q_offset+i.

    Same math as HF eager attention with repeat_kv; grouped-query heads are folded into the
    query-length axis instead of copying K/V n_rep times.
    """
    B, H, Tq, D = q.shape
    KVH, Tk = k.shape[1], k.shape[2]
    n_rep = H // KVH
    scale = 1.0 / math.sqrt(D)
    if USE_SDPA:
        if n_rep > 1:
            k = k.repeat_interleave(n_rep, dim=1)
            v = v.repeat_interleave(n_rep, dim=1)
        if Tq == 1:
            return F.scaled_dot_product_attention(q, k, v)
        if q_offset == 0 and Tq == Tk:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = torch.arange(Tk)[None, :] <= (q_offset + torch.arange(Tq))[:, None]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    qg = q.reshape(B, KVH, n_rep * Tq, D)  # head h = kv_head * n_rep + r  (HF repeat_kv order)
    scores = torch.matmul(qg, k.transpose(-1, -2)) * scale
    if Tq > 1:
        allowed = torch.arange(Tk)[None, :] <= (q_offset + torch.arange(Tq))[:, None]
        if n_rep > 1:
            allowed = allowed.repeat(n_rep, 1)
        scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores, dim=-1, dtype=_acc(q.dtype)).to(q.dtype)
    return torch.matmul(probs, v).reshape(B, H, Tq, D)


class KVCache:
    """Preallocated per-layer K/V buffers [B, KVH, max_len, D]; `length` positions are filled."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, dtype=torch.float32):
        shape = (batch, cfg.num_kv_heads, max_len, cfg.head_dim)
        self.k = [torch.empty(shape, dtype=dtype) for _ in range(cfg.num_layers)]
        self.v = [torch.empty(shape, dtype=dtype) for _ in range(cfg.num_layers)]
        self.length = 0
        self.max_len = max_len


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.cfg, self.layer_idx = cfg, layer_idx
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * hd, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * hd, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * hd, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(cfg.num_heads * hd, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin, cache: Optional[KVCache], offset: int):
        B, T, _ = x.shape
        hd = self.cfg.head_dim
        q = self.q_proj(x).view(B, T, self.cfg.num_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.cfg.num_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.cfg.num_kv_heads, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            kc, vc = cache.k[self.layer_idx], cache.v[self.layer_idx]
            kc[:, :, offset:offset + T] = k
            vc[:, :, offset:offset + T] = v
            k, v = kc[:, :, :offset + T], vc[:, :, :offset + T]
        o = causal_attention(q, k, v, offset)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.cfg.num_heads * hd))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache, offset):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, offset)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg, i) for i in range(cfg.num_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)


class CausalLM(nn.Module):
    """Parameter names match HF (model.layers.N.self_attn.q_proj.weight, ...) so HF state dicts load as-is."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def init_weights(self, std: float = 0.02, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "model.norm.weight":
                    p.fill_(1.0)
                elif name.endswith(".bias"):
                    p.normal_(0.0, std, generator=g)  # nonzero so the bias path is exercised
                else:
                    p.normal_(0.0, std, generator=g)
        return self

    def forward(self, input_ids, cache: Optional[KVCache] = None, last_only: bool = False):
        B, T = input_ids.shape
        offset = cache.length if cache is not None else 0
        if cache is not None and offset + T > cache.max_len:
            raise ValueError("KV cache overflow")
        x = self.model.embed_tokens(input_ids)
        cos, sin = self.model.rotary_emb(offset, T, x.dtype)
        for layer in self.model.layers:
            x = layer(x, cos, sin, cache, offset)
        if cache is not None:
            cache.length = offset + T
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.model.norm(x))

    def load_hf(self, sd: Dict[str, torch.Tensor]):
        sd = dict(sd)
        if self.cfg.tie_word_embeddings:
            sd.pop("lm_head.weight", None)
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in sd and not (self.cfg.tie_word_embeddings and k == "lm_head.weight")]
        if missing:
            raise ValueError(f"weights missing from checkpoint: {missing[:5]}{'...' if len(missing) > 5 else ''}")
        with torch.no_grad():
            for k, p in own.items():
                if k in sd:
                    if tuple(sd[k].shape) != tuple(p.shape):
                        raise ValueError(f"{k}: checkpoint shape {tuple(sd[k].shape)} != model {tuple(p.shape)}")
                    p.copy_(sd[k])
        return self


def build_model(spec: str, seed: int = 0) -> Tuple[CausalLM, ModelConfig, str]:
    if spec in PRESETS:
        cfg = ModelConfig(**asdict(PRESETS[spec]))
        return CausalLM(cfg).init_weights(seed=seed), cfg, f"{spec} (random init, std 0.02)"
    if os.path.isdir(spec):
        cfg = config_from_hf(spec)
        m = CausalLM(cfg)
        m.load_hf(read_hf_weights(spec))
        return m, cfg, f"{spec} (weights from safetensors)"
    raise SystemExit(f"pytorch_reference: --config {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a directory")


# --------------------------------------------------------------------------- benchmarks


def train_loss(model: CausalLM, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (= -mean log p(x_{t+1} | x_<=t)) over all B*(T-1) predictions."""
    logits = model(tokens)
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))


def bench_train(model, cfg, batch, seq, steps, warmup, lr, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    model.train()
    times, losses = [], []
    phases: Dict[str, List[float]] = {"forward": [], "backward": [], "clip": [], "optimizer": []}
    for i in range(warmup + steps):
        tokens = torch.randint(0, cfg.vocab_size, (batch, seq), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = train_loss(model, tokens)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        t3 = time.perf_counter()
        opt.step()
        lv = loss.item()
        t4 = time.perf_counter()
        dt = t4 - t0
        if i >= warmup:
            times.append(dt)
            losses.append(lv)
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k].append(v)
        print(f"  train step {i + 1}/{warmup + steps}{' (warmup)' if i < warmup else ''}: {dt * 1000:.1f} ms "
              f"(fwd {(t1 - t0) * 1000:.0f}, bwd {(t2 - t1) * 1000:.0f}, clip {(t3 - t2) * 1000:.0f}, "
              f"adamw {(t4 - t3) * 1000:.0f})  loss {lv:.4f}  grad_norm {float(gn):.4f}", file=sys.stderr)
    med = statistics.median(times)
    return {"train_step_s_median": med, "train_step_s_all": times,
            "train_phase_s_median": {k: statistics.median(v) for k, v in phases.items()},
            "train_tokens_per_s": batch * seq / med, "train_loss_last": losses[-1]}


@torch.inference_mode()
def generate(model, cfg, prompts: torch.Tensor, new_tokens: int, temperature: float, g: torch.Generator,
             record_logprobs: bool = False):
    """Prefill all prompts, then decode one token at a time for the whole batch.

    Returns (tokens [G, new_tokens], logprobs of sampled tokens or None, prefill_s, decode_s)."""
    model.eval()
    G, P = prompts.shape
    dtype = model.lm_head.weight.dtype
    cache = KVCache(cfg, G, P + new_tokens, dtype)
    out = torch.empty(G, new_tokens, dtype=torch.long)
    lps = torch.empty(G, new_tokens, dtype=dtype) if record_logprobs else None
    t0 = time.perf_counter()
    logits = model(prompts, cache, last_only=True)[:, -1]
    t1 = time.perf_counter()
    for i in range(new_tokens):
        logp = torch.log_softmax(logits / temperature, dim=-1)
        tok = torch.multinomial(logp.exp(), 1, generator=g)  # [G,1]
        out[:, i] = tok[:, 0]
        if lps is not None:
            lps[:, i] = logp.gather(1, tok)[:, 0]
        if i + 1 < new_tokens:
            logits = model(tok, cache)[:, -1]
    t2 = time.perf_counter()
    return out, lps, t1 - t0, t2 - t1


def bench_generate(model, cfg, gen_batch, prompt_len, new_tokens, temperature, seed, warmup=True):
    g = torch.Generator().manual_seed(seed)
    if warmup:  # one short untimed run so allocator / thread pools are warm
        generate(model, cfg, torch.randint(0, cfg.vocab_size, (gen_batch, prompt_len), generator=g),
                 min(4, new_tokens), temperature, g)
    prompts = torch.randint(0, cfg.vocab_size, (gen_batch, prompt_len), generator=g)
    t0 = time.perf_counter()
    _, _, prefill_s, decode_s = generate(model, cfg, prompts, new_tokens, temperature, g)
    total = time.perf_counter() - t0
    return {"generate_s": total, "generate_prefill_s": prefill_s, "generate_decode_s": decode_s,
            "generate_tokens_per_s": gen_batch * new_tokens / total,
            "generate_decode_tokens_per_s": gen_batch * max(new_tokens - 1, 0) / decode_s if decode_s > 0 else None,
            "prefill_tokens_per_s": gen_batch * prompt_len / prefill_s}


# --------------------------------------------------------------------------- BLAS / environment report


def openblas_info(threads: Optional[int] = None) -> Dict[str, object]:
    """Finds the libopenblas mapped into this process (torch links it on Debian) and asks it which
    kernel (OPENBLAS_CORETYPE) it selected; optionally sets its thread count."""
    path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                name = line.split()[-1]
                if os.path.basename(name).startswith("libopenblas") and ".so" in name:
                    path = name
                    break
    except OSError:
        pass
    info: Dict[str, object] = {"library": path}
    if path is None:
        return info
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        if threads is not None:
            lib.openblas_set_num_threads(int(threads))
        info["corename"] = lib.openblas_get_corename().decode()
        info["config"] = lib.openblas_get_config().decode()
        info["num_threads"] = int(lib.openblas_get_num_threads())
    except (OSError, AttributeError) as e:
        info["error"] = str(e)
    return info


def torch_blas_info() -> str:
    for part in torch.__config__.show().replace("\n", ",").split(","):
        part = part.strip().lstrip("-").strip()
        if "BLAS_INFO=" in part:
            return part.split("BLAS_INFO=", 1)[1].strip()
    return "unknown"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


# --------------------------------------------------------------------------- self-test


class NaiveRef:
    """Independent float64 forward written with explicit per-head loops (no KV cache, no SDPA, explicit
    repeat_kv), used only to check CausalLM."""

    def __init__(self, model: CausalLM):
        self.cfg = model.cfg
        self.p = {k: v.detach().double() for k, v in model.state_dict().items()}
        if self.cfg.tie_word_embeddings:
            self.p["lm_head.weight"] = self.p["model.embed_tokens.weight"]

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        c, p = self.cfg, self.p
        T, hd = ids.shape[0], c.head_dim

        def rms(x, w):
            return x / torch.sqrt((x * x).mean(-1, keepdim=True) + c.rms_norm_eps) * w

        def lin(x, name, bias=False):
            y = x @ p[name + ".weight"].T
            return y + p[name + ".bias"] if bias else y

        half = hd // 2
        inv = torch.tensor([1.0 / c.rope_theta ** (2 * i / hd) for i in range(half)], dtype=torch.float64)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        cos, sin = ang.cos(), ang.sin()

        def rope(x):  # x [T, hd]: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin)
            x1, x2 = x[:, :half], x[:, half:]
            return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

        x = p["model.embed_tokens.weight"][ids]
        for L in range(c.num_layers):
            pre = f"model.layers.{L}."
            h = rms(x, p[pre + "input_layernorm.weight"])
            q = lin(h, pre + "self_attn.q_proj", c.attention_bias)
            k = lin(h, pre + "self_attn.k_proj", c.attention_bias)
            v = lin(h, pre + "self_attn.v_proj", c.attention_bias)
            heads = []
            for hh in range(c.num_heads):
                kvh = hh // (c.num_heads // c.num_kv_heads)
                qh = rope(q[:, hh * hd:(hh + 1) * hd])
                kh = rope(k[:, kvh * hd:(kvh + 1) * hd])
                vh = v[:, kvh * hd:(kvh + 1) * hd]
                s = qh @ kh.T / math.sqrt(hd)
                s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
                heads.append(torch.softmax(s, -1) @ vh)
            x = x + lin(torch.cat(heads, -1), pre + "self_attn.o_proj")
            h = rms(x, p[pre + "post_attention_layernorm.weight"])
            g = lin(h, pre + "mlp.gate_proj")
            x = x + lin(g * torch.sigmoid(g) * lin(h, pre + "mlp.up_proj"), pre + "mlp.down_proj")
        return lin(rms(x, p["model.norm.weight"]), "lm_head")


def self_test() -> bool:
    global USE_SDPA
    import tempfile
    ok = True

    def check(name, err, tol):
        nonlocal ok
        good = err <= tol
        ok &= good
        print(f"  [{'ok' if good else 'FAIL'}] {name}: max abs diff {err:.3e} (tol {tol:g})")

    torch.manual_seed(0)
    for tied, bias in ((True, True), (False, False)):
        cfg = ModelConfig(vocab_size=97, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                          intermediate_size=96, rope_theta=10000.0, tie_word_embeddings=tied, attention_bias=bias)
        model = CausalLM(cfg).init_weights(std=0.2, seed=1)  # larger std so logits are far from uniform
        print(f"tiny model: tied={tied} qkv_bias={bias} params={sum(p.numel() for p in model.parameters())}")
        G, P, N = 3, 5, 7
        g = torch.Generator().manual_seed(2)
        prompts = torch.randint(0, cfg.vocab_size, (G, P), generator=g)
        naive = NaiveRef(model)
        for dtype, tol, ref_tol in ((torch.float32, 1e-5, 1e-4), (torch.float64, 1e-10, 1e-10)):
            model.to(dtype)
            tag = str(dtype).replace("torch.", "")
            gen, lps, _, _ = generate(model, cfg, prompts, N, 1.0, g, record_logprobs=True)
            full = torch.cat([prompts, gen], 1)
            with torch.no_grad():
                logp = torch.log_softmax(model(full), -1)
            # logits at position t predict token t+1; generated token i sits at position P+i
            ref = logp[:, P - 1:P + N - 1].gather(2, gen[:, :, None])[:, :, 0]
            check(f"{tag}: KV-cached sampling log-probs vs full forward", (lps - ref).abs().max().item(), tol)
            err = max((torch.log_softmax(naive(full[b]), -1) - logp[b].double()).abs().max().item()
                      for b in range(G))
            check(f"{tag}: full forward log-probs vs float64 naive reference", err, ref_tol)
            # chunked prefill through the cache (q_len > 1 with an offset exercises the offset causal mask)
            with torch.no_grad():
                cache = KVCache(cfg, G, P + N, dtype)
                chunked = torch.cat([model(full[:, :4], cache), model(full[:, 4:9], cache),
                                     model(full[:, 9:], cache)], 1)
                err = (torch.log_softmax(chunked, -1) - logp).abs().max().item()
            check(f"{tag}: chunked cached prefill log-probs vs full forward", err, tol)
            # training loss == mean next-token NLL from the reference
            with torch.no_grad():
                loss = train_loss(model, full).item()
            nll = torch.stack([-torch.log_softmax(naive(full[b]), -1)[:-1].gather(1, full[b, 1:, None])
                               for b in range(G)]).mean().item()
            check(f"{tag}: train loss vs reference mean NLL", abs(loss - nll), tol)
            if HAS_SDPA:  # the manual attention path must agree with the SDPA path
                with torch.no_grad():
                    cache = KVCache(cfg, G, P + N, dtype)
                    a = torch.cat([model(full[:, :4], cache), model(full[:, 4:5], cache), model(full[:, 5:], cache)], 1)
                    USE_SDPA = False
                    cache = KVCache(cfg, G, P + N, dtype)
                    b = torch.cat([model(full[:, :4], cache), model(full[:, 4:5], cache), model(full[:, 5:], cache)], 1)
                    USE_SDPA = True
                check(f"{tag}: SDPA vs manual attention logits", (a - b).abs().max().item(), tol)

    # safetensors reader round-trip, including tied / untied HF names
    with tempfile.TemporaryDirectory() as d:
        cfg = ModelConfig(vocab_size=50, hidden_size=32, num_layers=1, num_heads=4, num_kv_heads=1,
                          intermediate_size=48, rope_theta=1e6)
        m = CausalLM(cfg).init_weights(seed=3)
        sd = {k: v for k, v in m.state_dict().items()}
        for dt, tol in (("F32", 0.0), ("F16", 1e-3), ("BF16", 1e-2)):
            fn = os.path.join(d, "model.safetensors")
            write_safetensors(fn, sd, dt)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump({"model_type": "qwen2", "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 1,
                           "num_attention_heads": 4, "num_key_value_heads": 1, "intermediate_size": 48,
                           "rope_theta": 1e6, "rms_norm_eps": 1e-6, "tie_word_embeddings": True}, f)
            m2, _, _ = build_model(d)
            err = max((a - m2.state_dict()[k]).abs().max().item() for k, a in sd.items())
            check(f"safetensors {dt} round-trip", err, tol)
    print("self-test:", "PASS" if ok else "FAIL")
    return ok


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="qwen2-27m", help=f"preset ({', '.join(PRESETS)}) or HF model directory")
    ap.add_argument("--batch", type=int, default=8, help="training batch size (0 = skip training)")
    ap.add_argument("--seq", type=int, default=256, help="training sequence length")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warmup training steps")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--gen-batch", type=int, default=0, help="sequences sampled in parallel (0 = skip generation)")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="torch + OpenBLAS threads (default: all usable cores)")
    ap.add_argument("--omp-wait-policy", choices=["passive", "active", "unset"], default=None,
                    help="libgomp idle policy for torch's thread pool (default: OMP_WAIT_POLICY from the "
                         "environment, else passive; 'unset' = torch's out-of-the-box behaviour)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line with the results last")
    ap.add_argument("--self-test", action="store_true", help="run the correctness checks and exit")
    args = ap.parse_args()

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    blas = openblas_info(threads)

    if args.self_test:
        sys.exit(0 if self_test() else 1)

    env_ct = os.environ.get("OPENBLAS_CORETYPE")
    print(f"torch {torch.__version__}  BLAS_INFO={torch_blas_info()}  torch threads {torch.get_num_threads()}  "
          f"SDPA {'yes' if USE_SDPA else 'no (manual attention)'}", file=sys.stderr)
    print(f"OPENBLAS_CORETYPE={env_ct!r}  OpenBLAS core={blas.get('corename')}  threads={blas.get('num_threads')}  "
          f"lib={blas.get('library')}  config={blas.get('config')}", file=sys.stderr)

    t0 = time.perf_counter()
    model, cfg, desc = build_model(args.config, seed=args.seed)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model {desc}: {nparams / 1e6:.2f}M params, built in {time.perf_counter() - t0:.1f}s  {asdict(cfg)}",
          file=sys.stderr)

    res: Dict[str, object] = {"config": args.config, "params": nparams, "load_avg_at_start": os.getloadavg()}
    # generation first, so its peak RSS is not hidden by the (larger) training peak
    if args.gen_batch > 0:
        r = bench_generate(model, cfg, args.gen_batch, args.prompt_len, args.new_tokens, args.temperature, args.seed)
        res.update(r)
        res["peak_rss_mb_after_generate"] = peak_rss_mb()
        print(f"generate: G={args.gen_batch} P={args.prompt_len} N={args.new_tokens}: {r['generate_s']:.2f}s "
              f"(prefill {r['generate_prefill_s']:.2f}s) -> {r['generate_tokens_per_s']:.1f} tok/s "
              f"(decode-only {r['generate_decode_tokens_per_s'] or 0:.1f} tok/s)", file=sys.stderr)
    if args.batch > 0:
        r = bench_train(model, cfg, args.batch, args.seq, args.steps, args.warmup, args.lr, args.seed)
        res.update(r)
        print(f"train: B={args.batch} T={args.seq}: median step {r['train_step_s_median'] * 1000:.1f} ms -> "
              f"{r['train_tokens_per_s']:.1f} tok/s", file=sys.stderr)
    res.setdefault("train_tokens_per_s", None)
    res.setdefault("generate_tokens_per_s", None)
    res["peak_rss_mb"] = peak_rss_mb()
    res["torch"] = torch.__version__
    res["threads"] = torch.get_num_threads()
    res["openblas_threads"] = blas.get("num_threads")
    res["openblas_coretype_env"] = env_ct
    res["openblas_corename"] = blas.get("corename")
    res["blas"] = (f"torch BLAS_INFO={torch_blas_info()}; {blas.get('config') or 'no OpenBLAS mapped'}; "
                   f"core={blas.get('corename')}; lib={blas.get('library')}")
    res["sdpa"] = USE_SDPA
    res["env"] = {k: v for k, v in sorted(os.environ.items())
                  if k.startswith(("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "KMP_", "LD_LIBRARY_PATH"))}
    res["load_avg_at_end"] = os.getloadavg()
    res["args"] = {k: v for k, v in vars(args).items() if k not in ("json", "self_test")}
    res["cpu"] = platform.processor() or platform.machine()
    print(f"peak RSS {res['peak_rss_mb']:.0f} MB", file=sys.stderr)
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
