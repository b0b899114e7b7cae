#!/usr/bin/env bash
# Every output of gapnet is checked (tools/gapnet/output.h): for each command that writes, standard
# output on a full device (/dev/full) gives exit 1 and the one line naming it; a pipe whose reader is
# gone ends the run quietly (killed by SIGPIPE, or exit 141 when SIGPIPE is ignored); an -o file that
# cannot be written whole (/dev/full, or EFBIG past `ulimit -f`) is never left truncated under its
# name, nor is a temporary left beside it; a device is written in place.
#   usage: output_faults_test.sh PATH/TO/gapnet SOURCE_DIR
set -u
gapnet=$1
src=$2
model=$src/models/fashion_gap.json
other=$src/models/fashion_flatten.json
image=$src/data/samples/bag.png
dataset=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}
[ -r "$dataset" ] || fail "the Fashion-MNIST test set is missing: $dataset"

# closed_pipe SIGPIPE_ACTION COMMAND...: runs COMMAND with standard output the write end of a pipe
# whose read end is already closed, so that its first write fails (deterministically, unlike `| head`,
# where a short output fits in the pipe's buffer); SIGPIPE_ACTION "ignore" or "default" is the action
# COMMAND starts with. Prints "STATUS<TAB>STDERR", STATUS -13 when SIGPIPE killed it.
closed_pipe() {
    /usr/bin/python3 -c '
import os, signal, subprocess, sys
read_end, write_end = os.pipe()
os.close(read_end)
ignore = sys.argv[1] == "ignore"
# Python ignores SIGPIPE itself; restore_signals gives the child the default action.
run = subprocess.run(sys.argv[2:], stdout=write_end, stderr=subprocess.PIPE, restore_signals=not ignore)
sys.stdout.write("%d\t%s" % (run.returncode, run.stderr.decode()))
' "$@"
}

# check_stdout NAME COMMAND...: COMMAND writes something (status 0); to /dev/full it fails with the
# one line; to a closed pipe it is quiet, whatever SIGPIPE's action.
check_stdout() {
    local name=$1
    shift
    "$gapnet" "$@" >"$tmp/out" 2>"$tmp/err"
    local status=$?
    if [ "$status" -ne 0 ] || [ ! -s "$tmp/out" ] || [ -s "$tmp/err" ]; then
        fail "$name: the run itself: status $status, $(wc -c <"$tmp/out") bytes out, stderr: $(cat "$tmp/err")"
        return
    fi
    "$gapnet" "$@" >/dev/full 2>"$tmp/err"
    status=$?
    [ "$status" -eq 1 ] || fail "$name >/dev/full: status $status, expected 1"
    [ "$(cat "$tmp/err")" = "gapnet: error: standard output: No space left on device" ] ||
        fail "$name >/dev/full: stderr is not the one line: $(cat "$tmp/err")"
    local got
    got=$(closed_pipe ignore "$gapnet" "$@")
    [ "$got" = "141	" ] || fail "$name to a closed pipe, SIGPIPE ignored: expected status 141 and no stderr, got: $got"
    got=$(closed_pipe default "$gapnet" "$@")
    [ "$got" = "-13	" ] || fail "$name to a closed pipe: expected SIGPIPE and no stderr, got: $got"
}

list=$tmp/list.txt
for _ in 1 2 3; do echo "$image"; done >"$list"

check_stdout help --help
check_stdout version --version
check_stdout classify-help classify --help
check_stdout classify classify --model "$model" "$image"
check_stdout classify-json classify --json --model "$model" "$image"
check_stdout classify-files-from classify --model "$model" --files-from "$list"
check_stdout classify-files-from-json classify --json --model "$model" --files-from "$list"
check_stdout summary summary "$model"
check_stdout summary-json summary --json "$model"
check_stdout eval eval --model "$model" --dataset "$dataset" --limit 64
check_stdout eval-json eval --json --model "$model" --dataset "$dataset" --limit 64
check_stdout compare compare "$model" "$other"
check_stdout compare-json compare --json "$model" "$other"
check_stdout heads heads --input 7x7x64 --classes 10
check_stdout heads-json heads --json --input 7x7x64 --classes 10
check_stdout verify verify "$model"
check_stdout verify-json verify --json "$model"
check_stdout bench bench --model "$model" --iterations 2 --warmup 0
check_stdout bench-json bench --json --model "$model" --iterations 2 --warmup 0
check_stdout features features --model "$model" --layer fc1 "$image"
check_stdout features-json features --json --model "$model" --layer fc1 "$image"
# cam and features -o write their file, then the "wrote" line on standard output.
check_stdout cam-wrote cam --model "$model" -o "$tmp/stdout-cam.png" "$image"
check_stdout features-wrote features --model "$model" --layer fc1 -o "$tmp/stdout-fc1.npy" "$image"

