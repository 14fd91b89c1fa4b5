#!/usr/bin/env python3
"""summary.md of scripts/gpu-check.sh: the key figures of every stage run so far, read from its
work folder, in under 4,000 characters (the tail of the GPU machine's output must be enough).
    gpu_check_summary.py WORK_DIR MODE"""
import json
import os
import re
import statistics
import sys

LIMIT_CHARS = 3900  # gpu-check.sh checks summary.md < 4000


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def load_json(path):
    text = read(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def gtest_line(work, name):
    """passed/failed/skipped of one GoogleTest run, with the first failure's message."""
    report = load_json(os.path.join(work, name + ".json"))
    if report is None:  # killed before gtest wrote its JSON: count the text output
        text = read(os.path.join(work, name + ".txt"))
        if text is None:
            return None
        count = lambda tag: len(re.findall(r"^\[\s*" + tag + r"\s*\] \w+\.\w+", text, re.M))
        first = re.search(r"^.*(Failure|error).*\n.*", text, re.M)
        return (f"{name}: {count('OK')} passed, {count('FAILED')} failed, {count('SKIPPED')} "
                f"skipped (no JSON: stopped early)" + (f"; first: {first.group(0)[:300]}" if first else ""))
    passed = failed = skipped = 0
    first = None
    for suite in report.get("testsuites", []):
        for test in suite.get("testsuite", []):
            if test.get("result") == "SKIPPED":
                skipped += 1
            elif test.get("failures"):
                failed += 1
                if first is None:
                    message = test["failures"][0].get("failure", "").replace("\n", " ")
                    first = f"{suite['name']}.{test['name']}: {message[:300]}"
            else:
                passed += 1
    line = f"{name}: {passed} passed, {failed} failed, {skipped} skipped"
    return line + (f"; first failure: {first}" if first else "")


def fmt(x, spec=".3g"):
    return "—" if x is None else format(x, spec)


def ring_lines(work):
    lines = []
    for ring in ("query_ring", "kv_ring"):
        r = load_json(os.path.join(work, f"run-{ring}.json"))
        if r is None:
            continue
        overheads = [l.get("ring_overhead") for l in r.get("layers", []) if l.get("ring_overhead") is not None]
        times = [l.get("measured_time_s") for l in r.get("layers", [])]
        lines.append(
            f"{ring} (8 emulated ranks): ring overhead median {fmt(statistics.median(overheads) if overheads else None)}"
            f" (goal < 0.05), layer time {fmt(statistics.median(times) if times else None)} s, verified "
            f"{r.get('verified')}, max abs error {fmt(r.get('max_abs_error'))}, max rel error "
            f"{fmt(r.get('max_rel_error'))}, tolerance {fmt(r.get('tolerance'))}")
    r = load_json(os.path.join(work, "run-nccl.json"))
    if r is not None:
        lines.append(f"nccl one rank: verified {r.get('verified')}, max rel error {fmt(r.get('max_rel_error'))}")
    return lines


def bench_lines(work):
    table = read(os.path.join(work, "bench", "table.md")) or ""
    lines = [l.strip() for l in table.splitlines() if l.startswith(("Median ratio", "Decode:"))]
    return [l[:400] for l in lines]


def profile_lines(work):
    lines = []
    p = load_json(os.path.join(work, "profile.json"))
    if p is not None:
        best = max((a.get("flop_per_s", 0) for a in p.get("attention", [])), default=0)
        bw = p.get("bandwidth", {})
        gb = lambda key: fmt(bw[key] / 1e9, ".0f") if bw.get(key) else "—"
        lines.append(f"profile: {p.get('device', {}).get('name')}: best attention {best / 1e12:.1f} TFLOP/s, decode "
                     f"{gb('decode_bytes_per_s')} GB/s, copy {gb('copy_bytes_per_s')} GB/s, memory "
                     f"{gb('hbm_bytes_per_s')} GB/s")
    v = load_json(os.path.join(work, "validate.json"))
    if v is not None:
        lines.append(f"validate --backend cuda --quick: median error {fmt(v.get('median_abs_error'))} "
                     f"(goal <= 0.10), worst {fmt(v.get('worst_abs_error'))} (goal <= 0.25)")
    return lines


def main(work, mode):
    stages = []
    for row in (read(os.path.join(work, "stages.tsv")) or "").splitlines():
        name, status, seconds, budget, why = (row.split("\t") + [""] * 5)[:5]
        stages.append((name, status, seconds, budget, why))
    verdict = "PASS" if stages and all(s[1] in ("PASS", "MISSING") for s in stages) else "FAIL"
    out = [f"# gpu-check{' dry run' if mode == 'dry' else ''}: {verdict} so far ({len(stages)} of 7 stages)", ""]
    out += [l for l in (read(os.path.join(work, "preflight.txt")) or "").splitlines() if l.strip()]
    out += ["", "| stage | status | s / budget | |", "|---|---|---|---|"]
    out += [f"| {n} | {st} | {sec} / {b} | {w} |" for n, st, sec, b, w in stages]
    out.append("")
    for name in ("kernel_tests", "backend_tests", "cli_cuda_tests", "cli_nccl_tests"):
        line = gtest_line(work, name)
        if line:
            out.append("- " + line)
    out += ["- " + l for l in ring_lines(work) + bench_lines(work) + profile_lines(work)]
    for name, *_ in stages:
        note = read(os.path.join(work, name + ".note"))
        if note:
            out += [f"- {name}: {l[:300]}" for l in note.splitlines()]
    text = "\n".join(out) + "\n"
    if len(text) > LIMIT_CHARS:
        text = text[: LIMIT_CHARS - 40] + "\n… (cut; whole logs in the archive)\n"
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
