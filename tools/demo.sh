#!/usr/bin/env bash
# Classifies the bundled sample images with the bundled default model and shows each prediction
# beside the true class (the sample's file name).    usage: tools/demo.sh PATH/TO/gapnet
set -euo pipefail
gapnet=$1
cd "$(dirname "$0")/.."
printf '%-30s %-14s %-14s %s\n' "image" "true class" "predicted" "probability"
correct=0 total=0
# One JSON line per image: {"file":"...","top":[{"label":"...","index":N,"probability":P}]}
while IFS= read -r line; do
    file=$(sed -E 's/^\{"file":"([^"]*)".*/\1/' <<<"$line")
    label=$(sed -E 's/.*"label":"([^"]*)".*/\1/' <<<"$line")
    probability=$(sed -E 's/.*"probability":([0-9.e-]+).*/\1/' <<<"$line")
    truth=$(basename "$file" .png)
    # File names are labels in lower case with '/' and ' ' as '_' (T-shirt/top -> t-shirt_top).
    mark="wrong"
    [ "$(tr 'A-Z/ ' 'a-z__' <<<"$label")" = "$truth" ] && mark="ok" && correct=$((correct + 1))
    total=$((total + 1))
    printf '%-30s %-14s %-14s %.4f  %s\n' "$file" "$truth" "$label" "$probability" "$mark"
done < <("$gapnet" classify --top 1 --json data/samples/*.png)
echo "$correct of $total samples classified correctly (model: models/fashion_gap.json)"
