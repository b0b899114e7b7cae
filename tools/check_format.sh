#!/bin/sh
# Checks every tracked C++ file against .clang-format (clang-format 14, Debian 12's) and every tracked
# Python file against black (pyproject.toml) and flake8 (.flake8); CI runs it through `make format`.
# With --fix, rewrites the files' layout in place instead (flake8's findings are left to fix by hand).
#   tools/check_format.sh [--fix]
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format.sh: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
command -v black >/dev/null || { echo "check_format.sh: black is not installed (apt-get install black)" >&2; exit 2; }
/usr/bin/python3 -m flake8 --version >/dev/null 2>&1 || { echo "check_format.sh: flake8 is not installed (apt-get install python3-flake8)" >&2; exit 2; }
cpp=$(git ls-files '*.cpp' '*.h')
python=$(git ls-files '*.py')
if [ "${1:-}" = "--fix" ]; then
    # shellcheck disable=SC2086
    clang-format -i $cpp
    # shellcheck disable=SC2086
    black -q $python
else
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $cpp || {
        echo "check_format.sh: the files above differ from .clang-format; tools/check_format.sh --fix rewrites them" >&2
        exit 1
    }
    # shellcheck disable=SC2086
    black -q --check $python || {
        echo "check_format.sh: black would reformat the files above; tools/check_format.sh --fix rewrites them" >&2
        exit 1
    }
    # shellcheck disable=SC2086
    /usr/bin/python3 -m flake8 $python || {
        echo "check_format.sh: flake8 found the problems above (fix them by hand)" >&2
        exit 1
    }
fi
