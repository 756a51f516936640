#!/usr/bin/env python3
"""Checks of .github/workflows/*.yml that actionlint and zizmor do not make (make workflows-check).

- Every `uses:` of an action names a full 40-hex commit SHA followed by a version comment,
  `owner/repo@<sha> # v1.2.3`: a tag or branch can be moved to other code, a commit cannot, and
  the comment is what Dependabot updates and a reviewer reads. `./local` actions are exempt;
  `docker://` images must be pinned by digest.
- Every `make TARGET` that a `run:` calls is a target of the Makefile, and every `scripts/…` or
  `tools/…` file it runs exists: the workflows call the same targets as .ci/run, and a renamed
  target must not turn into a CI job that fails only on GitHub.
- The workflow starts from `permissions: {}` (each job then asks for what it needs), and every
  actions/checkout step sets `persist-credentials: false`.

- With --checkov BIN: checkov's github_actions checks on each workflow, which must pass and
  must have run: checkov skips a file its schema rejects (say an expression in
  `cancel-in-progress`) without a word, and then reports 0 failed for checks it never ran.

Usage: check_workflows.py [--makefile Makefile] [--checkov BIN] [WORKFLOW ...]
         (default .github/workflows/*.yml)
       check_workflows.py --self-test   proves that each check fails on a bad workflow
"""

from __future__ import annotations

import argparse
import pathlib
import re
import json
import shlex
import subprocess
import sys
import tempfile

import yaml

SHA_USES = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^v?\d+(\.\d+){0,2}([-+.][0-9A-Za-z.-]+)?$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*['\"]?([^\s'\"#]+)['\"]?\s*(?:#\s*(.*?))?\s*$")
# `make [VAR=value | -flag]... target...` anywhere in a shell line.
MAKE_CALL = re.compile(r"(?:^|[;&|(\s])make((?:[ \t]+[^\s;&|)]+)+)")
PATH_CALL = re.compile(r"(?:^|[\s;&|(\"'=])((?:\./)?(?:scripts|tools|helm|infra|observability|\.ci)/[A-Za-z0-9_./-]+\.(?:sh|py))")
TARGET_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*(?:\s+[A-Za-z0-9][A-Za-z0-9_.-]*)*)\s*::?(?!=)")


def makefile_targets(makefile: pathlib.Path) -> set[str]:
    targets: set[str] = set()
    for line in makefile.read_text().splitlines():
        m = TARGET_LINE.match(line)
        if m:
            targets.update(m.group(1).split())
    targets.discard(".PHONY")
    return targets


def iter_steps(doc: dict):
    for job_id, job in (doc.get("jobs") or {}).items():
        for i, step in enumerate((job or {}).get("steps") or []):
            yield job_id, i, step


def check_uses(path: pathlib.Path, text: str, doc: dict) -> list[str]:
    errors = []
    seen = 0
    for n, line in enumerate(text.splitlines(), 1):
        m = USES_LINE.match(line)
        if not m:
            continue
        seen += 1
        ref, comment = m.group(1), (m.group(2) or "").strip()
        where = f"{path}:{n}"
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                errors.append(f"{where}: {ref} is not pinned by digest (docker://image@sha256:...)")
            continue
        if not SHA_USES.match(ref):
            errors.append(f"{where}: {ref} is not pinned to a full 40-hex commit SHA")
        elif not VERSION_COMMENT.match(comment.split()[0] if comment else ""):
            errors.append(f"{where}: {ref} has no version comment (`uses: {ref} # v1.2.3`)")
    # A `uses:` the line scan missed (flow style, odd quoting) would escape the check.
    parsed = sum(1 for _, _, s in iter_steps(doc) if isinstance(s, dict) and "uses" in s)
    parsed += sum(1 for j in (doc.get("jobs") or {}).values() if isinstance(j, dict) and "uses" in j)
    if parsed != seen:
        errors.append(f"{path}: {parsed} uses: in the YAML but {seen} found line by line; write each as `uses: owner/repo@sha # vX`")
    return errors


def check_runs(path: pathlib.Path, doc: dict, root: pathlib.Path, targets: set[str]) -> list[str]:
    errors = []
    for job_id, i, step in iter_steps(doc):
        script = step.get("run") if isinstance(step, dict) else None
        if not isinstance(script, str):
            continue
        where = f"{path}: job {job_id}, step {step.get('name') or i + 1}"
        lines = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
        for m in (m for line in lines for m in MAKE_CALL.finditer(line)):
            try:
                words = shlex.split(m.group(1), comments=True)
            except ValueError:
                words = m.group(1).split()
            skip_next = False
            for w in words:
                if skip_next:
                    skip_next = False
                    continue
                if w in ("-C", "-f", "-j", "-o", "-W"):
                    skip_next = True
                    continue
                if w.startswith("-") or "=" in w:
                    continue
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", w):
                    break  # the end of the make command (a pipe, a redirection, ...)
                if w not in targets:
                    errors.append(f"{where}: `make {w}`: no such target in the Makefile")
        for m in PATH_CALL.finditer(script):
            rel = m.group(1).removeprefix("./")
            if not (root / rel).is_file():
                errors.append(f"{where}: runs {rel}, which does not exist")
    return errors


