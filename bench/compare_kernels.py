#!/usr/bin/env python3
"""Joins bench_kernels (xring) and sdpa_peer.py (PyTorch) JSON lines into the markdown table of
bench/RESULTS.md: TFLOP/s per shape and backend, and xring's ratio to the best PyTorch backend."""
import json
import statistics
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def main(xring_path, sdpa_path):
    xr, pt = rows(xring_path), rows(sdpa_path)
    shapes = [r["shape"] for r in xr if r.get("kernel") == "xring"]
    print("| shape (S_Q x S_KV) | xring | sdpa flash | sdpa cudnn | sdpa efficient | ratio to best |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for shape in shapes:
        ours = next(r for r in xr if r.get("kernel") == "xring" and r["shape"] == shape)
        peers = {r["kernel"].split()[1]: r for r in pt if r.get("shape") == shape and "kernel" in r}
        cell = lambda name: (f"{peers[name]['tflops']}" + (" (exp)" if peers[name].get("gqa") == "expanded" else "")
                             if name in peers and "tflops" in peers[name] else "n/a")
        best = max((p["tflops"] for p in peers.values() if "tflops" in p), default=None)
        ratio = ours["tflops"] / best if best else None
        if ratio and "causal" not in shape:
            ratios.append(ratio)
        print(f"| {shape} | {ours['tflops']} | {cell('flash')} | {cell('cudnn')} | {cell('efficient')} | "
              f"{ratio:.2f} |" if ratio else f"| {shape} | {ours['tflops']} | n/a | n/a | n/a | n/a |")
    if ratios:
        print(f"\nMedian ratio over the cross-attention shapes: {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f}). TFLOP/s; (exp): K/V repeated per query head.")
    copy = next((r for r in xr if r.get("kernel") == "cudaMemcpy d2d"), None)
    dec = next((r for r in xr if r.get("kernel") == "xring decode"), None)
    if copy and dec:
        print(f"\nDecode: {dec['gbps']} GB/s of K/V read ({dec['kv_tokens']} tokens over "
              f"{dec['requests']} requests x 8 kv heads, skewed budgets, longest {dec['max_len']}); "
              f"device-to-device copy {copy['gbps']} GB/s; ratio {dec['gbps'] / copy['gbps']:.2f}.")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
