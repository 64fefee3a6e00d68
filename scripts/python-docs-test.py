#!/usr/bin/env python3
"""Test the Python snippets of docs/python.md against a real server.

    scripts/python-docs-test.py            # what scripts/test runs
    scripts/python-docs-test.py --inner    # run the blocks against $TIMEDB_URL / $TIMEDB_API_KEY

By default (stdlib only): make sure the venv target/pyvenv has requests, pandas and
pyarrow (created on first use, then reused), start `target/debug/timedb api --port 0` on a
fresh SQLite database in a temporary directory, run this script with `--inner` in the venv
against it, and stop the server by its PID.

With `--inner`: execute the ```python blocks of docs/python.md in order, in one namespace
(as notebook cells). The first block that raises fails the run, printed with its traceback.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOC = os.path.join(ROOT, "docs", "python.md")
VENV = os.path.join(ROOT, "target", "pyvenv")
BINARY = os.path.join(ROOT, "target", "debug", "timedb")
PACKAGES = ["requests", "pandas", "pyarrow"]


def fail(message):
    print(f"python-docs-test: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def run_blocks():
    for var in ("TIMEDB_URL", "TIMEDB_API_KEY"):
        if not os.environ.get(var):
            fail(f"{var} is not set")
    with open(DOC, encoding="utf-8") as f:
        blocks = re.findall(r"^```python\n(.*?)^```[ \t]*$", f.read(), re.S | re.M)
    if not blocks:
        fail(f"no ```python blocks in {DOC}")
    namespace = {"__name__": "__notebook__"}
    for i, code in enumerate(blocks, 1):
        print(f"--- docs/python.md block {i}/{len(blocks)}", flush=True)
        try:
            exec(compile(code, f"docs/python.md [block {i}]", "exec"), namespace)
        except BaseException:
            print(f"\ndocs/python.md block {i}:", file=sys.stderr)
            for n, line in enumerate(code.splitlines(), 1):
                print(f"{n:4} | {line}", file=sys.stderr)
            traceback.print_exc()
            fail(f"block {i} of docs/python.md raised")
    print(f"python-docs-test: all {len(blocks)} blocks of docs/python.md passed")


def venv_python():
    """The venv's interpreter, with the packages installed (once; reused across runs)."""
    python = os.path.join(VENV, "bin", "python")
    marker = os.path.join(VENV, ".timedb-packages")
    wanted = " ".join(PACKAGES)
    if os.path.exists(marker) and open(marker).read() == wanted and os.path.exists(python):
        return python
    print(f"== creating {VENV} with {wanted}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--timeout", "60", *PACKAGES],
        check=True,
    )
    with open(marker, "w") as f:
        f.write(wanted)
    return python


def start_server(workdir):
    """Start `timedb api --port 0` in workdir; its process, URL and first-run admin key."""
    if not os.access(BINARY, os.X_OK):
        fail(f"{BINARY} not found; run `cargo build -p timedb-server --bin timedb` first")
    env = {k: v for k, v in os.environ.items() if k not in ("TIMEDB_DSN", "DATABASE_URL")}
    proc = subprocess.Popen(
        [BINARY, "api", "--port", "0"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    found, lines = {}, []

    def pump():
        for line in proc.stdout:
            lines.append(line)
            if "API Key:" in line and "key" not in found:
                found["key"] = line.split("API Key:", 1)[1].split()[0]
            if "serving " in line:
                found["url"] = line.split("serving ", 1)[1].split()[0]

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 30
    while "url" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            fail("timedb api did not start:\n" + "".join(lines))
        time.sleep(0.05)
    if "key" not in found:
        proc.kill()
        fail("timedb api printed no first-run `API Key:` line:\n" + "".join(lines))
    return proc, found["url"], found["key"]


def orchestrate():
    python = venv_python()
    workdir = tempfile.mkdtemp(prefix="timedb-pydocs.")
    proc = None
    try:
        proc, url, key = start_server(workdir)
        env = dict(os.environ, TIMEDB_URL=url, TIMEDB_API_KEY=key)
        code = subprocess.run([python, os.path.abspath(__file__), "--inner"], env=env, timeout=300).returncode
    finally:
        if proc is not None:
            proc.terminate()  # this PID only: SIGTERM drains and exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    if code != 0:
        fail(f"the docs/python.md snippets failed (exit {code})")


if __name__ == "__main__":
    if sys.argv[1:] == ["--inner"]:
        run_blocks()
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        orchestrate()
