#!/usr/bin/python3
"""tools/classify_dask.py on a LocalCluster of 2 worker processes.

    usage: classify_dask_test.py PATH/TO/gapnet SOURCE_DIR

  1. A list of 710 paths (the sample images over and over, a missing file and a file that is not an
     image among them) in chunks of 64 (2 batches of gapnet's 32, so that every batch holds the same
     images as in one process): the output equals one `gapnet classify --files-from - --json` run's,
     line for line, the images' errors in their places, and both exit with status 1.
  2. A worker that cannot run gapnet: exit status 3 and one line naming the chunk and the cause.
Workers that die are not tested here: with them, Dask 2022.12's LocalCluster now and then hangs on a
loaded machine (docs/scale-out.md).
Needs python3-dask and python3-distributed; fails, never skips, without them.
"""
import glob
import os
import subprocess
import sys
import tempfile


def main():
    gapnet, src = sys.argv[1], sys.argv[2]
    tool = [sys.executable, os.path.join(src, "tools/classify_dask.py"), "--workers", "2", "--chunk-size", "64"]
    options = ["--top", "3", "--threads", "1"]
    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)

    samples = sorted(glob.glob(os.path.join(src, "data/samples/*.png")))
    with tempfile.TemporaryDirectory() as tmp:
        missing = os.path.join(tmp, "missing.png")
        not_an_image = os.path.join(src, "data/test-images/not-an-image.png")
        paths = [samples[i % len(samples)] for i in range(710)]
        paths[100], paths[301] = missing, not_an_image
        listed = os.path.join(tmp, "list.txt")
        with open(listed, "w") as f:
            f.write("".join(p + "\n" for p in paths))

        with open(listed, "rb") as stdin:
            single = subprocess.run(
                [gapnet, "classify", "--files-from", "-", "--json", *options], stdin=stdin, capture_output=True
            )
        lines = single.stdout.splitlines()
        check(
            single.returncode == 1 and len(lines) == len(paths),
            f"single process: exit {single.returncode}, {len(lines)} lines for {len(paths)} paths",
        )
        check(
            lines[100] == f'{{"file":"{missing}","error":"cannot open: No such file or directory"}}'.encode(),
            f"single process, line 101: {lines[100]!r}",
        )
        check(
            lines[301]
            == f'{{"file":"{not_an_image}","error":"not an image gapnet can read (unknown image type)"}}'.encode(),
            f"single process, line 302: {lines[301]!r}",
        )

        # 1. The same output from the cluster.
        dask = subprocess.run([*tool, "--gapnet", gapnet, "--files-from", listed, "--", *options], capture_output=True)
        print(f"Dask, 2 workers: exit {dask.returncode}, {len(dask.stdout.splitlines())} lines")
        check(dask.returncode == 1, f"Dask: exit {dask.returncode}, expected 1; stderr: {dask.stderr.decode()[-2000:]}")
        dask_lines = dask.stdout.splitlines()
        differ = [
            i
            for i in range(max(len(lines), len(dask_lines)))
            if i >= len(lines) or i >= len(dask_lines) or lines[i] != dask_lines[i]
        ]
        check(
            not differ,
            f"Dask's output differs from one process's: {len(dask_lines)} lines, "
            f"{len(differ)} differ, the first is line {differ[:1]}",
        )
        check(dask.stderr == b"", f"Dask: unexpected stderr: {dask.stderr.decode()[-2000:]}")

        # 2. gapnet cannot run on the workers: one line.
        broken = subprocess.run(
            [*tool, "--gapnet", os.path.join(tmp, "no-gapnet"), "--files-from", listed], capture_output=True
        )
        expected = f"classify_dask.py: error: paths 1 to 64: cannot run {tmp}/no-gapnet: No such file or directory\n"
        check(
            broken.returncode == 3 and broken.stderr.decode() == expected and broken.stdout == b"",
            f"without gapnet: exit {broken.returncode}, stderr {broken.stderr.decode()[-2000:]!r}",
        )

    for failure in failures:
        print("FAIL", failure)
    if failures:
        return 1
    print("classify_dask.py: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
