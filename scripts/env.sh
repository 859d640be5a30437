# Shared settings for the project's scripts (sourced, not run).
# Heavy downloads and builds live outside the clone, keyed by version.

GST_EMOTION_CACHE=${GST_EMOTION_CACHE:-$HOME/.cache/gst-emotion}
TORCH_VERSION=2.13.0
PYTHON=${PYTHON:-python3}
VENV=$GST_EMOTION_CACHE/venv-torch-$TORCH_VERSION
# libtorch from PyPI's torch wheel (tch 0.26.0 needs exactly libtorch 2.13.0).
export LIBTORCH="$VENV/lib/python3.11/site-packages/torch"
# whisper.cpp: portable binaries, no -march=native.
export GGML_NATIVE=OFF
MEDIA_DIR=$GST_EMOTION_CACHE/media
