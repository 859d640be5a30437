#!/usr/bin/env bash
# Live analysis of an RTSP camera (IP or robot camera) with its audio track.
#   pipelines/rtsp.sh rtsp://user:pass@camera.local:554/stream [property=value ...]
# Both streams are linked explicitly: a plain `rtspsrc ! decodebin` would link only
# one of them and silently drop the audio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
url=${1:?usage: pipelines/rtsp.sh rtsp://HOST[:PORT]/PATH [property=value ...]}
shift
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$root/target/release}
gst-launch-1.0 -m -e \
  rtspsrc location="$url" name=r latency=200 \
  r. ! application/x-rtp,media=video ! decodebin ! videoconvert ! queue ! e.video \
  r. ! application/x-rtp,media=audio ! decodebin ! audioconvert ! audioresample ! queue ! e.audio \
  emotionsense name=e "$@" ! fakesink \
  2>&1 | grep --line-buffered -E 'emotion,|ERROR|WARNING'
