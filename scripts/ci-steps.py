#!/usr/bin/env python3
"""Runs the gate steps of the CI examples in docs/ci/, so they cannot go stale.

    scripts/ci-steps.py XRING_BINARY FILE.yml...

Each file must be valid YAML (checked when PyYAML is installed) and hold at least one block of
lines between "# ci-test: begin" and "# ci-test: end" that runs `xring gate`. Each block runs
as one bash script (set -euo pipefail; YAML indentation removed) with `xring` on PATH (the
binary under test), in a fresh directory whose entries link to the repository's top-level
folders, so tests/baselines/ and profiles/ resolve. It must exit 0; then every file it named
with --junit must be JUnit XML (<testsuites> holding <testsuite> elements, no failure) and every
--markdown file must be the gate's summary ("## xring gate: ..."). Exit status: 0 when every
block ran and its outputs check, 1 otherwise (each problem printed with file and line).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ElementTree

BEGIN = "# ci-test: begin"
END = "# ci-test: end"


def marked_blocks(path):
    """(first line number, script text) for each block between the markers."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out, start, body = [], None, []
    for number, line in enumerate(lines, 1):
        if line.strip() == BEGIN:
            start, body = number + 1, []
        elif line.strip() == END and start is not None:
            out.append((start, textwrap.dedent("\n".join(body)) + "\n"))
            start = None
        elif start is not None:
            body.append(line)
    if start is not None:
        raise ValueError(f"{path}:{start - 1}: '{BEGIN}' without '{END}'")
    return out


def output_files(script, flag):
    """The paths a script passes to `flag` (e.g. --junit)."""
    words = shlex.split(script.replace("\\\n", " "), comments=True)
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == flag]


def check_junit(path):
    """Problems with a gate's JUnit file (empty when it is well-formed and passed)."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as e:
        return [f"{path}: not readable XML ({e})"]
    problems = []
    if root.tag != "testsuites" or not root.findall("testsuite"):
        problems.append(f"{path}: expected <testsuites> holding <testsuite>, got <{root.tag}>")
    for suite in [root] + root.findall("testsuite"):
        for attribute in ("tests", "failures", "errors", "skipped", "time"):
            if attribute not in suite.attrib:
                problems.append(f"{path}: <{suite.tag}> lacks the {attribute} attribute")
    if root.findall(".//failure"):
        problems.append(f"{path}: the gate reports failures")
    return problems


def yaml_problems(path):
    try:
        import yaml  # optional: PyYAML
    except ImportError:
        return []
    try:
        with open(path, encoding="utf-8") as f:
            yaml.safe_load(f)
    except yaml.YAMLError as e:
        return [f"{path}: not valid YAML ({e})"]
    return []


def run_file(path, xring, repo):
    problems = yaml_problems(path)
    try:
        blocks = marked_blocks(path)
    except ValueError as e:
        return problems + [str(e)]
    if not any(re.search(r"\bxring gate\b", script) for _, script in blocks):
        problems.append(f"{path}: no '{BEGIN}' ... '{END}' block that runs xring gate")
    for line, script in blocks:
        workdir = tempfile.mkdtemp(prefix="xring-ci-steps-")
        try:
            for entry in os.listdir(repo):
                if not entry.startswith("."):
                    os.symlink(os.path.join(repo, entry), os.path.join(workdir, entry))
            bindir = os.path.join(workdir, ".bin")
            os.mkdir(bindir)
            os.symlink(os.path.abspath(xring), os.path.join(bindir, "xring"))
            env = dict(os.environ)
            env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=300)
            where = f"{path}:{line}"
            if done.returncode != 0:
                problems.append(f"{where}: the steps exited {done.returncode}:\n{script}\n"
                                f"output:\n{done.stdout}")
                continue
            for junit in output_files(script, "--junit"):
                problems += [f"{where}: {p}" for p in check_junit(os.path.join(workdir, junit))]
            for markdown in output_files(script, "--markdown"):
                try:
                    with open(os.path.join(workdir, markdown), encoding="utf-8") as f:
                        first = f.readline()
                except OSError as e:
                    problems.append(f"{where}: {markdown} was not written ({e})")
                    continue
                if not first.startswith("## xring gate: "):
                    problems.append(f"{where}: {markdown} is not the gate's summary: {first!r}")
            print(f"{where}: ran {len(script.splitlines())} lines")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return problems


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    xring, files = argv[1], argv[2:]
    if os.sep not in xring:  # a bare name: the one on PATH
        xring = shutil.which(xring) or xring
    if not os.path.isfile(xring):
        print(f"{argv[1]}: no such xring binary", file=sys.stderr)
        return 2
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = []
    for path in files:
        problems += run_file(path, xring, repo)
    for p in problems:
        print("FAIL: " + p)
    print(f"{len(files)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
