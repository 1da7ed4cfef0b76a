#!/usr/bin/env python3
"""On-demand mutation check: do the tests catch the bugs we most fear?

Each mutant in tests/mutants/mutants.toml is a small, plausible bug: one or more textual
search/replace edits on one file, and the tests that should catch it. For every mutant this
script copies the working tree (`git ls-files --cached --others --exclude-standard`: no .venv,
no runs/) to a temporary directory, applies the edits, runs the mutant's tests there with
this interpreter (`python -m pytest -x`, PYTHONPATH set to the copy so the copy's `deepvib`
is imported, also by `bin/` subprocesses), and reports the mutant killed (a test failed) or
survived (every test passed). Before the mutants, the union of their tests runs once on an
unmutated copy: a test that fails there would "kill" every mutant and prove nothing.

    .venv/bin/python tests/mutation_check.py              # every mutant (a few minutes)
    .venv/bin/python tests/mutation_check.py --only kl_stop_gradient,export_nan
    .venv/bin/python tests/mutation_check.py --list       # ids, files, tests
    .venv/bin/python tests/mutation_check.py --check      # only check the edits still apply
    .venv/bin/python tests/mutation_check.py --ref HEAD   # the last commit, not the work tree

Exit status: 0 every mutant killed; 1 some survived (or crashed the test run: "error");
2 bad input: an edit's old text is not found exactly once (the code moved on: update the
mutant), an unknown --only id, or tests failing on the unmutated copy.
Not part of the test suite (pytest collects only test_*.py); docs/testing.md holds its output.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOGUE = os.path.join(ROOT, "tests", "mutants", "mutants.toml")


@dataclasses.dataclass(frozen=True)
class Edit:
    old: str
    new: str


@dataclasses.dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    description: str
    tests: tuple[str, ...]
    edits: tuple[Edit, ...]


class MutantError(ValueError):
    """A mutant that cannot be applied (its old text is missing or ambiguous)."""


def load_catalogue(path: str = CATALOGUE) -> list[Mutant]:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    mutants = []
    for entry in data["mutant"]:
        edits = tuple(Edit(e["old"], e["new"]) for e in entry["edit"])
        mutants.append(Mutant(entry["id"], entry["file"], entry["description"].strip(),
                              tuple(entry["tests"]), edits))
    ids = [m.id for m in mutants]
    if len(set(ids)) != len(ids):
        raise MutantError(f"{path}: duplicate mutant ids")
    return mutants


def mutate(text: str, mutant: Mutant) -> str:
    """`text` with every edit applied; each old text must occur exactly once."""
    for i, edit in enumerate(mutant.edits):
        count = text.count(edit.old)
        if count != 1:
            raise MutantError(
                f"mutant {mutant.id}: edit {i + 1}'s old text occurs {count} times in "
                f"{mutant.file} (expected once); update tests/mutants/mutants.toml")
        text = text.replace(edit.old, edit.new)
    return text


def check_applies(mutant: Mutant, ref: str | None = None) -> None:
    if ref is None:
        with open(os.path.join(ROOT, mutant.file), encoding="utf-8") as f:
            text = f.read()
    else:
        text = subprocess.run(["git", "show", f"{ref}:{mutant.file}"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    mutate(text, mutant)


def copy_tree(destination: str, ref: str | None = None) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored), or the commit
    `ref` when given, to `destination`."""
    if ref is not None:
        archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", destination], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = os.path.join(ROOT, rel)
        if not os.path.isfile(source):  # deleted but still in the index
            continue
        target = os.path.join(destination, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def run_tests(copy: str, tests: tuple[str, ...], timeout: float,
              extra: tuple[str, ...] = ()) -> tuple[int, str]:
    """(pytest exit code, its output) for `tests` run inside `copy`."""
    env = {**os.environ, "PYTHONPATH": copy, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--no-header", *extra, *tests]
    try:
        proc = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return -1, f"timed out after {timeout:.0f}s\n{e.stdout or ''}"
    return proc.returncode, proc.stdout + proc.stderr


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ")[0]
    return ""


def check_imports_copy(copy: str) -> None:
    env = {**os.environ, "PYTHONPATH": copy, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", "import deepvib; print(deepvib.__file__)"],
                         cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    if not os.path.realpath(out.strip()).startswith(os.path.realpath(copy)):
        raise RuntimeError(f"the copy imports deepvib from {out.strip()}, not from {copy}")


def run_mutant(mutant: Mutant, timeout: float, ref: str | None = None) -> dict:
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=f"mutant_{mutant.id}_") as copy:
        copy_tree(copy, ref)
        path = os.path.join(copy, mutant.file)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(mutate(text, mutant))
        code, output = run_tests(copy, mutant.tests, timeout)
    status = {0: "survived", 1: "killed"}.get(code, "error")
    return {"id": mutant.id, "file": mutant.file, "status": status,
            "seconds": time.time() - started, "caught_by": first_failure(output),
            "output": output}


def baseline(mutants: list[Mutant], timeout: float, ref: str | None = None,
             durations: int = 0) -> tuple[int, str, float]:
    tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="mutant_baseline_") as copy:
        copy_tree(copy, ref)
        check_imports_copy(copy)
        extra = (f"--durations={durations}",) if durations else ()
        code, output = run_tests(copy, tests, timeout, extra)
    return code, output, time.time() - started


def slowest(output: str) -> str:
    """pytest's "slowest durations" section."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "slowest" in line), None)
    if start is None:
        return ""
    section = []
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith("("):
            break
        section.append(line)
    return "\n".join(section)


def table(results: list[dict]) -> str:
    rows = [("mutant", "file", "result", "seconds", "first failing test")]
    rows += [(r["id"], r["file"], r["status"], f"{r['seconds']:.0f}", r["caught_by"])
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated mutant ids")
    parser.add_argument("--catalogue", default=CATALOGUE, help="the mutants' TOML file")
    parser.add_argument("--ref", default=None,
                        help="mutate this commit (e.g. HEAD) instead of the working tree")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every mutant's edits apply to the tree")
    parser.add_argument("--no_baseline", action="store_true",
                        help="skip running the tests on the unmutated copy first")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per test run")
    parser.add_argument("--durations", type=int, default=0,
                        help="print the N slowest test phases of the baseline run")
    parser.add_argument("--verbose", action="store_true", help="print pytest's output")
    args = parser.parse_args(argv)

    mutants = load_catalogue(args.catalogue)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {m.id for m in mutants})
        if unknown:
            print(f"mutation_check: error: unknown mutant ids {unknown}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in wanted]
    if args.list:
        for m in mutants:
            print(f"{m.id}  ({m.file})\n    {m.description}\n    tests: {' '.join(m.tests)}")
        return 0
    try:
        for m in mutants:
            check_applies(m, args.ref)
    except MutantError as e:
        print(f"mutation_check: error: {e}", file=sys.stderr)
        return 2
    if args.check:
        print(f"all {len(mutants)} mutants apply")
        return 0
    if not args.no_baseline:
        code, output, seconds = baseline(mutants, args.timeout, args.ref, args.durations)
        if code != 0:
            print(output, file=sys.stderr)
            print("mutation_check: error: the mutants' tests fail on the unmutated copy",
                  file=sys.stderr)
            return 2
        print(f"baseline: the mutants' tests pass on the unmutated copy ({seconds:.0f}s)")
        if args.durations:
            print(slowest(output))
    results = []
    for m in mutants:
        result = run_mutant(m, args.timeout, args.ref)
        results.append(result)
        print(f"{m.id}: {result['status']} ({result['seconds']:.0f}s)", flush=True)
        if args.verbose or result["status"] == "error":
            print(result["output"])
    print()
    print(table(results))
    killed = sum(r["status"] == "killed" for r in results)
    print(f"\n{killed}/{len(results)} mutants killed")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
