"""Turns `gst-launch-1.0 -m` lines of `emotion` messages into one readable line per
window; other lines pass unchanged."""

import re
import sys

FIELD = re.compile(r'([a-z-]+)=\((\w+)\)("(?:[^"\\]|\\.)*"|[^,;]+)')


def unescape(value: str) -> str:
    """GStreamer serialises strings quoted with backslash escapes."""
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


for line in sys.stdin:
    if "emotion, " not in line:
        sys.stdout.write(line)
        continue
    f = {k: v for k, _, v in FIELD.findall(line)}
    out = "window %3s  %7.2f - %7.2f s" % (f.get("index", "?"), int(f["start"]) / 1e9, int(f["end"]) / 1e9)
    if "frames" in f:
        out += "  frames %s" % f["frames"]
    if "audio-samples" in f:
        out += "  audio %s samples, rms %.3f" % (f["audio-samples"], float(f["audio-rms"]))
    for head in ("emotion", "sentiment"):
        if head in f:
            out += "  %s %s %.2f" % (head, unescape(f[head]), float(f.get(head + "-confidence", "nan")))
    if "branches" in f:
        out += "  faces %s  from %s" % (f.get("face-count", "0"), unescape(f["branches"]))
        flags = re.findall(r"flags=\(\w+\)<([^>]*)>", line)
        if flags and flags[0].strip():
            out += " [%s]" % ", ".join(x.strip() for x in flags[0].split(","))
    if "transcript" in f:
        out += '  "%s"' % unescape(f["transcript"])
    if int(f.get("windows-dropped", 0)):
        out += "  (dropped so far: %s)" % f["windows-dropped"]
    print(out, flush=True)
