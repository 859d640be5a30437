#!/usr/bin/env bash
# Analyse and record in one pipeline: the video with the overlay (and EmotionMeta)
# and the audio, both taken from emotionsense (e.src and e.audio_src), into one MP4.
#   pipelines/record.sh clip.mp4 out.mp4 [property=value ...]
#   pipelines/record.sh rtsp://camera.local/stream out.mp4 [property=value ...]
# A file is analysed in step (each frame shows its own window); a camera runs until
# Ctrl-C (-e: the MP4 is finished properly).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:?usage: pipelines/record.sh FILE|URI OUT.mp4 [property=value ...]}
out=${2:?usage: pipelines/record.sh FILE|URI OUT.mp4 [property=value ...]}
shift 2
export GST_PLUGIN_PATH=${GST_PLUGIN_PATH:-$root/target/release}
mux="mp4mux name=mux ! filesink location=$out"
# x264enc tune=zerolatency: an encoder that holds a second of frames or more (the
# default lookahead) would need the audio queue to hold as much.
sense() {  # the element, its video and its audio encoded
  echo "emotionsense name=e overlay=true $PROPS ! queue ! videoconvert ! x264enc tune=zerolatency ! mux.
    e.audio_src ! queue ! audioconvert ! avenc_aac ! mux."
}
PROPS="$*"
case "$src" in
  rtsp://*)
    # shellcheck disable=SC2086
    exec gst-launch-1.0 -e $mux \
      rtspsrc location="$src" name=r latency=200 \
      r. ! application/x-rtp,media=video ! decodebin ! videoconvert ! queue ! e.video \
      r. ! application/x-rtp,media=audio ! decodebin ! queue ! e.audio \
      $(sense) ;;
  *://*) uri=$src ;;
  *) [ -e "$src" ] || { echo "no such file: $src" >&2; exit 1; }
     uri=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$src") ;;
esac
# shellcheck disable=SC2086
exec gst-launch-1.0 -e $mux \
  uridecodebin uri="$uri" name=d \
  d. ! video/x-raw ! queue ! videoconvert ! e.video \
  d. ! audio/x-raw ! queue ! e.audio \
  $(sense)
