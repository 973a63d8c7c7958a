#!/usr/bin/env bash
# Runs one of the reference scripts in a Python environment pinned by requirements.txt.
#
#   scripts/reference/run.sh make_marian_fixtures.py [args...]
#
# Uses $PYTHON if set (an interpreter that already has the pinned packages); otherwise creates
# (once) and uses a venv at $POLYBRIEF_REF_VENV (default ~/.cache/polybrief/refvenv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="${1:?usage: run.sh <script.py> [args...]}"
shift
if [[ -z "${PYTHON:-}" ]]; then
    venv="${POLYBRIEF_REF_VENV:-$HOME/.cache/polybrief/refvenv}"
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --upgrade pip >&2
        if ! command -v nvidia-smi >/dev/null 2>&1; then
            # CPU-only machine: the CPU wheel is a fraction of the CUDA one's size.
            "$venv/bin/pip" install --index-url https://download.pytorch.org/whl/cpu \
                "$(grep -E '^torch==' "$here/requirements.txt")" >&2
        fi
        "$venv/bin/pip" install -r "$here/requirements.txt" >&2
    fi
    PYTHON="$venv/bin/python"
fi
exec "$PYTHON" "$here/$script" "$@"
