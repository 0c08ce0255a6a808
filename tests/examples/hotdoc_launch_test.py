#!/usr/bin/python3
"""Runs the gst-launch-1.0 lines of the elements' hotdoc comments.

Usage: hotdoc_launch_test.py WORKDIR SOURCE.cpp [SOURCE.cpp ...]

Extracts every `|[ ... ]|` block that contains `gst-launch-1.0` from the
source files (each file must have at least one: extraction finding nothing
fails the test), makes it runnable here and runs it with a timeout:
  - model-file=ANY        -> the fixture model $SAM3_FIXTURES_DIR/sam3/tiny-a/checkpoint.pt
  - filesrc location=*.png / *.jpg -> the fixture image tiny-a/img0.png
  - filesrc location=OTHER (a video) -> a 10-frame 320x240 H.264 MP4 made
                                        here with videotestsrc + x264enc
  - filesink location=F   -> WORKDIR/<n>-<basename F>
  - display sinks (autovideosink, xvimagesink, ximagesink, glimagesink,
    waylandsink) -> fakesink
  - videotestsrc without num-buffers -> num-buffers=10
Each line must exit 0, post no error, and write a non-empty output file
where it has a filesink (a .png output must be a PNG).
"""
import os
import re
import shlex
import subprocess
import sys

TIMEOUT_S = 120
DISPLAY_SINKS = ("autovideosink", "xvimagesink", "ximagesink", "glimagesink", "waylandsink")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def launch_lines(path):
    """The gst-launch-1.0 commands of the |[ ]| blocks in a file's comments."""
    text = open(path, encoding="utf-8").read()
    lines = []
    for block in re.findall(r"\|\[(.*?)\]\|", text, flags=re.S):
        # drop the comment decoration (" * ") and join continuation lines
        body = "\n".join(re.sub(r"^\s*\*? ?", "", ln) for ln in block.splitlines())
        body = re.sub(r"\\\s*\n", " ", body)
        for ln in body.splitlines():
            ln = ln.strip()
            if ln.startswith("gst-launch-1.0"):
                lines.append(ln)
    return lines


def make_video(path):
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "pattern=ball", "num-buffers=10", "!",
                    "video/x-raw,width=320,height=240,framerate=30/1", "!", "videoconvert", "!",
                    "x264enc", "speed-preset=ultrafast", "!", "mp4mux", "!",
                    "filesink", "location=" + path], check=True, timeout=TIMEOUT_S)


def adapt(line, n, workdir, fixtures, video):
    """Returns (argv for gst-launch-1.0, output files expected)."""
    tokens = shlex.split(line)
    assert tokens[0] == "gst-launch-1.0"
    out, outputs, prev = [], [], None
    for tok in tokens[1:]:
        if tok.startswith("model-file="):
            tok = "model-file=" + os.path.join(fixtures, "sam3", "tiny-a", "checkpoint.pt")
        elif tok.startswith("location=") and prev == "filesrc":
            name = tok.split("=", 1)[1]
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                tok = "location=" + os.path.join(fixtures, "sam3", "tiny-a", "img0.png")
            else:
                tok = "location=" + video
        elif tok.startswith("location=") and prev == "filesink":
            dest = os.path.join(workdir, "%d-%s" % (n, os.path.basename(tok.split("=", 1)[1])))
            if os.path.exists(dest):
                os.unlink(dest)
            outputs.append(dest)
            tok = "location=" + dest
        elif tok in DISPLAY_SINKS:
            tok = "fakesink"
        out.append(tok)
        if tok not in ("!",) and "=" not in tok:
            prev = tok  # the last element name
    # an endless test source gets an end
    for i, tok in enumerate(out):
        if tok == "videotestsrc":
            j = i + 1
            while j < len(out) and out[j] != "!" and not out[j].startswith("num-buffers="):
                j += 1
            if j == len(out) or out[j] == "!":
                out.insert(i + 1, "num-buffers=10")
    return out, outputs


def main():
    if len(sys.argv) < 3:
        fail("usage: hotdoc_launch_test.py WORKDIR SOURCE.cpp [SOURCE.cpp ...]")
    workdir = sys.argv[1]
    fixtures = os.environ.get("SAM3_FIXTURES_DIR")
    if not fixtures or not os.path.isdir(fixtures):
        fail("SAM3_FIXTURES_DIR is not set or not a folder: %r" % fixtures)
    os.makedirs(workdir, exist_ok=True)
    video = os.path.join(workdir, "input.mp4")
    runs = 0
    for src in sys.argv[2:]:
        lines = launch_lines(src)
        if not lines:
            fail("%s: no |[ gst-launch-1.0 ... ]| line found in its comments" % src)
        for line in lines:
            runs += 1
            print("%s:\n  %s" % (os.path.basename(src), line))
            argv, outputs = adapt(line, runs, workdir, fixtures, video)
            if any(t.startswith("location=" + video) for t in argv) and not os.path.exists(video):
                make_video(video)
            cmd = ["gst-launch-1.0", "-q"] + argv
            print("  ran as: " + " ".join(shlex.quote(t) for t in cmd))
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                fail("timed out after %d s: %s" % (TIMEOUT_S, line))
            if r.stdout.strip():
                print("  " + r.stdout.strip().replace("\n", "\n  "))
            if r.returncode != 0 or "ERROR" in r.stdout:
                fail("exit status %d: %s" % (r.returncode, line))
            for f in outputs:
                if not os.path.isfile(f) or os.path.getsize(f) == 0:
                    fail("no output file %s from: %s" % (f, line))
                if f.endswith(".png"):
                    with open(f, "rb") as fh:
                        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
                            fail("%s is not a PNG" % f)
                print("  wrote %s (%d bytes)" % (f, os.path.getsize(f)))
    print("OK: %d launch lines from %d files" % (runs, len(sys.argv) - 2))


if __name__ == "__main__":
    main()