def check_hardening(path: pathlib.Path, doc: dict) -> list[str]:
    errors = []
    if doc.get("permissions") != {}:
        errors.append(f"{path}: the top level must say `permissions: {{}}` (jobs ask for what they need)")
    for job_id, i, step in iter_steps(doc):
        if isinstance(step, dict) and str(step.get("uses", "")).startswith("actions/checkout@"):
            if (step.get("with") or {}).get("persist-credentials") is not False:
                errors.append(f"{path}: job {job_id}, step {step.get('name') or i + 1}: actions/checkout without `persist-credentials: false`")
    return errors


def check(files: list[pathlib.Path], makefile: pathlib.Path) -> list[str]:
    root = makefile.parent
    targets = makefile_targets(makefile)
    if not targets:
        return [f"{makefile}: no targets found"]
    if not files:
        return ["no workflow files to check"]
    errors = []
    for f in files:
        text = f.read_text()
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict) or "jobs" not in doc:
            errors.append(f"{f}: not a workflow (no jobs)")
            continue
        errors += check_uses(f, text, doc)
        errors += check_runs(f, doc, root, targets)
        errors += check_hardening(f, doc)
    return errors


def run_checkov(checkov: str, files: list[pathlib.Path]) -> list[str]:
    errors = []
    for f in files:
        proc = subprocess.run(
            [checkov, "--framework", "github_actions", "--file", str(f), "--skip-download", "--quiet", "-o", "json"],
            capture_output=True, text=True,
        )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            errors.append(f"{f}: checkov gave no report (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            continue
        summary = report.get("summary", report)
        if summary.get("passed", 0) + summary.get("failed", 0) == 0:
            errors.append(f"{f}: checkov ran no check on it (it skips a workflow its schema rejects, e.g. an expression where it wants a boolean)")
        for c in (report.get("results") or {}).get("failed_checks") or []:
            errors.append(f"{f}:{c.get('file_line_range', ['?'])[0]}: checkov {c.get('check_id')}: {c.get('check_name')} ({c.get('resource')})")
        if summary.get("parsing_errors"):
            errors.append(f"{f}: checkov could not parse it")
    return errors


GOOD = """\
on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false
      - run: make VENV=/tmp/v lint && make -j2 test | tee log
      - run: |
          if true; then make
            exit 0
          fi
      - run: scripts/ok.sh
"""

# Each bad workflow, with the text its error must contain.
BAD = {
    "tag instead of a SHA": (GOOD.replace("@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "@v7"), "not pinned to a full 40-hex"),
    "short SHA": (GOOD.replace("3d3c42e5aac5ba805825da76410c181273ba90b1", "3d3c42e"), "not pinned to a full 40-hex"),
    "no version comment": (GOOD.replace(" # v7.0.1", ""), "no version comment"),
    "flow-style uses": (GOOD.replace("      - run: scripts/ok.sh\n", "      - {uses: actions/cache@v4}\n"), "found line by line"),
    "unknown make target": (GOOD.replace("make -j2 test", "make -j2 no-such-target"), "`make no-such-target`: no such target"),
    "missing script": (GOOD.replace("scripts/ok.sh", "scripts/gone.sh"), "scripts/gone.sh, which does not exist"),
    "no top-level permissions": (GOOD.replace("permissions: {}\n", "", 1), "permissions: {}"),
    "checkout keeps credentials": (GOOD.replace("persist-credentials: false", "persist-credentials: true"), "persist-credentials: false"),
    "unpinned docker image": (GOOD.replace("      - run: scripts/ok.sh\n", "      - uses: docker://alpine:3\n"), "pinned by digest"),
}


def self_test() -> int:
    failures = []
    with tempfile.TemporaryDirectory() as d:
        root = pathlib.Path(d)
        (root / "Makefile").write_text("lint: ## x\n\techo\ntest: tools\n\techo\nVAR := x\n")
        (root / "scripts").mkdir()
        (root / "scripts" / "ok.sh").write_text("#!/bin/sh\n")
        wf = root / "wf.yml"
        wf.write_text(GOOD)
        errs = check([wf], root / "Makefile")
        if errs:
            failures.append(f"the good workflow fails: {errs}")
        for name, (text, want) in BAD.items():
            wf.write_text(text)
            errs = check([wf], root / "Makefile")
            if not any(want in e for e in errs):
                failures.append(f"{name}: not reported (wanted {want!r}, got {errs})")
    for f in failures:
        print(f"check_workflows self-test: FAIL {f}", file=sys.stderr)
    if not failures:
        print(f"check_workflows self-test: the good workflow passes, {len(BAD)} bad ones fail")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--makefile", default="Makefile", type=pathlib.Path)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--checkov", help="run checkov's github_actions checks with this binary")
    ap.add_argument("files", nargs="*", type=pathlib.Path)
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    files = args.files or sorted(pathlib.Path(".github/workflows").glob("*.yml"))
    errors = check(files, args.makefile)
    if args.checkov:
        errors += run_checkov(args.checkov, files)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        return 1
    print(f"check_workflows: {len(files)} workflows: every action pinned by SHA with its version, every make target and script exists"
          + (", checkov's checks ran and passed on each" if args.checkov else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
