#!/usr/bin/env bash
# Turns `gst-launch-1.0 -m` lines of `emotion` messages into one readable line per
# window; other lines pass unchanged.
exec python3 -u "$(dirname "$0")/format_messages.py"
