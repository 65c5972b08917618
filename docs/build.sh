#!/usr/bin/env bash
# Build the HTML documentation into docs/_build/html.
#   docs/build.sh          warnings are printed, the build goes on
#   docs/build.sh -W       warnings are errors (what CI should run once the docstrings are clean)
#   docs/build.sh -W -n    ... and nitpicky: every cross-reference must resolve
# Needs the docs extra: pip install -e ".[docs]"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
strict=()
for arg in "$@"; do
    case "$arg" in
        -W) strict+=(-W --keep-going) ;;
        -n) strict+=(-n) ;;
        *) echo "usage: docs/build.sh [-W] [-n]" >&2; exit 2 ;;
    esac
done
export PYTHONPATH="$(dirname "$here")${PYTHONPATH:+:$PYTHONPATH}"
exec python -m sphinx -b html -j auto "${strict[@]}" "$here" "$here/_build/html"
