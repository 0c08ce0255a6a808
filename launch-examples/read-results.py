#!/usr/bin/python3
"""Reads sam3segment's results from Python through the "Sam3Result" custom meta.

Shows: PyGObject on GStreamer 1.22 cannot iterate a buffer's metas nor read
GstSam3MaskMeta (a C struct), but it can read the Sam3Result GstCustomMeta
that sam3segment attaches next to it:

    s = buf.get_custom_meta("Sam3Result").get_structure()
    s.get_value("num-objects"); ok, box = s.get_array("object-0-box")

(s.get_array, not s.get_value, for the GstValueArray boxes: see
gst-plugin/meta/gstsam3maskmeta.h). The pipeline segments a still image
(one box object + one point object) and prints per frame the objects found.

Run (system python3 with python3-gi and gir1.2-gstreamer-1.0, not a venv):
    /usr/bin/python3 launch-examples/read-results.py [--image IMG.png]
        [--num-buffers N] [--boxes "<<x0,y0,x1,y1>>"] [--points "<<x,y,1>>"]
Environment: SAM3_MODEL (default: sam3segment's default model-file, the bundled
model trained on synthetic scenes), SAM3_BUILD_DIR (default build).
Exit status 0 when the pipeline ran to EOS, 1 on an error message.
"""
import argparse
import os
import sys
import warnings

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def abs_path(p):
    return p if os.path.isabs(p) else os.path.join(root, p)


# Set up the environment before Gst.init() (GST_PLUGIN_PATH) and before
# LibTorch's libgomp is loaded (OMP_WAIT_POLICY, docs/elements.md).
build = abs_path(os.environ.get("SAM3_BUILD_DIR", "build"))
os.environ["GST_PLUGIN_PATH"] = os.pathsep.join(
    [os.path.join(build, "gst-plugin")] +
    ([os.environ["GST_PLUGIN_PATH"]] if os.environ.get("GST_PLUGIN_PATH") else []))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = os.environ.get("SAM3_MODEL")
    ap.add_argument("--model", default=abs_path(model) if model else None,
                    help="checkpoint (default: the element's bundled model)")
    ap.add_argument("--image", default=abs_path("../shared/fixtures/sam3/tiny-a/img0.png"))
    ap.add_argument("--num-buffers", type=int, default=3)
    ap.add_argument("--boxes", default="<<264,54,408,162>>")
    ap.add_argument("--points", default="<<144,126,1>>")
    args = ap.parse_args()

    Gst.init(None)
    pipe = Gst.parse_launch(
        "filesrc name=src ! pngdec ! videoconvert ! imagefreeze name=freeze ! "
        "sam3segment name=seg ! appsink name=sink sync=false")
    pipe.get_by_name("src").set_property("location", args.image)
    pipe.get_by_name("freeze").set_property("num-buffers", args.num_buffers)
    seg = pipe.get_by_name("seg")
    if args.model:
        seg.set_property("model-file", args.model)
    # boxes / points are GstValueArray properties: set them from their string form
    Gst.util_set_object_arg(seg, "boxes", args.boxes)
    Gst.util_set_object_arg(seg, "points", args.points)
    sink = pipe.get_by_name("sink")

    if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
        print("error: cannot start: %s" % (msg.parse_error()[0].message if msg else "?"),
              file=sys.stderr)
        pipe.set_state(Gst.State.NULL)
        return 1
    frame = 0
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:  # EOS or error
            break
        buf = sample.get_buffer()
        meta = buf.get_custom_meta("Sam3Result")
        if meta is None:
            print("frame %d: no Sam3Result (no prompt gave a mask)" % frame)
        else:
            s = meta.get_structure()
            n = s.get_value("num-objects")
            print("frame %d: num-objects %d (%dx%d)" % (
                frame, n, s.get_value("frame-width"), s.get_value("frame-height")))
            for i in range(n):
                ok, box = s.get_array("object-%d-box" % i)
                if not ok:
                    print("error: object-%d-box is not an array" % i, file=sys.stderr)
                    return 1
                with warnings.catch_warnings():  # GValueArray.get_nth: deprecated in
                    warnings.simplefilter("ignore", DeprecationWarning)  # GLib, no other way
                    x, y, w, h = (box.get_nth(k) for k in range(4))
                print("  object %d: id %d source %s box %d,%d %dx%d iou %.3f stale %s" % (
                    i, s.get_value("object-%d-id" % i), s.get_value("object-%d-source" % i),
                    x, y, w, h, s.get_value("object-%d-iou" % i),
                    s.get_value("object-%d-stale" % i)))
        frame += 1
    err = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    if err is not None:
        e, dbg = err.parse_error()
        print("error: %s (%s)" % (e.message, dbg), file=sys.stderr)
        return 1
    print("%d frames" % frame)
    return 0


if __name__ == "__main__":
    rc = main()
    Gst.deinit()  # lets GST_TRACERS=leaks report what is still alive (tests)
    sys.exit(rc)
