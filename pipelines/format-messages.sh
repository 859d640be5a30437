#!/usr/bin/env bash
# Turns `gst-launch-1.0 -m` lines of `emotion` messages into one readable line per
# window; other lines pass unchanged.
exec python3 -u -c '
import re, sys
field = re.compile(r"([a-z-]+)=\((\w+)\)([^,;]+)")
for line in sys.stdin:
    if "emotion, " not in line:
        sys.stdout.write(line)
        continue
    f = {k: v for k, _, v in field.findall(line)}
    out = "window %3s  %7.2f - %7.2f s" % (f.get("index", "?"), int(f["start"]) / 1e9, int(f["end"]) / 1e9)
    if "frames" in f:
        out += "  frames %s" % f["frames"]
    if "audio-samples" in f:
        out += "  audio %s samples, rms %.3f" % (f["audio-samples"], float(f["audio-rms"]))
    if int(f.get("windows-dropped", 0)):
        out += "  (dropped so far: %s)" % f["windows-dropped"]
    print(out)
'
