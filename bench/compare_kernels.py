#!/usr/bin/env python3
"""Joins bench_kernels (xring) and sdpa_peer.py (PyTorch) JSON lines into the markdown table of
bench/RESULTS.md: TFLOP/s per shape and backend, and xring's ratio to the best PyTorch backend."""
import json
import statistics
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def ratio_to_best(ours, peers):
    best = max((p["tflops"] for p in peers.values() if "tflops" in p), default=None)
    return ours["tflops"] / best if ours and best else None


def main(xring_path, sdpa_path):
    xr, pt = rows(xring_path), rows(sdpa_path)
    shapes = [r["shape"] for r in xr if r.get("kernel") == "xring"]
    variants = {"baseline": "xring", "pipelined": "xring pipelined"}
    print("| shape (S_Q x S_KV) | xring | xring pipelined | sdpa flash | sdpa cudnn | sdpa efficient "
          "| ratio to best | pipelined ratio |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = {name: [] for name in variants}
    for shape in shapes:
        ours = {name: next((r for r in xr if r.get("kernel") == kernel and r["shape"] == shape), None)
                for name, kernel in variants.items()}
        peers = {r["kernel"].split()[1]: r for r in pt if r.get("shape") == shape and "kernel" in r}
        cell = lambda name: (f"{peers[name]['tflops']}" + (" (exp)" if peers[name].get("gqa") == "expanded" else "")
                             if name in peers and "tflops" in peers[name] else "n/a")
        mine = lambda name: f"{ours[name]['tflops']}" if ours[name] else "n/a"
        ratio = {name: ratio_to_best(ours[name], peers) for name in variants}
        for name, value in ratio.items():
            if value and "causal" not in shape:
                ratios[name].append(value)
        shown = lambda name: f"{ratio[name]:.2f}" if ratio[name] else "n/a"
        print(f"| {shape} | {mine('baseline')} | {mine('pipelined')} | {cell('flash')} | {cell('cudnn')} | "
              f"{cell('efficient')} | {shown('baseline')} | {shown('pipelined')} |")
    for name, values in ratios.items():
        if values:
            print(f"\nMedian ratio ({name}) over the cross-attention shapes: {statistics.median(values):.2f} "
                  f"(min {min(values):.2f}, max {max(values):.2f}). TFLOP/s; (exp): K/V repeated per query head.")
    copy = next((r for r in xr if r.get("kernel") == "cudaMemcpy d2d"), None)
    dec = next((r for r in xr if r.get("kernel") == "xring decode"), None)
    if copy and dec:
        print(f"\nDecode: {dec['gbps']} GB/s of K/V read ({dec['kv_tokens']} tokens over "
              f"{dec['requests']} requests x 8 kv heads, skewed budgets, longest {dec['max_len']}); "
              f"device-to-device copy {copy['gbps']} GB/s; ratio {dec['gbps'] / copy['gbps']:.2f}.")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
