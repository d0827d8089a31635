#!/bin/sh
# Runs mutmut on python/lpc/patch.py and python/lpc/symbols.py (see setup.cfg
# and docs/testing.md). Usage: tools/mutmut.sh [mutmut arguments]; without
# arguments: `mutmut run --max-children 1`, then the results. The staging
# directory .mutmut/ keeps mutmut's cache between runs: delete it to start over.
# Needs the editable install (`pip install -e '.[test]'`) so that the compiled
# lpc._core sits in python/lpc, and `pip install mutmut` (3.x).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
stage="$root/.mutmut"
mkdir -p "$stage/src"
# Fresh copies of the package (with its compiled core), the tests and the configs.
rm -rf "$stage/src/lpc" "$stage/tests"
cp -a "$root/python/lpc" "$stage/src/lpc"
cp -a "$root/tests" "$stage/tests"
cp "$root/setup.cfg" "$root/pyproject.toml" "$stage/"
cd "$stage"
if [ "$#" -eq 0 ]; then
    mutmut run --max-children 1
    mutmut results
else
    mutmut "$@"
fi
