#!/usr/bin/python3
"""gapnet classify --files-from: a list of 100,000 image paths streamed through the default model.

    usage: classify_files_from_test.py PATH/TO/gapnet SOURCE_DIR

The list repeats a pattern of 320 paths (10 batches of 32): the ten 28x28 sample images of
data/samples/ in turn, with a missing file and a file that is not an image among them; empty lines
are sprinkled through the list (skipped). The results of one image vary in their last digits with
the other images of its batch, so a run is compared with the pattern's paths classified as IMAGE
arguments, whose batches are the same: line i of the run must equal line i mod 320 of that, byte for
byte. Checked:
  1. every path accounted for in input order, each result equal to the direct run's, the error lines
     on stderr, exit status 1, for the list as a file (JSON Lines) and on standard input (the table);
  2. constant memory: the peak RSS for 100,000 paths within 2 MiB of that for 960 (holding the
     paths alone would take some 10 MiB);
  3. streaming: the first batch's results arrive while the list is still open;
  4. the progress line on stderr when it is a terminal, and never otherwise.
"""
import glob
import os
import pty
import select
import subprocess
import sys
import tempfile
import time

PATTERN_LENGTH = 320  # a multiple of classify's default batch of 32
PATHS = 100_000
FEW = 960  # like PATHS, a multiple of 32 whose last batch holds the same images as the direct run's
MEMORY_MARGIN = 2 << 20


def run(command, stdin=subprocess.DEVNULL):
    """(exit status, stdout, stderr, peak RSS in bytes) of `command`, its streams as bytes. The peak is
    the program's own (VmHWM of its memory after exec, sampled until it exits): the rusage of a child
    forked from this interpreter would count the interpreter's pages too."""
    name = os.path.basename(command[0])[:15]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, stdin=stdin, stdout=out, stderr=err)
        peak = 0
        while True:
            try:
                with open(f"/proc/{child.pid}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if fields.get("Name", "").strip() == name and "VmHWM" in fields:
                    peak = max(peak, int(fields["VmHWM"].split()[0]) * 1024)
            except OSError:
                pass
            pid, status, _ = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.005)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return child.returncode, out.read(), err.read(), peak


def write_list(path, pattern, count):
    """The first `count` paths of `pattern` repeated, one per line, an empty line after every 1,000th."""
    with open(path, "wb") as f:
        for i in range(count):
            f.write(pattern[i % len(pattern)] + b"\n")
            if i % 1000 == 999:
                f.write(b"\n")


