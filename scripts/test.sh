#!/usr/bin/env bash
# Install the test tools and run every test. Browser tests need /usr/bin/chromium
# (Debian: apt-get install -y chromium); with NNVIZ_REQUIRE_BROWSER=1 they fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements-dev.txt
python3 -m ruff check .
python3 -m pytest -q -p no:cacheprovider "$@"
