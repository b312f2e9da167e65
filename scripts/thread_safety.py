#!/usr/bin/env python3
"""Clang's thread-safety analysis over qvec's sources.

Compiles every engine/, storage/, server/, index/ and common/ source of a
build tree (its compile_commands.json) with clang++ -fsyntax-only
-Wthread-safety, and fails on any thread-safety warning. The mutexes and
what they guard are annotated with common/thread_annotations.h; gcc ignores
the annotations, so this is where they are checked. Run by ctest as
`thread_safety_analysis` and by `make thread-safety`.

Usage: thread_safety.py BUILD_DIR [CLANG++]
"""
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys

MODULES = ("engine/", "storage/", "server/", "index/", "common/")


def main():
    build = sys.argv[1]
    clang = sys.argv[2] if len(sys.argv) > 2 else (shutil.which("clang++") or "")
    if not clang:
        print("thread_safety: clang++ not found (scripts/setup.sh installs it)")
        return 77  # ctest SKIP_RETURN_CODE
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    jobs = []
    for e in entries:
        rel = os.path.relpath(e["file"], root)
        if not rel.startswith(MODULES):
            continue
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        out = [clang]
        skip = False
        for a in args[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-c"):
                skip = a == "-o"
                continue
            if a == e["file"] or a.startswith("-O"):
                continue
            out.append(a)
        out += ["-fsyntax-only", "-Wno-everything", "-Wthread-safety",
                "-Wthread-safety-beta", "-Werror=thread-safety", "-ferror-limit=0", e["file"]]
        jobs.append((rel, out, e.get("directory", build)))

    def run(job):
        rel, cmd, cwd = job
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        return rel, p.returncode, p.stderr

    failed = 0
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for rel, rc, err in pool.map(run, jobs):
            if rc != 0 or "warning:" in err:
                failed += 1
                print(f"--- {rel}\n{err}")
    print(f"thread_safety: {len(jobs)} files, {failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
