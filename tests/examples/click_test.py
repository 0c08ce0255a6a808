#!/usr/bin/python3
"""Clicks into launch-examples/click-to-segment.sh's pipeline.

Takes the pipeline description from `click-to-segment.sh --print-pipeline`
(the sink replaced by a fakesink), runs it and, like a video window would,
sends GstNavigation mouse-button-press events to the sink from the main
loop. Checks, from the Sam3Result meta of the frames reaching the sink:
  1. before any click: no object from the navigation source;
  2. after a left click at (144,126): an object with source "navigation" and
     id >= 1000 appears within 60 frames of the click;
  3. after a right click (background point): still exactly that one
     navigation object, same id (points join the clicked object);
  4. after a middle click: the navigation object is gone within 60 frames.
Usage: click_test.py CLICK_SCRIPT   (environment as in the meson test)
Exits 1 on the first failed check or after 90 s.
"""
import os
import subprocess
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

LIMIT_FRAMES = 60


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def nav_objects(buf):
    """[(id, source)] of the navigation objects in a buffer's Sam3Result."""
    meta = buf.get_custom_meta("Sam3Result")
    if meta is None:
        return []
    s = meta.get_structure()
    out = []
    for i in range(s.get_value("num-objects")):
        src = s.get_value("object-%d-source" % i)
        if src == "navigation":
            out.append(s.get_value("object-%d-id" % i))
    return out


def main():
    if len(sys.argv) != 2:
        fail("usage: click_test.py CLICK_SCRIPT")
    # sync=true: frames at 30/s as in a window (the clicks, sent from the main
    # loop, land within a frame or two)
    env = dict(os.environ, SAM3_SINK="fakesink name=sink sync=true", SAM3_NUM_BUFFERS="-1")
    desc = subprocess.run([sys.argv[1], "--print-pipeline"], env=env, check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()
    print("pipeline:", desc)
    # the script's GST_PLUGIN_PATH / OMP_WAIT_POLICY come from the test env here
    Gst.init(None)
    pipe = Gst.parse_launch(desc)
    sink = pipe.get_by_name("sink")
    loop = GLib.MainLoop()
    st = {"phase": 0, "frames": 0, "since": 0, "id": None, "error": None}

    def click(button, x, y):
        ev = GstVideo.Navigation.event_new_mouse_button_press(
            button, float(x), float(y), GstVideo.NavigationModifierType.NONE)
        print("frame %d: click button %d at (%d,%d)" % (st["frames"], button, x, y))
        st["since"] = st["frames"]  # frames are counted from the click on
        if not sink.send_event(ev):
            st["error"] = "the navigation event was not handled upstream"
            loop.quit()
        return False

    def finish(error=None):
        st["error"] = error
        loop.quit()
        return False

    def on_buffer(pad, info):
        # streaming thread: observe, and hand actions to the main loop
        n = st["frames"]
        st["frames"] += 1
        objs = nav_objects(info.get_buffer())
        ph = st["phase"]
        if ph == 0:  # no clicks yet
            if objs:
                GLib.idle_add(finish, "navigation object %s before any click" % objs)
            elif n == 3:
                st["phase"], st["since"] = 1, None
                GLib.idle_add(click, 1, 144, 126)
        elif ph == 1:  # waiting for the left-click object
            if len(objs) == 1 and objs[0] >= 1000:
                print("frame %d: navigation object %d" % (n, objs[0]))
                st["phase"], st["since"], st["id"] = 2, None, objs[0]
                GLib.idle_add(click, 3, 400, 300)
            elif len(objs) > 1 or (objs and objs[0] < 1000):
                GLib.idle_add(finish, "unexpected navigation objects %s" % objs)
            elif st["since"] is not None and n - st["since"] > LIMIT_FRAMES:
                GLib.idle_add(finish, "no navigation object %d frames after the left click"
                              % LIMIT_FRAMES)
        elif ph == 2:  # right click added a point to the same object
            if objs != [st["id"]]:
                GLib.idle_add(finish, "after the right click: navigation objects %s, "
                              "expected [%d]" % (objs, st["id"]))
            elif st["since"] is not None and n - st["since"] >= 10:
                st["phase"], st["since"] = 3, None
                GLib.idle_add(click, 2, 10, 10)
        elif ph == 3:  # middle click clears it
            if not objs:
                print("frame %d: navigation object cleared" % n)
                st["phase"] = 4
                GLib.idle_add(finish)
            elif st["since"] is not None and n - st["since"] > LIMIT_FRAMES:
                GLib.idle_add(finish, "navigation object still there %d frames after the "
                              "middle click" % LIMIT_FRAMES)
        return Gst.PadProbeReturn.OK

    sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            e, dbg = msg.parse_error()
            finish("error from %s: %s (%s)" % (msg.src.get_name(), e.message, dbg))
        elif msg.type == Gst.MessageType.EOS:
            finish("EOS before the checks finished")
        elif msg.type == Gst.MessageType.WARNING:
            e, dbg = msg.parse_warning()
            print("warning from %s: %s" % (msg.src.get_name(), e.message))

    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.timeout_add_seconds(90, finish, "timeout (90 s)")
    if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        finish("cannot start the pipeline")
    else:
        loop.run()
    pipe.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    if st["error"]:
        fail(st["error"])
    if st["phase"] != 4:
        fail("stopped in phase %d" % st["phase"])
    print("OK: left click made navigation object %d, right click kept it, middle click "
          "cleared it (%d frames)" % (st["id"], st["frames"]))


if __name__ == "__main__":
    main()
