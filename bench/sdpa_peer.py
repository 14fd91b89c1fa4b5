#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention with each backend forced, on the shapes of
bench/bench_kernels.cu, timed the same way (uniform [-1, 1) bf16 inputs, 3 warm-up calls,
median of 20 calls each between two CUDA events). Prints one JSON object per line."""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def median_ms(fn, warmup=3, runs=20):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def uniform(*shape):
    return (torch.rand(*shape, device="cuda", dtype=torch.float32) * 2 - 1).to(torch.bfloat16)


def point(s_q, s_kv, causal, B=1, H=32, Hkv=8, d=128):
    q, k, v = uniform(B, H, s_q, d), uniform(B, Hkv, s_kv, d), uniform(B, Hkv, s_kv, d)
    flops = 4.0 * B * H * s_q * s_kv * d * (0.5 if causal else 1.0)
    shape = f"{s_q}x{s_kv}" + (" causal" if causal else "")
    for name, backend in BACKENDS.items():
        row = {"kernel": f"sdpa {name}", "shape": shape, "s_q": s_q, "s_kv": s_kv}
        try:
            with sdpa_kernel(backend):
                call = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
                call()
                row["gqa"] = "native"
        except RuntimeError:
            # Some backends take no GQA: give them K/V repeated per query head (not timed).
            ke, ve = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
            try:
                with sdpa_kernel(backend):
                    call = lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=causal)
                    call()
                row["gqa"] = "expanded"
            except RuntimeError as e:
                row["error"] = str(e).splitlines()[0][:160]
                print(json.dumps(row), flush=True)
                continue
        with sdpa_kernel(backend):
            ms = median_ms(call)
        row.update(ms=round(ms, 4), tflops=round(flops / (ms * 1e-3) / 1e12, 1))
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()


def main():
    quick = "--quick" in sys.argv
    print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}), flush=True)
    for s_q in [512] if quick else [512, 2048, 8192]:
        for s_kv in [16384] if quick else [16384, 65536, 262144]:
            point(s_q, s_kv, False)
    point(8192, 8192, True)


if __name__ == "__main__":
    main()
