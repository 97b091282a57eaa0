#!/usr/bin/env bash
# Sets up a fresh machine: the Debian packages the demo and tests use, then .venv with the project.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the data set, and the headless browser the web page's tests drive.
packages=()
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${packages[@]}"
fi

PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# The matched torch/torchvision pair first (see ASIF.md: other pairs break `import timm`).
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q -e '.[dev]'
# img2dataset pulls the Python 3.6 `dataclasses` backport, which shadows the standard library.
.venv/bin/pip uninstall -q -y dataclasses
echo "setup done: .venv is ready"
