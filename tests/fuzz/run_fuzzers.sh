#!/usr/bin/env bash
# Runs each libFuzzer harness for SECONDS on a copy of its committed seed corpus, prints how many
# inputs each one executed, and exits non-zero if any harness found a crash, leak, timeout (> 1 s per
# input), out-of-memory or sanitizer report. Findings are kept in WORK_DIR/findings/NAME/.
#   usage: run_fuzzers.sh BUILD_DIR SECONDS [WORK_DIR]
#   BUILD_DIR: configured with  CC=clang CXX=clang++ cmake -DGAPNET_FUZZ=ON ...  and built
#   WORK_DIR:  where corpora, findings and logs go (default: BUILD_DIR/fuzz-run; a previous run's
#              corpus/, findings/ and logs there are removed first)
# CI runs it with ~60 seconds per harness. The committed corpora are never written to: each run
# starts from a fresh copy, so what the fuzzer adds stays in WORK_DIR.
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [WORK_DIR]" >&2
    exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
work=${3:-$build/fuzz-run}
case $seconds in '' | *[!0-9]* | 0) echo "$0: SECONDS must be a positive integer" >&2; exit 2 ;; esac

failures=0
# Only what a previous run left here is removed (WORK_DIR may be any directory).
rm -rf "$work/corpus" "$work/findings" "$work"/model.log "$work"/image.log "$work"/classify.log
mkdir -p "$work"
for name in model image classify; do
    fuzzer=$build/tests/fuzz/fuzz_$name
    if [ ! -x "$fuzzer" ]; then
        echo "$0: $fuzzer not found (build with -DGAPNET_FUZZ=ON)" >&2
        exit 2
    fi
    corpus=$work/corpus/$name findings=$work/findings/$name log=$work/$name.log
    mkdir -p "$corpus" "$findings"
    cp "$here/corpus/$name"/* "$corpus/"
    dict=()
    [ -f "$here/$name.dict" ] && dict=(-dict="$here/$name.dict")
    # -timeout=1: an input taking over a second is a hang; -rss_limit_mb: a harness above 2 GiB is
    # allocating far more than its limits allow; -malloc_limit_mb (defaults to the rss limit) makes
    # one such allocation a finding even when it is never touched. Leak detection is on by default.
    "$fuzzer" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 \
        -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    artifacts=$(find "$findings" -type f | wc -l)
    if [ "$status" -ne 0 ] || [ "$artifacts" -ne 0 ]; then
        echo "fuzz_$name: FAILED after ${runs:-?} executions (exit status $status); log: $log"
        grep -E '^(==[0-9]+== ?ERROR|SUMMARY|.*runtime error|ALARM|terminate called|  what\(\))' "$log" | head -6
        find "$findings" -type f | sed 's/^/  input: /'
        failures=$((failures + 1))
    else
        echo "fuzz_$name: ${runs:-?} executions in ${seconds} s, no findings (corpus: $(find "$corpus" -type f | wc -l) inputs)"
    fi
done
[ "$failures" -eq 0 ] || { echo "$failures harness(es) found problems"; exit 1; }
