#!/usr/bin/env bash
# Analyse a file or URI with emotionsense; prints one `emotion` message per window.
#   pipelines/file.sh clip.mp4 [emotionsense property=value ...]
#   pipelines/file.sh https://example.com/clip.webm window-length=3
# Works for files with video and audio, video only, or audio only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:?usage: pipelines/file.sh FILE|URI [property=value ...]}
shift
case "$src" in
  *://*) uri=$src ;;
  *) [ -e "$src" ] || { echo "no such file: $src" >&2; exit 1; }
     uri=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$src") ;;
esac
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$root/target/release}
gst-launch-1.0 -m \
  uridecodebin uri="$uri" name=d \
  emotionsense name=e "$@" ! fakesink \
  d. ! video/x-raw ! queue ! videoconvert ! e.video \
  d. ! audio/x-raw ! queue ! audioconvert ! audioresample ! e.audio \
  2>&1 | grep --line-buffered -E 'element "e" \(element\): emotion,|ERROR|erroneous pipeline|no element|WARNING: from element /GstPipeline:pipeline0/GstEmotionSense|Got EOS'