def main():
    gapnet, src = sys.argv[1], sys.argv[2]
    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)

    samples = sorted(glob.glob(os.path.join(src, "data/samples/*.png")))
    check(len(samples) == 10, f"expected the 10 sample images, found {len(samples)}")
    with tempfile.TemporaryDirectory() as tmp:
        not_an_image = os.path.join(tmp, "not-an-image.png")
        with open(not_an_image, "w") as f:
            f.write("not an image\n")
        missing = os.path.join(tmp, "missing.png")
        pattern = [os.fsencode(samples[i % len(samples)]) for i in range(PATTERN_LENGTH)]
        pattern[45] = os.fsencode(missing)
        pattern[200] = os.fsencode(not_an_image)
        bad = {45: b"cannot open: No such file or directory", 200: b"not an image gapnet can read (unknown image type)"}

        # The pattern classified directly, as IMAGE arguments: the reference.
        status, direct, _, _ = run([gapnet, "classify", "--json", *pattern])
        direct = direct.splitlines()
        check(status == 1 and len(direct) == PATTERN_LENGTH, f"direct run: exit {status}, {len(direct)} lines")
        for i, message in bad.items():
            check(
                direct[i] == b'{"file":"' + pattern[i] + b'","error":"' + message + b'"}',
                f"direct line {i}: {direct[i]!r}",
            )
        check(
            direct[0].startswith(b'{"file":"' + pattern[0] + b'","top":[{"label":"Ankle boot","index":9,'),
            f"direct line 0: {direct[0]!r}",
        )

        # 1. Every path, in order, each line equal to the direct run's; 2. the peak memory.
        peaks = {}
        for count in (FEW, PATHS):
            listed = os.path.join(tmp, f"list-{count}.txt")
            write_list(listed, pattern, count)
            status, out, err, peaks[count] = run([gapnet, "classify", "--json", "--files-from", listed])
            check(peaks[count] > 0, f"{count} paths: no peak RSS sampled")
            lines = out.splitlines()
            check(status == 1, f"{count} paths: exit status {status}, expected 1")
            check(len(lines) == count, f"{count} paths: {len(lines)} output lines")
            wrong = [i for i, line in enumerate(lines) if line != direct[i % PATTERN_LENGTH]]
            check(
                not wrong,
                f"{count} paths: {len(wrong)} lines differ from the direct run, the first is line {wrong[:1]}",
            )
            errors = [i for i in range(count) if i % PATTERN_LENGTH in bad]
            expected_err = b"".join(
                b"gapnet: error: %s: %s\n" % (pattern[i % PATTERN_LENGTH], bad[i % PATTERN_LENGTH]) for i in errors
            )
            check(err == expected_err, f"{count} paths: stderr is not the {len(errors)} error lines: {err[:300]!r}")
            print(f"{count:>7} paths: exit {status}, peak RSS {peaks[count] / 2**20:.1f} MiB")
        check(
            peaks[PATHS] <= peaks[FEW] + MEMORY_MARGIN,
            f"peak RSS grew from {peaks[FEW] / 2**20:.1f} MiB (960 paths) to {peaks[PATHS] / 2**20:.1f} MiB "
            f"({PATHS:,} paths): more than {MEMORY_MARGIN >> 20} MiB",
        )

        # The table, with the pattern's list on standard input, equals the direct run's.
        pattern_list = os.path.join(tmp, "pattern.txt")
        write_list(pattern_list, pattern, PATTERN_LENGTH)
        _, direct_table, direct_table_err, _ = run([gapnet, "classify", *pattern])
        check(
            direct_table.startswith(pattern[0] + b"\n   1  Ankle boot   0.9994\n"),
            f"direct table: {direct_table[:200]!r}",
        )
        with open(pattern_list, "rb") as listed:
            status, table, table_err, _ = run([gapnet, "classify", "--files-from", "-"], stdin=listed)
        check(
            status == 1 and table == direct_table and table_err == direct_table_err,
            f"the table from standard input differs from the direct run's (exit {status})",
        )

        # 3. Streaming: one batch written, its results read back before the list is closed.
        child = subprocess.Popen(
            [gapnet, "classify", "--json", "--files-from", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child.stdin.write(b"".join(p + b"\n" for p in pattern[:32]))
        child.stdin.flush()
        ready, _, _ = select.select([child.stdout], [], [], 30)
        first = child.stdout.readline().rstrip(b"\n") if ready else b""
        check(first == direct[0], f"no result within 30 s of writing a whole batch, the list still open: {first!r}")
        child.stdin.close()
        rest = child.stdout.read().splitlines()
        child.wait()
        check(rest == direct[1:32], "the rest of the first batch differs from the direct run")

        # 4. The progress line: on a terminal "\r320 images, 2 unreadable", erased at the end.
        leader, follower = pty.openpty()
        child = subprocess.Popen(
            [gapnet, "classify", "--json", "--files-from", pattern_list], stdout=subprocess.DEVNULL, stderr=follower
        )
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the program has exited and closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        child.wait()
        os.close(leader)
        check(b"\r320 images, 2 unreadable" in terminal, f"no progress line on the terminal: {terminal[-200:]!r}")
        check(
            terminal.endswith(b"\r" + b" " * len(b"320 images, 2 unreadable") + b"\r"),
            f"the progress line is not erased at the end: {terminal[-80:]!r}",
        )
        check(b"images," not in err, "a progress line on stderr that is not a terminal (the 100,000 paths' run)")

    for failure in failures:
        print("FAIL", failure)
    if failures:
        return 1
    print("classify --files-from: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
