#!/bin/sh
# Download every pinned distribution of requirements.lock (hash-checked) into a directory, so
# that the container image (Containerfile) and air-gapped installs need no index:
#
#     scripts/wheelhouse.sh [DIR]          # default: ./wheelhouse
#     pip install --no-index --find-links DIR --require-hashes -r requirements.lock
#
# Binary wheels only (no compiler in the image). The wheels are for this machine's Python and
# platform: run it with the Python the image uses (PYTHON=python3.11; the default base image
# python:3.11-slim matches the lock's Python 3.11), or pass pip's --python-version/--platform
# through PIP_DOWNLOAD_ARGS for another target.
set -eu
cd "$(dirname "$0")/.."
DIR=${1:-wheelhouse}
PYTHON=${PYTHON:-python3}
mkdir -p "$DIR"
# shellcheck disable=SC2086 # PIP_DOWNLOAD_ARGS is a list of words
"$PYTHON" -m pip download --disable-pip-version-check --quiet --require-hashes \
    --only-binary=:all: --no-deps ${PIP_DOWNLOAD_ARGS:-} -r requirements.lock -d "$DIR"
echo "wheelhouse: $(find "$DIR" -name '*.whl' | wc -l) wheels in $DIR"
