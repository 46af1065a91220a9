# Sourced by the other scripts: make .venv (once) and install nb2pipe into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
python -m pip install --quiet --disable-pip-version-check -e ".${NB2PIPE_EXTRAS:-}" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
