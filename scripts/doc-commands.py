#!/usr/bin/env python3
"""Runs every command shown in the project's markdown docs, so the docs cannot go stale.

    scripts/doc-commands.py XRING_BINARY FILE.md... [--list]

The convention (docs/doc-tests.md says it for writers):
  ```sh            every non-comment line is a command (a trailing backslash continues it);
                   it must exit 0, or the code a trailing "# exit N" names.
  ```console       lines starting with "$ " are commands; the lines after one, up to the next
                   "$ " or the end, are its expected output. Each shown line must equal the
                   actual line, except that "…" (U+2026) in a shown line matches any text and a
                   shown line that is exactly "…" matches any number of lines (for numbers
                   that move with the cost model, dates, timings, paths).
  ```sh skip-test: REASON      (or console) not run; the reason is required and is printed.
Commands run through bash with `xring` on PATH (the binary under test), in one fresh
directory per markdown file whose entries link to the repository's top-level folders: a
command may read profiles/ or tests/ and write files of its own; later blocks of the same file
see the files earlier ones wrote. Each command has 300 s.
Exit status: 0 when every command ran as shown, 1 otherwise (each failure is printed with file,
line, command, expected and actual output).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ELLIPSIS = "\u2026"
FENCE = re.compile(r"^```(\w+)?(.*)$")


def blocks(path):
    """Yields (language, options, first_line_number, lines) for each fenced block."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, options, start = m.group(1) or "", m.group(2).strip(), i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        yield lang, options, start, body


def sh_commands(body, first_line):
    """(line number, command, expected exit) for each command of a sh block."""
    out, pending, pending_line = [], "", 0
    for k, raw in enumerate(body):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            pending_line = first_line + 1 + k
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        out.append((pending_line,) + split_exit(pending))
        pending = ""
    return out


def split_exit(command):
    m = re.search(r"\s+#\s*exit\s+(\d+)\s*$", command)
    if m:
        return command[: m.start()], int(m.group(1))
    return command, 0


def console_commands(body, first_line):
    """(line number, command, expected exit, expected output lines) for a console block."""
    out = []
    for k, raw in enumerate(body):
        if raw.startswith("$ "):
            command, code = split_exit(raw[2:].rstrip())
            out.append([first_line + 1 + k, command, code, []])
        elif out:
            out[-1][3].append(raw.rstrip())
    for c in out:  # trailing blank lines are not part of the shown output
        while c[3] and not c[3][-1]:
            c[3].pop()
    return [tuple(c) for c in out]


def line_matches(shown, actual):
    if ELLIPSIS not in shown:
        return shown == actual
    pattern = ".*".join(re.escape(part) for part in shown.split(ELLIPSIS))
    return re.fullmatch(pattern, actual) is not None


def output_matches(shown, actual):
    """Whether the shown lines match the actual ones ("…" alone matches any run of lines)."""
    memo = {}

    def match(i, j):
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(shown):
            result = j == len(actual)
        elif shown[i] == ELLIPSIS:
            result = match(i + 1, j) or (j < len(actual) and match(i, j + 1))
        else:
            result = j < len(actual) and line_matches(shown[i], actual[j]) and match(i + 1, j + 1)
        memo[(i, j)] = result
        return result

    return match(0, 0)


def run(command, workdir, env):
    p = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=workdir, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    text = p.stdout.decode("utf-8", "replace").rstrip("\n")
    return p.returncode, [l.rstrip() for l in text.split("\n")] if text else []


def check_file(path, xring, repo, listing):
    failures, ran, skipped = 0, 0, 0
    workdir = tempfile.mkdtemp(prefix="xring-doc-")
    try:
        for entry in os.listdir(repo):
            if entry.startswith(".") or entry == "build":
                continue
            os.symlink(os.path.join(repo, entry), os.path.join(workdir, entry))
        env = dict(os.environ)
        bindir = os.path.join(workdir, ".bin")
        os.makedirs(bindir)
        os.symlink(os.path.abspath(xring), os.path.join(bindir, "xring"))
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env["COLUMNS"] = "200"
        for lang, options, start, body in blocks(path):
            if lang not in ("sh", "console"):
                continue
            if options.startswith("skip-test"):
                reason = options[len("skip-test"):].lstrip(":").strip()
                if not reason:
                    print(f"{path}:{start}: skip-test without a reason (write `skip-test: WHY`)")
                    failures += 1
                skipped += 1
                continue
            if options:
                print(f"{path}:{start}: unknown block option {options!r} (only skip-test: WHY)")
                failures += 1
                continue
            commands = (sh_commands(body, start) if lang == "sh" else
                        console_commands(body, start))
            for item in commands:
                line, command, code = item[0], item[1], item[2]
                shown = item[3] if lang == "console" else None
                if listing:
                    print(f"{path}:{line}: {command}")
                    continue
                ran += 1
                try:
                    actual_code, actual = run(command, workdir, env)
                except subprocess.TimeoutExpired:
                    print(f"{path}:{line}: `{command}` ran past 300 s")
                    failures += 1
                    continue
                problems = []
                if actual_code != code:
                    problems.append(f"exit {actual_code}, expected {code}")
                if shown is not None and shown and not output_matches(shown, actual):
                    problems.append("output differs from what the doc shows")
                if problems:
                    failures += 1
                    print(f"{path}:{line}: `{command}`: " + "; ".join(problems))
                    if shown:
                        print("  shown:\n" + "\n".join("    | " + l for l in shown))
                    print("  actual:\n" + "\n".join("    | " + l for l in actual[:60]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not listing:
        print(f"{path}: {ran} commands run, {skipped} blocks skipped, {failures} failed")
    return failures


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    listing = "--list" in argv
    if len(args) < 2:
        print(__doc__)
        return 2
    xring, files = args[0], args[1:]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    failures = sum(check_file(f, xring, repo, listing) for f in files)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
