#!/usr/bin/env bash
# End-to-end test of the gapnet program: classify and summary on a tiny hand-made model, exit
# statuses, one-line errors, and the bundled default model on the bundled samples.
#   usage: cli_test.sh PATH/TO/gapnet SOURCE_DIR
#
# tests/models/brightness.json averages its 2x2 gray input (GAP), then dense [2, -2] and softmax:
# p(bright) = 1 / (1 + exp(-4 m)) for a mean pixel m in 0..1. For data/test-images/gray.png,
# m = (0 + 64 + 128 + 255) / 4 / 255 = 0.438235, p = 0.852323386; for rgb.png the BT.601 luma mean is
# 68.2875 / 255, p = 0.744820584. JSON holds the float32 results in their shortest form (0.8523234).
set -u
gapnet=$1
src=$2
model=$src/tests/models/brightness.json
images=$src/data/test-images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# run NAME EXPECTED_STATUS COMMAND...: runs it, keeping stdout and stderr in $tmp/out and $tmp/err.
run() {
    local name=$1 expected=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local status=$?
    if [ "$status" -ne "$expected" ]; then
        echo "FAIL $name: exit status $status, expected $expected"; cat "$tmp/out" "$tmp/err"
        failures=$((failures + 1))
        return 1
    fi
    return 0
}
# expect NAME FILE TEXT: FILE contains the line TEXT exactly.
expect_line() {
    if ! grep -qxF -- "$3" "$2"; then
        echo "FAIL $1: no line '$3' in:"; cat "$2"
        failures=$((failures + 1))
    fi
}
expect_lines() {  # expect_lines NAME FILE N: FILE has exactly N lines
    local n
    n=$(wc -l <"$2")
    if [ "$n" -ne "$3" ]; then
        echo "FAIL $1: $n lines, expected $3:"; cat "$2"
        failures=$((failures + 1))
    fi
}

run help 0 "$gapnet" --help && grep -q "gapnet classify" "$tmp/out" || { echo "FAIL help text"; failures=$((failures + 1)); }
run classify-help 0 "$gapnet" classify --help && grep -q -- "--top K" "$tmp/out" || { echo "FAIL classify help"; failures=$((failures + 1)); }
run summary-help 0 "$gapnet" summary --help

# The table: file, then rank, label, probability.
if run table 0 "$gapnet" classify --model "$model" "$images/gray.png"; then
    expect_line table "$tmp/out" "$images/gray.png"
    expect_line table "$tmp/out" "   1  bright  0.8523"
    expect_line table "$tmp/out" "   2  dark    0.1477"
    expect_lines table "$tmp/err" 0
fi

# JSON lines, and --top K capped at the number of classes.
if run json 0 "$gapnet" classify --model="$model" --top 1 --json "$images/gray.png" "$images/rgb.png"; then
    expect_line json "$tmp/out" "{\"file\":\"$images/gray.png\",\"top\":[{\"label\":\"bright\",\"index\":0,\"probability\":0.8523234}]}"
    expect_line json "$tmp/out" "{\"file\":\"$images/rgb.png\",\"top\":[{\"label\":\"bright\",\"index\":0,\"probability\":0.7448206}]}"
fi
if run top-all 0 "$gapnet" classify --model "$model" --top 10 --json "$images/gray.png"; then
    grep -q '"label":"dark","index":1,"probability":0.1476766}' "$tmp/out" || { echo "FAIL top-all"; cat "$tmp/out"; failures=$((failures + 1)); }
fi

# One bad image among good ones: the others are classified, one error line, exit 1.
if run partial 1 "$gapnet" classify --model "$model" --top 1 "$images/gray.png" "$images/missing.png" "$images/not-an-image.png" "$images/rgb.png"; then
    expect_line partial "$tmp/out" "$images/gray.png"
    expect_line partial "$tmp/out" "$images/rgb.png"
    expect_line partial "$tmp/err" "gapnet: error: $images/missing.png: cannot open: No such file or directory"
    expect_line partial "$tmp/err" "gapnet: error: $images/not-an-image.png: not an image gapnet can read (unknown image type)"
    expect_lines partial "$tmp/err" 2