# A failed write stops a stream: 100 images, then one that does not exist. The run ends at the first
# batch's results, never reaching the missing image (whose error line would show on stderr).
for _ in $(seq 100); do echo "$image"; done >"$tmp/stream.txt"
echo "$tmp/missing.png" >>"$tmp/stream.txt"
for json in "" --json; do
    "$gapnet" classify $json --model "$model" --files-from "$tmp/stream.txt" >/dev/full 2>"$tmp/err"
    status=$?
    [ "$status" -eq 1 ] && [ "$(cat "$tmp/err")" = "gapnet: error: standard output: No space left on device" ] ||
        fail "classify $json --files-from >/dev/full: status $status, stderr: $(cat "$tmp/err")"
    got=$(closed_pipe ignore "$gapnet" classify $json --model "$model" --files-from "$tmp/stream.txt")
    [ "$got" = "141	" ] || fail "classify $json --files-from to a closed pipe: $got"
done

# `| head -n 1` on a long output (20,000 images, about 3 MB: far more than a pipe holds), with either
# SIGPIPE action: nothing on stderr, and the run stops (the missing image at the end is never reached).
for _ in $(seq 20000); do echo "$image"; done >"$tmp/long.txt"
echo "$tmp/missing.png" >>"$tmp/long.txt"
for action in default ignore; do
    for json in "" --json; do
        if [ $action = ignore ]; then
            (trap '' PIPE && "$gapnet" classify $json --model "$model" --files-from "$tmp/long.txt" 2>"$tmp/err" |
                head -n 1 >"$tmp/out")
        else
            "$gapnet" classify $json --model "$model" --files-from "$tmp/long.txt" 2>"$tmp/err" | head -n 1 >"$tmp/out"
        fi
        [ -s "$tmp/err" ] && fail "classify $json | head -n 1 (SIGPIPE $action): stderr: $(cat "$tmp/err")"
        grep -q "bag.png" "$tmp/out" || fail "classify $json | head -n 1 (SIGPIPE $action): first line $(cat "$tmp/out")"
    done
done

# --- -o files --------------------------------------------------------------------------------------
# Each case: NAME, the target's extension, its leading bytes (od -c of the first 4), the command with
# OUT where the -o path goes. features' input layer is 784 floats (3,264 bytes), fc1 10 (168 bytes),
# cam's PNG ~40 KB: all but fc1 exceed a 1 KiB file size limit.
o_cases=(
    "cam|png|211   P   N   G|cam --model $model -o OUT $image"
    "features-input|npy|223   N   U   M|features --model $model --layer input -o OUT $image"
)
umask_mode=$(printf '%o' $((0666 & ~$(umask))))

