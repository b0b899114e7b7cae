#!/usr/bin/env python3
"""A model path that never ends (a device, an endless pipe) is refused at Limits::max_file_bytes
within seconds, with one line, and holding no more memory than the bound.

The bound is lowered to 64 MiB with --model-limit. The process's peak resident memory (ru_maxrss,
from wait4) must stay within the bound plus 16 MiB: the program itself takes about 6 MiB, and the
model's buffer is faulted in 2 MiB at a time (transparent huge pages). A buffer grown by doubling
(gapnet before this test) peaks at twice the bound.

    usage: endless_model_test.py PATH/TO/gapnet
"""
import os
import subprocess
import sys
import tempfile
import time

BOUND = 64 << 20
MARGIN = 16 << 20
SECONDS = 10


def run(gapnet, model, stdin):
    """Runs `gapnet summary` on `model`; returns (exit status or None if still running after SECONDS,
    stderr, peak RSS in bytes, seconds). The peak is the process's own, from wait4."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [gapnet, "summary", "--model-limit", f"max_file_bytes={BOUND}", model],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > SECONDS:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                status = None
                break
            time.sleep(0.01)
        process.returncode = -1  # reaped here, not by Popen
        stderr.seek(0)
        text = stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    return code, text, usage.ru_maxrss * 1024, time.monotonic() - start


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    gapnet = sys.argv[1]
    failures = 0
    # The limit's note after it ("(Limits::max_file_bytes = N)", how to raise it) is the CLI's wording,
    # checked by cli_test.sh; here, that it is this limit.
    expected_start = f": is larger than {BOUND} bytes ("
    cases = [("/dev/zero", "/dev/zero", None), ("an endless pipe (yes |)", "/dev/stdin", ["yes"])]
    for name, model, feeder in cases:
        source = subprocess.Popen(feeder, stdout=subprocess.PIPE) if feeder else None
        status, stderr, peak, seconds = run(gapnet, model, source.stdout if source else subprocess.DEVNULL)
        if source:
            source.kill()
            source.wait()
            source.stdout.close()
        print(f"{name}: exit status {status}, {seconds:.2f} s, peak RSS {peak / 2**20:.1f} MiB: {stderr.strip()}")
        lines = stderr.splitlines()
        if status != 1:
            print(f"FAIL {name}: exit status {status}, expected 1 (None: still running after {SECONDS} s)")
            failures += 1
        elif (
            len(lines) != 1
            or not lines[0].startswith(f"gapnet: error: {model}{expected_start}")
            or f"max_file_bytes = {BOUND}" not in lines[0]
        ):
            print(f"FAIL {name}: expected one line 'gapnet: error: {model}{expected_start}...' naming max_file_bytes")
            failures += 1
        if peak > BOUND + MARGIN:
            print(f"FAIL {name}: peak RSS {peak} bytes, more than the bound {BOUND} + {MARGIN}")
            failures += 1
    # A model that ends is read from a pipe (subprocess's `input`) as from its file, also with a bound
    # of 64 TiB, more than the kernel maps at once (the buffer then grows as it fills).
    model = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "brightness.json")
    from_file = subprocess.run([gapnet, "summary", model], capture_output=True)
    with open(model, "rb") as f:
        text = f.read()
    for bound in [BOUND, 1 << 46]:
        limit = f"max_file_bytes={bound}"
        from_pipe = subprocess.run(
            [gapnet, "summary", "--model-limit", limit, "/dev/stdin"], input=text, capture_output=True
        )
        if (
            from_file.returncode
            or from_pipe.returncode
            or from_pipe.stdout != from_file.stdout.replace(model.encode(), b"/dev/stdin")
        ):
            print(f"FAIL a model read from a pipe with {limit}: {from_pipe.stderr} {from_pipe.stdout}")
            failures += 1
    if failures:
        sys.exit(f"{failures} failure(s)")
    print("endless model sources refused at the bound, within it")


if __name__ == "__main__":
    main()
