#!/usr/bin/env bash
# The main job: runs emotionsense over the demo clip made by scripts/setup and prints
# one readable line per window (default: one window per spoken utterance, with its
# transcript; pass properties to change that, e.g. window-mode=sliding).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clip=$("$root/scripts/make-demo-clip")
echo "Analysing $clip"
[ $# -gt 0 ] || set -- window-mode=utterance
"$root/pipelines/file.sh" "$clip" "$@" | "$root/pipelines/format-messages.sh"
