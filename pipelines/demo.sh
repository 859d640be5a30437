#!/usr/bin/env bash
# The main job: runs emotionsense over the demo clip made by scripts/setup and prints
# one readable line per window.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clip=$("$root/scripts/make-demo-clip")
echo "Analysing $clip"
"$root/pipelines/file.sh" "$clip" "$@" | "$root/pipelines/format-messages.sh"
