#!/usr/bin/env bash
# The installed package as a program outside this tree sees it: installs the build into a temporary
# prefix, builds examples/classify against it with find_package(gapnet) (CMake) and with pkg-config,
# and runs both, and the installed gapnet program, on a sample image with the installed default
# model: each must name the bag.
#   tests/install_test.sh BUILD_DIR SOURCE_DIR CMAKE CXX
set -euo pipefail
build=$1 source=$2 cmake=$3 cxx=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log"
echo "installed into a temporary prefix:"
(cd "$prefix" && find . -type f | sort | sed 's|^\./|  |')

model=$prefix/share/gapnet/models/fashion_gap.json
image=$source/data/samples/bag.png

# The program's first line must be the bag, as the most probable class.
check() {  # NAME OUTPUT
    echo "$1:"
    echo "$2" | sed 's/^/  /'
    if [[ "$2" != Bag\ * ]]; then
        echo "FAIL: $1 does not name Bag first" >&2
        exit 1
    fi
}

"$cmake" -S "$source/examples/classify" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" ||
    { cat "$work/configure.log"; exit 1; }
"$cmake" --build "$work/cmake-build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
check "find_package(gapnet): classify $(basename "$model") $(basename "$image")" \
    "$("$work/cmake-build/classify" "$model" "$image")"

export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name gapnet.pc)")
# shellcheck disable=SC2046  # pkg-config's flags are separate words
"$cxx" -std=c++17 -o "$work/classify-pc" "$source/examples/classify/classify.cpp" $(pkg-config --cflags --libs gapnet)
check "pkg-config: classify $(basename "$model") $(basename "$image")" \
    "$(LD_LIBRARY_PATH=$(pkg-config --variable=libdir gapnet) "$work/classify-pc" "$model" "$image")"
# The installed program, with its installed default model.
check "installed gapnet classify $(basename "$image")" "$("$prefix/bin/gapnet" classify "$image" | sed -n '2,4s/^ *[0-9]*  //p')"
echo "install test passed"