fi
if run partial-json 1 "$gapnet" classify --model "$model" --json "$images/missing.png" "$images/gray.png"; then
    expect_line partial-json "$tmp/out" "{\"file\":\"$images/missing.png\",\"error\":\"cannot open: No such file or directory\"}"
    expect_lines partial-json "$tmp/out" 2
fi

# --files-from: the listed images in order, empty lines skipped, an unreadable one reported in its
# place; tests/classify_files_from_test.py streams 100,000 paths.
printf '%s\n' "$images/gray.png" "" "$images/missing.png" "$images/rgb.png" >"$tmp/list.txt"
if run files-from 1 "$gapnet" classify --model "$model" --top 1 --json --files-from "$tmp/list.txt"; then
    [ "$(cut -c1-60 "$tmp/out")" = "$(printf '%s\n' "{\"file\":\"$images/gray.png\",\"top\":[{\"label\"" \
        "{\"file\":\"$images/missing.png\",\"error\":\"cannot open: No such" "{\"file\":\"$images/rgb.png\",\"top\":[{\"label\"" | cut -c1-60)" ] ||
        { echo "FAIL files-from: not the three images in order"; cat "$tmp/out"; failures=$((failures + 1)); }
    expect_line files-from "$tmp/err" "gapnet: error: $images/missing.png: cannot open: No such file or directory"
    expect_lines files-from "$tmp/err" 1
fi
# A listed "-" is a file of that name: standard input is the list itself.
if run files-from-dash 1 "$gapnet" classify --model "$model" --files-from - < <(printf -- '-\n'); then
    expect_line files-from-dash "$tmp/err" "gapnet: error: -: cannot open: No such file or directory"
fi
run files-from-empty 0 "$gapnet" classify --model "$model" --files-from - </dev/null && expect_lines files-from-empty "$tmp/out" 0
run files-from-missing 1 "$gapnet" classify --model "$model" --files-from "$tmp/none.txt" &&
    expect_line files-from-missing "$tmp/err" "gapnet: error: $tmp/none.txt: cannot open: No such file or directory"
run files-from-directory 1 "$gapnet" classify --model "$model" --files-from "$tmp" &&
    expect_line files-from-directory "$tmp/err" "gapnet: error: $tmp: is a directory, not a file"
run files-from-and-images 2 "$gapnet" classify --files-from "$tmp/list.txt" "$images/gray.png" &&
    expect_line files-from-and-images "$tmp/err" "gapnet: error: IMAGE arguments and --files-from exclude each other (see gapnet classify --help)"

# Bad models: one line naming the file and the problem, exit 1.
sed 's/"in_features": 1/"in_features": 3/' "$model" >"$tmp/bad.json"
if run bad-model 1 "$gapnet" classify --model "$tmp/bad.json" "$images/gray.png"; then
    expect_line bad-model "$tmp/err" "gapnet: error: $tmp/bad.json: layers[1].weight.shape: [2,1] does not match the layer's attributes, which need [2,3]"
    expect_lines bad-model "$tmp/err" 1
    expect_lines bad-model "$tmp/out" 0
fi
printf '{"format": "gapnet", ' >"$tmp/truncated.json"
if run truncated-model 1 "$gapnet" summary "$tmp/truncated.json"; then
    expect_line truncated-model "$tmp/err" "gapnet: error: $tmp/truncated.json: not valid JSON at line 1, column 22 (byte 21): expected a key (a string in double quotes), got the end of the text (is the file truncated?)"
    expect_lines truncated-model "$tmp/err" 1
fi
run missing-model 1 "$gapnet" summary "$tmp/none.json" &&
    expect_line missing-model "$tmp/err" "gapnet: error: $tmp/none.json: cannot open: No such file or directory"

# Limits: a lowered one refuses the model and says how to raise it.
if run limit 1 "$gapnet" summary --model-limit max_parameters=3 "$model"; then
    expect_line limit "$tmp/err" "gapnet: error: $model: layers[1].bias: the model's tensors exceed 3 values in total (Limits::max_parameters = 3); raise it with --model-limit max_parameters=N"
fi
run limit-ok 0 "$gapnet" summary --model-limit=max_parameters=4 "$model"
run limit-unknown 2 "$gapnet" summary --model-limit max_weights=4 "$model"
run limit-bad-value 2 "$gapnet" summary --model-limit max_layers=-1 "$model"

# verify: a file without recorded tests cannot be verified.
run verify-none 1 "$gapnet" verify "$model" &&
    expect_line verify-none "$tmp/err" "gapnet: error: $model: has no \"tests\" to verify (tools/export_pytorch.py records them)"
run verify-default 0 "$gapnet" verify "$src/models/fashion_gap.json"
run classify-verify 0 "$gapnet" classify --verify --top 1 "$src/data/samples/bag.png"

# quantize: the bundled model in bfloat16 keeps its recorded tests and proves itself with the tolerance
# it records; summary shows each layer's precision and the bytes per precision; bf16 is the default's
# only alternative so far.
if run quantize-bf16 0 "$gapnet" quantize "$src/models/fashion_gap.json" -o "$tmp/bf16.json" --precision bf16; then
    grep -qE "^$tmp/bf16.json: 5 layers' weights in bfloat16, " "$tmp/out" || { echo "FAIL quantize line"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -qE '^[0-9]+ recorded test\(s\): largest difference from the float32 outputs [0-9.e-]+; tolerance [0-9.e-]+$' "$tmp/out" || { echo "FAIL quantize tests line"; cat "$tmp/out"; failures=$((failures + 1)); }
    run quantize-verify 0 "$gapnet" verify "$tmp/bf16.json"
    run quantize-summary 0 "$gapnet" summary "$tmp/bf16.json" &&
        grep -qE '^ +0 +conv1 +conv2d .* bfloat16' "$tmp/out" &&
        grep -qE '^Parameter bytes +bfloat16 [0-9,]+, float32 [0-9,]+$' "$tmp/out" || { echo "FAIL quantize summary"; cat "$tmp/out"; failures=$((failures + 1)); }
    run quantize-classify 0 "$gapnet" classify --model "$tmp/bf16.json" --top 1 "$src/data/samples/bag.png" &&
        grep -q "Bag" "$tmp/out" || { echo "FAIL quantize classify"; cat "$tmp/out"; failures=$((failures + 1)); }
fi
run quantize-int8 2 "$gapnet" quantize "$src/models/fashion_gap.json" -o "$tmp/int8.json" &&
    expect_line quantize-int8 "$tmp/err" "gapnet: error: --precision int8 (the default) is not built yet: use --precision bf16 (see gapnet quantize --help)"
[ ! -e "$tmp/int8.json" ] || { echo "FAIL quantize-int8 wrote a file"; failures=$((failures + 1)); }

# heads: the textbook comparison, computed from sizes.
if run heads 0 "$gapnet" heads --input 7x7x64 --classes 10 --hidden 500; then
    grep -qE '^  dense 3136 -> 500 +1,568,000 +500 +1,568,500 +1,568,000$' "$tmp/out" || { echo "FAIL heads dense"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -qE '^  total +1,573,000 +510 +1,573,510 +1,573,000$' "$tmp/out" || { echo "FAIL heads flatten total"; failures=$((failures + 1)); }
    grep -qE '^  dense 64 -> 10 +640 +10 +650 +640$' "$tmp/out" || { echo "FAIL heads gap"; failures=$((failures + 1)); }
    # The all-convolutional head: the same 650 parameters, a 1x1 convolution at each of the 49 positions.
    grep -qE '^  conv 1x1 64 -> 10 +640 +10 +650 +31,360$' "$tmp/out" || { echo "FAIL heads all-conv"; failures=$((failures + 1)); }
fi
if run heads-json 0 "$gapnet" heads --input 7x7x1024 --classes 10 --json; then
    grep -q '"gap":{"reduction":"global_avg_pool2d","output":1024,"dense":\[{"in":1024,"out":10,"weights":10240,"biases":10,"parameters":10250,"macs":10240}\]' "$tmp/out" &&
    grep -q '"all_convolutional":{"conv1x1":\[{"in":1024,"out":10,"weights":10240,"biases":10,"parameters":10250,"macs":501760}\]' "$tmp/out" ||
        { echo "FAIL heads-json"; cat "$tmp/out"; failures=$((failures + 1)); }
fi
run heads-bad-input 2 "$gapnet" heads --input 7x7 --classes 10

# eval: the ten samples as IDX (raw and gzip) and as class folders. PyTorch's recorded probabilities
# (tests/golden/fashion_gap_samples.json) put 9 of 10 first (the shirt goes to T-shirt/top) and all
# 10 in the top five; the engine must agree.
default_model=$src/models/fashion_gap.json
datasets=$src/data/test-datasets
for d in idx/samples-images-idx3-ubyte idx-gz/samples-images-idx3-ubyte.gz; do
    if run "eval-$d" 0 "$gapnet" eval --model "$default_model" --dataset "$datasets/$d"; then
        expect_line "eval-$d" "$tmp/out" "Top-1 accuracy   90.00 %  (9 of 10)"
        expect_line "eval-$d" "$tmp/out" "Top-5 accuracy  100.00 %"
        grep -qE '^    6 +1 +0 +0 +0 +0 +0 +0 +0 +0 +0$' "$tmp/out" && grep -qE '^    0 +1 +0 +0 +0 +0 +0 +0 +0 +0 +0$' "$tmp/out" ||
            { echo "FAIL eval-$d confusion"; cat "$tmp/out"; failures=$((failures + 1)); }
    fi
done
if run eval-json 0 "$gapnet" eval --dataset "$datasets/idx/samples-images-idx3-ubyte" --limit 3 --json; then
    grep -q '"results":{"images":3,"unreadable":0,"top1":1.0,"top5":1.0,' "$tmp/out" || { echo "FAIL eval-json"; cat "$tmp/out"; failures=$((failures + 1)); }
fi
# A class folder with an unreadable image: a warning and a count, the rest evaluated, exit 1.
if run eval-folders 1 "$gapnet" eval --dataset "$datasets/folders"; then
    expect_line eval-folders "$tmp/out" "Top-1 accuracy   90.00 %  (9 of 10)"
    expect_line eval-folders "$tmp/err" "gapnet: warning: $datasets/folders/bag/broken.png: not an image gapnet can read (unknown image type) (skipped)"
    expect_line eval-folders "$tmp/err" "gapnet: warning: $datasets/folders: 1 of 11 images could not be read and were skipped"
fi
run eval-mismatch 1 "$gapnet" eval --dataset "$datasets/idx-mismatch/samples-images-idx3-ubyte" &&
    expect_line eval-mismatch "$tmp/err" "gapnet: error: $datasets/idx-mismatch/samples-labels-idx1-ubyte: has 9 labels for the 10 images of $datasets/idx-mismatch/samples-images-idx3-ubyte"
run eval-unknown-class 1 "$gapnet" eval --dataset "$datasets/folders-unknown-class" &&
    expect_line eval-unknown-class "$tmp/err" "gapnet: error: $datasets/folders-unknown-class: class folder 'hat' matches none of the model's labels (compared case-insensitively, punctuation and spaces as '_')"
run eval-missing 1 "$gapnet" eval --dataset "$tmp/nowhere" &&
    expect_line eval-missing "$tmp/err" "gapnet: error: $tmp/nowhere: does not exist"
run eval-not-idx 1 "$gapnet" eval --dataset "$images/gray.png" &&
    expect_line eval-not-idx "$tmp/err" "gapnet: error: $images/gray.png: not an IDX file (bad magic number)"
run eval-no-dataset 2 "$gapnet" eval

# compare: the bundled model against the hand-made one is refused only for a dataset it cannot map;
# side by side on the samples it reports both.
if run compare 0 "$gapnet" compare "$default_model" "$default_model" --dataset "$datasets/idx-gz/samples-images-idx3-ubyte.gz"; then
    grep -qE '^    in the head +650 +650$' "$tmp/out" || { echo "FAIL compare head"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -qE '^  top-1 accuracy +90.00 % +90.00 %$' "$tmp/out" || { echo "FAIL compare accuracy"; failures=$((failures + 1)); }
    expect_line compare "$tmp/out" "Both heads hold 650 parameters."
    expect_line compare "$tmp/out" "Top-1 accuracy: fashion_gap 90.00 %, fashion_gap 90.00 % (a difference of 0.00 points)."
fi
if run compare-json 0 "$gapnet" compare "$model" "$default_model" --json; then
    grep -q '"head_parameters":4,"file_bytes":' "$tmp/out" || { echo "FAIL compare-json"; cat "$tmp/out"; failures=$((failures + 1)); }
fi
run compare-bad 1 "$gapnet" compare "$model" "$tmp/none.json"
run compare-one 2 "$gapnet" compare "$model"
# compare with three models: a column each, and the first model set against each other one in words.
# tiny_graph's head (global_avg_pool2d -> softmax after its class convolution) holds no parameters.
if run compare-three 0 "$gapnet" compare "$default_model" "$src/models/fashion_flatten.json" "$src/tests/models/tiny_graph.json"; then
    grep -qE '^ +fashion_gap +fashion_flatten +tiny_graph$' "$tmp/out" || { echo "FAIL compare-three header"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -qE '^  parameters +66,410 +1,639,270 +241$' "$tmp/out" || { echo "FAIL compare-three parameters"; failures=$((failures + 1)); }
    grep -qE '^    in the backbone +65,760 +65,760 +241$' "$tmp/out" || { echo "FAIL compare-three backbone"; failures=$((failures + 1)); }
    grep -qE '^    in the head +650 +1,573,510 +0$' "$tmp/out" || { echo "FAIL compare-three head"; failures=$((failures + 1)); }
    expect_line compare-three "$tmp/out" "fashion_gap's head holds 2421x fewer parameters than fashion_flatten's (650 against 1,573,510); the whole model is 24.7x smaller."
    expect_line compare-three "$tmp/out" "tiny_graph's head holds no parameters, fashion_gap's 650; the whole model is 275.6x smaller."
    [ "$(grep -c '^Latency: fashion_gap takes ' "$tmp/out")" -eq 2 ] || { echo "FAIL compare-three latency sentences"; failures=$((failures + 1)); }
fi
if run compare-three-json 0 "$gapnet" compare "$model" "$src/tests/models/tiny_graph.json" "$default_model" --json; then
    [ "$(grep -o '"name":"[a-z_]*","parameters":[0-9]*,"backbone_parameters":[0-9]*,"head_parameters":[0-9]*' "$tmp/out" | tr '\n' ';')" = \
      '"name":"brightness","parameters":4,"backbone_parameters":0,"head_parameters":4;"name":"tiny_graph","parameters":241,"backbone_parameters":241,"head_parameters":0;"name":"fashion_gap","parameters":66410,"backbone_parameters":65760,"head_parameters":650;' ] ||
        { echo "FAIL compare-three-json"; cat "$tmp/out"; failures=$((failures + 1)); }
fi

# Standard input, odd file names, image limits.
if run stdin 0 "$gapnet" classify --model "$model" --top 1 --json - <"$images/gray.png"; then
    expect_line stdin "$tmp/out" '{"file":"-","top":[{"label":"bright","index":0,"probability":0.8523234}]}'
fi
cp "$images/gray.png" "$tmp/a name with spaces é.png"
cp "$images/gray.png" "$tmp/latin1-$(printf '\xe9').png"
if run odd-names 0 "$gapnet" classify --model "$model" --top 1 --json "$tmp/a name with spaces é.png" "$tmp/latin1-$(printf '\xe9').png"; then
    expect_line odd-names "$tmp/out" "{\"file\":\"$tmp/a name with spaces é.png\",\"top\":[{\"label\":\"bright\",\"index\":0,\"probability\":0.8523234}]}"
    # The Latin-1 byte, not UTF-8, is U+FFFD in the JSON text.
    expect_line odd-names "$tmp/out" "{\"file\":\"$tmp/latin1-�.png\",\"top\":[{\"label\":\"bright\",\"index\":0,\"probability\":0.8523234}]}"
fi
if run image-limit 1 "$gapnet" classify --model "$model" --max-image-side 1 "$images/gray.png"; then
    expect_line image-limit "$tmp/err" "gapnet: error: $images/gray.png: image is 2x2, a side beyond ImageLimits::max_side = 1; raise it with --max-image-side N"
fi
# A FIFO (as from process substitution) is read like a file.
mkfifo "$tmp/pipe"
cat "$images/gray.png" >"$tmp/pipe" &
if run fifo 0 "$gapnet" classify --model "$model" --top 1 "$tmp/pipe"; then
    expect_line fifo "$tmp/out" "   1  bright  0.8523"
fi
wait
run directory 1 "$gapnet" classify --model "$model" "$images" &&
    expect_line directory "$tmp/err" "gapnet: error: $images: is a directory, not a file"

# features: the preprocessed input of gray.png is its pixels / 255; the GAP output is their mean.
if run features-input 0 "$gapnet" features --model "$model" --layer input --json "$images/gray.png"; then
    expect_line features-input "$tmp/out" "{\"file\":\"$images/gray.png\",\"layer\":\"input\",\"shape\":[1,2,2],\"data\":[0.0,0.2509804,0.5019608,1.0]}"
fi
if run features-gap 0 "$gapnet" features --model "$model" --layer gap "$images/gray.png"; then
    expect_line features-gap "$tmp/out" "$images/gray.png: layer gap (global_avg_pool2d), shape 1: min 0.438235, max 0.438235, mean 0.438235"
fi
if run features-npy 0 "$gapnet" features --layer conv4 -o "$tmp/conv4.npy" "$src/data/samples/bag.png"; then
    expect_line features-npy "$tmp/out" "wrote $tmp/conv4.npy: layer conv4, shape 64x14x14, float32"
    "$gapnet" features --layer conv4 --json "$src/data/samples/bag.png" >"$tmp/conv4.json"
    /usr/bin/python3 -c "
import json, sys, numpy
a = numpy.load(sys.argv[1]); j = json.load(open(sys.argv[2]))
assert a.dtype == numpy.float32 and a.shape == (64, 14, 14), (a.dtype, a.shape)
assert numpy.array_equal(a.reshape(-1), numpy.array(j['data'], dtype=numpy.float32)), 'npy and json differ'
" "$tmp/conv4.npy" "$tmp/conv4.json" || { echo "FAIL features-npy: numpy.load"; failures=$((failures + 1)); }
fi
run features-unknown 1 "$gapnet" features --model "$model" --layer conv9 "$images/gray.png" &&
    expect_line features-unknown "$tmp/err" "gapnet: error: $model: has no layer named 'conv9' (its layers: input, gap, fc, softmax)"

# cam: a PNG with one panel per class; refused for a head without learned maps.
if run cam 0 "$gapnet" cam --top 2 -o "$tmp/cam.png" "$src/data/samples/sneaker.png"; then
    grep -q "^wrote $tmp/cam.png: Sneaker (" "$tmp/out" || { echo "FAIL cam output"; cat "$tmp/out"; failures=$((failures + 1)); }
    [ "$(head -c 8 "$tmp/cam.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || { echo "FAIL cam: not a PNG"; failures=$((failures + 1)); }
    # Two 224x224 panels side by side with a 4-pixel gap, a 22-pixel label strip below.
    /usr/bin/python3 -c "
import sys; from PIL import Image
im = Image.open(sys.argv[1]); assert im.size == (452, 246), im.size
" "$tmp/cam.png" || { echo "FAIL cam size"; failures=$((failures + 1)); }
fi
run cam-class 0 "$gapnet" cam --class bag -o "$tmp/cam-bag.png" "$src/data/samples/sneaker.png" &&
    grep -q "^wrote $tmp/cam-bag.png: Bag (" "$tmp/out" || { echo "FAIL cam-class"; failures=$((failures + 1)); }
run cam-bad-class 2 "$gapnet" cam --class hat "$src/data/samples/sneaker.png"
run cam-flatten 1 "$gapnet" cam --model "$src/models/fashion_flatten.json" -o "$tmp/x.png" "$src/data/samples/bag.png" &&
    grep -q "^gapnet: error: $src/models/fashion_flatten.json: this model has no global average pooling at the start of its head, so there is no class activation map" "$tmp/err" ||
    { echo "FAIL cam-flatten"; cat "$tmp/err"; failures=$((failures + 1)); }
run cam-refused 1 "$gapnet" cam --model "$model" -o "$tmp/x.png" "$images/gray.png" &&
    expect_line cam-refused "$tmp/err" "gapnet: error: $model: global_avg_pool2d reads the input itself: there are no learned feature maps to map"

# Usage errors: exit 2.
run no-images 2 "$gapnet" classify --model "$model"
run bad-top 2 "$gapnet" classify --model "$model" --top 0 "$images/gray.png"
run unknown-option 2 "$gapnet" classify --colour "$images/gray.png" &&
    expect_line unknown-option "$tmp/err" "gapnet: error: unknown option '--colour' (see gapnet classify --help)"
run bad-top-text 2 "$gapnet" classify --top=abc "$images/gray.png" &&
    expect_line bad-top-text "$tmp/err" "gapnet: error: --top 'abc': expected an integer from 1 to 2147483647 (see gapnet classify --help)"
run no-value 2 "$gapnet" summary "$model" --model-limit &&
    expect_line no-value "$tmp/err" "gapnet: error: --model-limit needs a value (see gapnet summary --help)"
run flag-value 2 "$gapnet" summary --json=yes "$model" &&
    expect_line flag-value "$tmp/err" "gapnet: error: --json takes no value (see gapnet summary --help)"
run extra-argument 2 "$gapnet" verify "$model" "$model" &&
    expect_line extra-argument "$tmp/err" "gapnet: error: unexpected argument '$model' (see gapnet verify --help)"
# After "--" everything is an argument, even what looks like an option.
run options-ended 1 "$gapnet" summary -- --json &&
    expect_line options-ended "$tmp/err" "gapnet: error: --json: cannot open: No such file or directory"
run unknown-command 2 "$gapnet" clasify
run no-command 2 "$gapnet"

# summary: per-layer table, totals, head.
if run summary 0 "$gapnet" summary "$model"; then
    grep -qE '^H +1 +fc +dense +2 +4 +2$' "$tmp/out" || { echo "FAIL summary row"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -q '^Total parameters   4$' "$tmp/out" || { echo "FAIL summary total"; failures=$((failures + 1)); }
fi
if run summary-json 0 "$gapnet" summary "$model" --json; then
    grep -q '"parameters":4,"parameter_bytes":{"float32":16},"macs":2,"backbone_parameters":0,"head":{"first_layer":"gap","path":"global_avg_pool2d -> dense -> softmax","kind":"gap_dense","parameters":4}}' "$tmp/out" &&
    grep -q '{"name":"fc","type":"dense","output_shape":\[2\],"parameters":4,"macs":2,"precision":"float32","parameter_bytes":16,"inputs":\["gap"\],"head":true}' "$tmp/out" ||
        { echo "FAIL summary json"; cat "$tmp/out"; failures=$((failures + 1)); }
fi

# A graph model (tests/models/tiny_graph.json): the inputs column, the all-convolutional head, its
# class activation map, and any node's output.
graph="$src/tests/models/tiny_graph.json"
if run summary-graph 0 "$gapnet" summary "$graph"; then
    grep -qE '^ +4 +res +add +4x6x6 +0 +0  bn1, stem_relu$' "$tmp/out" || { echo "FAIL summary-graph inputs"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -qE '^H +15 +gap +global_avg_pool2d +3 +0 +0  classes_act$' "$tmp/out" || { echo "FAIL summary-graph head"; failures=$((failures + 1)); }
    grep -q "^  head kind        all-convolutional: conv2d 'classes' gives one channel per class" "$tmp/out" ||
        { echo "FAIL summary-graph kind"; failures=$((failures + 1)); }
fi
run cam-graph 0 "$gapnet" cam --model "$graph" -o "$tmp/graph-cam.png" "$src/data/samples/bag.png" &&
    { [ -s "$tmp/graph-cam.png" ] || { echo "FAIL cam-graph: no PNG"; failures=$((failures + 1)); }; }
# The residual add's output: 4 channels of 6x6.
if run features-graph 0 "$gapnet" features --model "$graph" --layer res --json "$src/data/samples/bag.png"; then
    grep -q '"layer":"res","shape":\[4,6,6\]' "$tmp/out" || { echo "FAIL features-graph"; cat "$tmp/out"; failures=$((failures + 1)); }
fi

# The bundled default model on the bundled samples: every sample classified.
if run default-model 0 "$gapnet" classify --top 1 "$src"/data/samples/*.png; then
    n=$(grep -c '^   1  ' "$tmp/out")
    [ "$n" -eq 10 ] || { echo "FAIL default-model: $n predictions"; failures=$((failures + 1)); }
fi

# Batching keeps the order the files were given (a bad file in the middle of a batch too) and the
# rankings; probabilities may differ in the last digits (a batch of 1 is a matrix-vector product).
# Threads change nothing at all: byte-identical output on 1 and 2 threads.
samples=("$src"/data/samples/*.png)
mixed=("${samples[@]:0:2}" "$images/missing.png" "${samples[@]:2}")
strip_probabilities() { sed 's/"probability":[^}]*//g' "$1"; }
if run batch-1 1 "$gapnet" classify --json --top 3 --batch 1 --threads 1 "${mixed[@]}"; then
    mv "$tmp/out" "$tmp/one-by-one"
    if run batch-3 1 "$gapnet" classify --json --top 3 --batch 3 --threads 1 "${mixed[@]}"; then
        mv "$tmp/out" "$tmp/batched"
        [ "$(strip_probabilities "$tmp/one-by-one")" = "$(strip_probabilities "$tmp/batched")" ] ||
            { echo "FAIL batch: rankings differ"; diff "$tmp/one-by-one" "$tmp/batched"; failures=$((failures + 1)); }
        expect_lines batch-3 "$tmp/batched" 11
        sed -n 3p "$tmp/batched" | grep -q '"error"' || { echo "FAIL batch: the error is not the third line"; cat "$tmp/batched"; failures=$((failures + 1)); }
        if run threads-2 1 "$gapnet" classify --json --top 3 --batch 3 --threads 2 "${mixed[@]}"; then
            cmp -s "$tmp/batched" "$tmp/out" || { echo "FAIL threads: outputs differ"; diff "$tmp/batched" "$tmp/out"; failures=$((failures + 1)); }
        fi
    fi
fi

# bench: per-step figures and each convolution's kernel; --conv-algorithm forces one where it applies.
gap=$src/models/fashion_gap.json
if run bench-gemm 0 "$gapnet" bench --model "$gap" --iterations 2 --warmup 0 --threads 1 --conv-algorithm gemm --json; then
    n_conv=$(grep -o '"type":"conv2d[^"]*"' "$tmp/out" | wc -l)
    n_gemm=$(grep -o '"kernel":"gemm"' "$tmp/out" | wc -l)
    [ "$n_conv" -ge 1 ] && [ "$n_conv" -eq "$n_gemm" ] ||
        { echo "FAIL bench-gemm: $n_conv convolutions, $n_gemm on gemm"; cat "$tmp/out"; failures=$((failures + 1)); }
    grep -q '"fma_peak_gflops":[1-9]' "$tmp/out" || { echo "FAIL bench-gemm: no FMA peak"; failures=$((failures + 1)); }
fi
if run bench-bad-algorithm 2 "$gapnet" bench --model "$gap" --conv-algorithm fastest; then
    grep -q -- "--conv-algorithm: 'fastest' is not auto, gemm, winograd, direct, depthwise or blocked" "$tmp/err" ||
        { echo "FAIL bench-bad-algorithm message"; cat "$tmp/err"; failures=$((failures + 1)); }
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all CLI checks passed"
