#!/usr/bin/env bash
# The main job: runs emotionsense with the default bundle over the demo clip made by
# scripts/setup and prints one readable line per window (default: one window per
# spoken utterance, with its transcript, faces and the fused emotion and sentiment;
# pass properties to change that, e.g. window-mode=sliding or bundle=/other/bundle).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
clip=$("$root/scripts/make-demo-clip")
echo "Analysing $clip"
[ $# -gt 0 ] || set -- window-mode=utterance bundle=default
"$root/pipelines/file.sh" "$clip" "$@" | "$root/pipelines/format-messages.sh"
