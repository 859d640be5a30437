#!/usr/bin/env bash
# Live analysis of a V4L2 webcam (and the default microphone) with the default bundle,
# shown in a window with the overlay (labels, probability bars, face boxes).
#   pipelines/webcam.sh [/dev/video0]         video + microphone
#   AUDIO=0 pipelines/webcam.sh /dev/video0   video only
# Live input: emotionsense never blocks the camera; when analysis is slower than real
# time it drops whole windows and posts a warning.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
device=${1:-/dev/video0}
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$root/target/release}
audio=()
if [ "${AUDIO:-1}" != 0 ]; then
  audio=(autoaudiosrc ! audioconvert ! audioresample ! queue ! e.audio)
fi
gst-launch-1.0 -m -e \
  v4l2src device="$device" ! videoconvert ! queue ! e.video \
  "${audio[@]}" \
  emotionsense name=e bundle="${BUNDLE:-default}" overlay=true ! videoconvert ! autovideosink sync=false \
  2>&1 | grep --line-buffered -E 'emotion,|ERROR|WARNING'
