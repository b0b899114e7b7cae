#!/bin/sh
# Checks every tracked C++ file against .clang-format (clang-format 14, Debian 12's); CI runs it
# through `make format`. With --fix, rewrites the files in place instead.
#   tools/check_format.sh [--fix]
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format.sh: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
files=$(git ls-files '*.cpp' '*.h')
if [ "${1:-}" = "--fix" ]; then
    # shellcheck disable=SC2086
    clang-format -i $files
else
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $files || {
        echo "check_format.sh: the files above differ from .clang-format; tools/check_format.sh --fix rewrites them" >&2
        exit 1
    }
fi