for entry in "${o_cases[@]}"; do
    IFS='|' read -r name ext magic command <<<"$entry"
    dir=$tmp/o-$name
    mkdir -p "$dir"
    target=$dir/out.$ext
    run_o() {  # run_o TARGET [SHELL SETUP]: runs the command writing to TARGET, stdout to /dev/null
        local words=()
        for w in $command; do words+=("${w/#OUT/$1}"); done
        (eval "${2:-true}" && exec "$gapnet" "${words[@]}" 2>&1 >/dev/null)
    }

    # Written whole: exactly the target, with the mode a new file gets, and the format's leading bytes.
    out=$(run_o "$target")
    status=$?
    [ "$status" -eq 0 ] && [ -z "$out" ] || fail "$name -o: status $status, stderr: $out"
    [ "$(ls -A "$dir")" = "out.$ext" ] || fail "$name -o: the folder holds: $(ls -A "$dir")"
    [ "$(od -An -c -N4 "$target" | tr -s ' ' | sed 's/^ //')" = "$(echo "$magic" | tr -s ' ')" ] ||
        fail "$name -o: the file starts with $(od -An -c -N4 "$target")"
    [ "$(stat -c %a "$target")" = "$umask_mode" ] || fail "$name -o: mode $(stat -c %a "$target"), expected $umask_mode"
    rm -f "$target"

    # Past the file size limit (EFBIG; SIGXFSZ ignored, as the shell would otherwise be told): exit 1,
    # one line naming the file, no file left under its name nor a temporary.
    out=$(run_o "$target" "ulimit -f 1; trap '' XFSZ")
    status=$?
    [ "$status" -eq 1 ] || fail "$name -o past ulimit -f: status $status, expected 1"
    [ "$out" = "gapnet: error: $target: File too large" ] || fail "$name -o past ulimit -f: stderr: $out"
    [ -z "$(ls -A "$dir")" ] || fail "$name -o past ulimit -f: left in the folder: $(ls -A "$dir")"

    # The same with SIGXFSZ's default action: gapnet ignores it itself, so the result is the same.
    out=$(run_o "$target" "ulimit -f 1")
    status=$?
    [ "$status" -eq 1 ] && [ "$out" = "gapnet: error: $target: File too large" ] ||
        fail "$name -o past ulimit -f, SIGXFSZ default: status $status, stderr: $out"
    [ -z "$(ls -A "$dir")" ] || fail "$name -o past ulimit -f, SIGXFSZ default: left: $(ls -A "$dir")"

    # An existing file keeps its content, and nothing else is left.
    echo previous >"$target"
    out=$(run_o "$target" "ulimit -f 1; trap '' XFSZ")
    status=$?
    [ "$status" -eq 1 ] && [ "$out" = "gapnet: error: $target: File too large" ] ||
        fail "$name -o over a file past ulimit -f: status $status, stderr: $out"
    [ "$(cat "$target")" = previous ] || fail "$name -o over a file past ulimit -f: its content changed"
    [ "$(ls -A "$dir")" = "out.$ext" ] || fail "$name -o over a file past ulimit -f: the folder holds: $(ls -A "$dir")"

    # Replacing an existing file keeps its mode; a symbolic link stays a link to the new content.
    chmod 600 "$target"
    ln -s "out.$ext" "$dir/link.$ext"
    out=$(run_o "$dir/link.$ext")
    [ -z "$out" ] && [ -L "$dir/link.$ext" ] && [ "$(stat -c %a "$target")" = 600 ] &&
        [ "$(od -An -c -N4 "$target" | tr -s ' ' | sed 's/^ //')" = "$(echo "$magic" | tr -s ' ')" ] ||
        fail "$name -o through a link: stderr '$out', folder: $(ls -lA "$dir")"
    [ "$(ls -A "$dir" | sort | tr '\n' ' ')" = "link.$ext out.$ext " ] || fail "$name -o through a link: $(ls -A "$dir")"

    # A device is written in place: the one line, and nothing created in /dev.
    before=$(ls -A /dev | grep -c full)
    out=$(run_o /dev/full)
    status=$?
    [ "$status" -eq 1 ] && [ "$out" = "gapnet: error: /dev/full: No space left on device" ] ||
        fail "$name -o /dev/full: status $status, stderr: $out"
    [ "$(ls -A /dev | grep -c full)" = "$before" ] || fail "$name -o /dev/full: created in /dev: $(ls -A /dev | grep full)"

    # A pipe is written in place too (-o /dev/stdout | cat): the format's bytes come through it.
    words=()
    for w in $command; do words+=("${w/#OUT//dev/stdout}"); done
    "$gapnet" "${words[@]}" 2>"$tmp/err" | cat >"$tmp/piped"
    [ ! -s "$tmp/err" ] && [ "$(od -An -c -N4 "$tmp/piped" | tr -s ' ' | sed 's/^ //')" = "$(echo "$magic" | tr -s ' ')" ] ||
        fail "$name -o /dev/stdout into a pipe: stderr $(cat "$tmp/err"), starts $(od -An -c -N4 "$tmp/piped")"
done

# A small array (168 bytes, within any buffer) to /dev/full fails too: the write itself is checked.
"$gapnet" features --model "$model" --layer fc1 -o /dev/full "$image" >"$tmp/out" 2>"$tmp/err"
status=$?
[ "$status" -eq 1 ] && [ "$(cat "$tmp/err")" = "gapnet: error: /dev/full: No space left on device" ] && [ ! -s "$tmp/out" ] ||
    fail "features -o /dev/full (small): status $status, stdout $(cat "$tmp/out"), stderr $(cat "$tmp/err")"

# A folder the temporary cannot be created in: one line naming the target, nothing written.
"$gapnet" features --model "$model" --layer fc1 -o "$tmp/no-folder/x.npy" "$image" >/dev/null 2>"$tmp/err"
[ "$(cat "$tmp/err")" = "gapnet: error: $tmp/no-folder/x.npy: cannot create a temporary file in $tmp/no-folder: No such file or directory" ] ||
    fail "features -o in a missing folder: $(cat "$tmp/err")"
# A target that is a folder: written in place, so refused by open(), nothing created in it.
mkdir "$tmp/folder"
"$gapnet" features --model "$model" --layer fc1 -o "$tmp/folder" "$image" >/dev/null 2>"$tmp/err"
[ "$(cat "$tmp/err")" = "gapnet: error: $tmp/folder: cannot open: Is a directory" ] && [ -z "$(ls -A "$tmp/folder")" ] ||
    fail "features -o FOLDER: $(cat "$tmp/err")"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all output fault checks passed"
