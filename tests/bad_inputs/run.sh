#!/usr/bin/env bash
# The bad-input table: runs every case of tests/bad_inputs/cases.tsv against the gapnet program and
# checks that it is answered as a user should see it:
#   - the expected exit status;
#   - stderr is exactly one line, "gapnet: error: FILE: ..." (FILE as given on the command line),
#     containing the expected text; nothing on stdout;
#   - within 1 second.
#   usage: run.sh PATH/TO/gapnet SOURCE_DIR
#
# cases.tsv columns (tab-separated; '#' lines are comments): the file under tests/bad_inputs/, the
# command (summary or classify), the exit status, the text. `classify` on a file under images/ uses
# tests/models/brightness.json as the model; on a file under models/ it uses the file as the model
# and classifies data/test-images/gray.png with it.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/gapnet SOURCE_DIR" >&2
    exit 2
fi
gapnet=$1
src=$2
here=$src/tests/bad_inputs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 cases=0

fail() {
    echo "FAIL $1: $2"
    sed 's/^/    stderr: /' "$tmp/err"
    sed 's/^/    stdout: /' "$tmp/out"
    failures=$((failures + 1))
}

while IFS=$'\t' read -r file command status text; do
    case $file in '' | '#'*) continue ;; esac
    cases=$((cases + 1))
    path=$here/$file
    case $command/$file in
        summary/*) args=(summary "$path") ;;
        classify/models/*) args=(classify --model "$path" "$src/data/test-images/gray.png") ;;
        classify/images/*) args=(classify --model "$src/tests/models/brightness.json" "$path") ;;
        *) echo "FAIL $file: unknown command '$command' in cases.tsv"; failures=$((failures + 1)); continue ;;
    esac
    start=$(date +%s%N)
    # timeout: a hang must fail this case, not the whole run (2 s, so a slow answer is reported as slow).
    timeout 2 "$gapnet" "${args[@]}" >"$tmp/out" 2>"$tmp/err" </dev/null
    actual=$?
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    if [ "$actual" -ne "$status" ]; then
        fail "$file" "exit status $actual, expected $status"
        continue
    fi
    lines=$(wc -l <"$tmp/err")
    first=$(head -n 1 "$tmp/err")
    prefix="gapnet: error: $path: "
    if [ "$lines" -ne 1 ]; then
        fail "$file" "$lines lines on stderr, expected exactly one"
    elif [ "${first#"$prefix"}" = "$first" ]; then
        fail "$file" "stderr does not start with '$prefix'"
    elif [[ "$first" != *"$text"* ]]; then
        fail "$file" "stderr does not contain '$text'"
    elif [ -s "$tmp/out" ]; then
        fail "$file" "unexpected output on stdout"
    elif [ "$elapsed_ms" -gt 1000 ]; then
        fail "$file" "took $elapsed_ms ms, more than 1 second"
    fi
done <"$here/cases.tsv"

if [ "$cases" -eq 0 ]; then
    echo "FAIL: no cases read from $here/cases.tsv"
    exit 1
fi
if [ "$failures" -ne 0 ]; then
    echo "$failures of $cases bad-input case(s) failed"
    exit 1
fi
echo "all $cases bad-input cases answered with the expected one-line error"
