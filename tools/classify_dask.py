#!/usr/bin/python3
"""Classify a list of images on a Dask cluster: `gapnet classify --files-from - --json` on every
worker, the results gathered in the list's order.

    classify_dask.py [--scheduler ADDRESS | --workers N] [--chunk-size N] [--gapnet PATH]
                     [--files-from LIST] [-- GAPNET_CLASSIFY_OPTIONS...]

The list (LIST, or standard input; one image path per line, empty lines skipped, as for gapnet's
--files-from) is cut into chunks of --chunk-size paths. Each chunk is a task: a worker pipes it into
`gapnet classify --files-from - --json` plus the options after "--" (--model, --top, --threads...)
and returns the JSON lines. Chunks are written to standard output in the list's order as they
complete, with a bounded number in flight, so that neither the list nor the results are ever held
whole. With --scheduler, the workers of that running cluster are used (each must reach the gapnet
program, the model and the images at the same paths); without, a LocalCluster of --workers processes.

Exit status, as gapnet's: 0 every image classified; 1 some image could not be read (its
{"file": ..., "error": ...} line is in the output, in its place); 2 wrong command line; 3 a chunk
failed (gapnet could not run or stopped, a worker died): one line on standard error names the chunk
and the cause, and the output ends before that chunk.

Needs Debian's python3-dask and python3-distributed. docs/scale-out.md has the recipe, GNU parallel
and Spark equivalents, and measured throughput.
"""
import argparse
import collections
import logging
import os
import subprocess
import sys


class ChunkFailed(Exception):
    """A chunk that gave no complete output: gapnet failed, or the worker running it did."""


def classify_chunk(gapnet, options, paths):
    """On a worker: the JSON lines of gapnet for `paths` (bytes, one path per line), and whether
    every image was read. A failure is returned, not raised, so that the worker logs nothing and the
    client prints the one line."""
    # Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536, for Python's sake. gapnet
    # frees and allocates its activations for every batch, and with that setting glibc returns them to
    # the system and faults them in again each time: 3.6x slower, measured. gapnet runs without it.
    environment = {name: value for name, value in os.environ.items() if name != "MALLOC_TRIM_THRESHOLD_"}
    try:
        run = subprocess.run(
            [gapnet, "classify", "--files-from", "-", "--json", *options],
            input=paths,
            capture_output=True,
            env=environment,
        )
    except OSError as e:
        return {"failed": f"cannot run {gapnet}: {e.strerror}"}
    lines, expected = run.stdout.count(b"\n"), paths.count(b"\n")
    if run.returncode in (0, 1) and lines == expected:  # every path gives one line, its result or its error
        return {"output": run.stdout, "all_read": run.returncode == 0}
    stderr = run.stderr.decode(errors="replace").strip().splitlines()
    return {
        "failed": f"gapnet exited with status {run.returncode} after {lines} lines for {expected} paths"
        + (f": {stderr[-1]}" if stderr else "")
    }


def chunks(stream, size):
    """The non-empty lines of `stream` (bytes), `size` at a time, each chunk as newline-ended bytes,
    with the number of its first path (counting from 1)."""
    chunk, first, count = [], 1, 0
    for line in stream:
        line = line.rstrip(b"\n")
        if not line:
            continue
        count += 1
        chunk.append(line + b"\n")
        if len(chunk) == size:
            yield first, b"".join(chunk)
            chunk, first = [], count + 1
    if chunk:
        yield first, b"".join(chunk)


def classify(client, gapnet, options, stream, chunk_size, out):
    """Runs every chunk of `stream` on the cluster, writing the output to `out` in order; returns the
    exit status."""
    in_flight = 2 * max(1, len(client.scheduler_info()["workers"]))  # one running, one queued per worker
    pending = collections.deque()
    all_read = True

    def write_oldest():
        nonlocal all_read
        first, size, future = pending.popleft()
        try:
            result = future.result()
        except Exception as e:  # the workers running it died, or it could not run there
            result = {"failed": f"{type(e).__name__}: {str(e).split('. ')[0]}"}  # the first sentence is the cause
        if "failed" in result:
            raise ChunkFailed(f"paths {first} to {first + size - 1}: {result['failed']}")
        out.write(result["output"])
        out.flush()
        all_read &= result["all_read"]

    for first, paths in chunks(stream, chunk_size):
        pending.append((first, paths.count(b"\n"), client.submit(classify_chunk, gapnet, options, paths, pure=False)))
        if len(pending) >= in_flight:
            write_oldest()
    while pending:
        write_oldest()
    return 0 if all_read else 1


def main():
    argv = sys.argv[1:]
    options = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786")
    where.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=os.cpu_count(),
        help="without --scheduler: a LocalCluster of N worker processes (default: the cores)",
    )
    parser.add_argument(
        "--chunk-size",
        metavar="N",
        type=int,
        default=3200,
        help="paths per task (default 3200; a multiple of gapnet's batch keeps its batches "
        "the same as one process's)",
    )
    parser.add_argument(
        "--gapnet", metavar="PATH", default="gapnet", help="the gapnet program on the workers (default: gapnet)"
    )
    parser.add_argument(
        "--files-from", metavar="LIST", default="-", help="the list of images (default: standard input)"
    )
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.chunk_size < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--chunk-size and --workers must be at least 1")

    from dask.distributed import Client  # here: --help needs no Dask

    # The cluster's log (workers restarted, errors while it shuts down after one died) would bury the
    # one line that says what failed. (A worker process's own traceback still reaches stderr.)
    logging.getLogger("tornado").setLevel(logging.CRITICAL)

    try:
        stream = open(args.files_from, "rb") if args.files_from != "-" else sys.stdin.buffer
    except OSError as e:
        print(f"classify_dask.py: error: {args.files_from}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        # Without --scheduler, the client starts a LocalCluster and stops it when closed. One thread per
        # worker: a worker only waits for its gapnet process, which uses the cores.
        with stream, (
            Client(args.scheduler)
            if args.scheduler
            else Client(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
            )
        ) as client:
            return classify(client, args.gapnet, options, stream, args.chunk_size, sys.stdout.buffer)
    except (ChunkFailed, OSError) as e:  # OSError: the scheduler cannot be reached
        print(f"classify_dask.py: error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
