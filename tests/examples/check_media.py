#!/usr/bin/python3
"""Checks the files written by the launch examples (meson suite 'examples').

  check_media.py png OUT.png IN.png WIDTH HEIGHT [--region x0,y0,x1,y1]
      OUT decodes to WIDTH x HEIGHT and differs from IN (the overlay drew):
      at least 0.5 % of the pixels changed, and some inside --region.
  check_media.py video OUT FRAMES WIDTH HEIGHT [--differs-from IN]
      OUT decodes (decodebin) to exactly FRAMES frames of WIDTH x HEIGHT;
      with IN (same size and frame count): in every frame at least 0.5 % of
      the pixels differ by more than 48 in some channel (the overlay drew;
      lossy coding alone stays far below that).

Decoding goes through GStreamer (PyGObject), so no imaging module is needed.
Exits 1 with a message on the first failed check.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def decode(path):
    """Returns (width, height, [RGB frame bytes, stride-free]) of a file."""
    pipe = Gst.parse_launch(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! "
        "appsink name=sink sync=false")
    pipe.get_by_name("src").set_property("location", path)
    sink = pipe.get_by_name("sink")
    frames, size = [], None
    pipe.set_state(Gst.State.PLAYING)
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        s = sample.get_caps().get_structure(0)
        w, h = s.get_value("width"), s.get_value("height")
        size = (w, h)
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            fail("cannot map a frame of %s" % path)
        stride = (w * 3 + 3) // 4 * 4
        data = bytes(info.data)
        buf.unmap(info)
        frames.append(b"".join(data[y * stride:y * stride + w * 3] for y in range(h)))
    bus = pipe.get_bus()
    err = bus.pop_filtered(Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    if err is not None:
        e, dbg = err.parse_error()
        fail("decoding %s: %s (%s)" % (path, e.message, dbg))
    if size is None:
        fail("%s: no frame decoded" % path)
    return size[0], size[1], frames


def check_png(out, inp, width, height, region):
    w, h, frames = decode(out)
    if (w, h) != (width, height):
        fail("%s is %dx%d, expected %dx%d" % (out, w, h, width, height))
    if len(frames) != 1:
        fail("%s: %d frames, expected 1" % (out, len(frames)))
    iw, ih, iframes = decode(inp)
    if (iw, ih) != (w, h):
        fail("input %s is %dx%d, output %dx%d" % (inp, iw, ih, w, h))
    a, b = frames[0], iframes[0]
    changed = [a[i * 3:i * 3 + 3] != b[i * 3:i * 3 + 3] for i in range(w * h)]
    n = sum(changed)
    print("%s: %dx%d, %d of %d pixels differ from %s" % (out, w, h, n, w * h, inp))
    if n < 0.005 * w * h:
        fail("the overlay drew (almost) nothing: %d changed pixels" % n)
    if region:
        x0, y0, x1, y1 = region
        inside = sum(changed[y * w + x] for y in range(y0, y1) for x in range(x0, x1))
        print("  %d changed pixels inside %s" % (inside, region))
        if inside == 0:
            fail("nothing drawn inside the prompt box %s" % (region,))


def check_video(out, nframes, width, height, ref):
    w, h, frames = decode(out)
    print("%s: %d frames of %dx%d" % (out, len(frames), w, h))
    if (w, h) != (width, height):
        fail("%s is %dx%d, expected %dx%d" % (out, w, h, width, height))
    if len(frames) != nframes:
        fail("%s has %d frames, expected %d" % (out, len(frames), nframes))
    if ref:
        rw, rh, rframes = decode(ref)
        if (rw, rh, len(rframes)) != (w, h, len(frames)):
            fail("%s: %d frames of %dx%d, output %d of %dx%d"
                 % (ref, len(rframes), rw, rh, len(frames), w, h))
        for k, (a, b) in enumerate(zip(frames, rframes)):
            n = sum(max(abs(a[i] - b[i]), abs(a[i + 1] - b[i + 1]), abs(a[i + 2] - b[i + 2])) > 48
                    for i in range(0, w * h * 3, 3))
            if n < 0.005 * w * h:
                fail("frame %d: only %d pixels differ clearly from %s" % (k, n, ref))
        print("  every frame differs clearly from %s" % ref)


def main(argv):
    Gst.init(None)
    if len(argv) >= 6 and argv[1] == "png":
        region = None
        if len(argv) == 8 and argv[6] == "--region":
            region = tuple(int(v) for v in argv[7].split(","))
        elif len(argv) != 6:
            fail("usage: " + __doc__)
        check_png(argv[2], argv[3], int(argv[4]), int(argv[5]), region)
    elif len(argv) in (6, 8) and argv[1] == "video":
        ref = None
        if len(argv) == 8:
            if argv[6] != "--differs-from":
                fail("usage: " + __doc__)
            ref = argv[7]
        check_video(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), ref)
    else:
        fail("usage: " + __doc__)
    print("OK")


if __name__ == "__main__":
    main(sys.argv)
