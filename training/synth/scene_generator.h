// gst-sam3 synthetic scenes: seeded images of objects with ground-truth masks.
//
//   sam3::synth::Scene s = sam3::synth::generate_scene(42);        // random size
//   sam3::synth::SceneOptions o; o.width = 640; o.height = 480;
//   auto t = sam3::synth::generate_scene(43, o);
//   for (const auto& obj : t.objects) { obj.mask; obj.box; obj.kind; }
//
//   sam3::synth::VideoScene v(7, 640, 360);                         // moving objects
//   sam3::synth::Scene f0 = v.frame(0), f1 = v.frame(1);
//
// What a scene holds: several objects — filled polygons, ellipses, stars,
// rings (with a hole), rounded rectangles, thin bands and bent strips — with
// random colours, solid / gradient / striped / noise textures, drawn in a
// random z-order over a textured background (gradient, value noise, stripes or
// checks, faint clutter shapes that are not objects), then image noise and an
// optional blur. Sizes range from tiny (3% of the short side) to large (60%),
// aspect ratios 1:3 to 3:1, frame sizes 240p to 1080p, mostly non-square.
// Every object's ground truth is its *visible* mask (what later objects leave
// of it) and the tight box of that mask.
//
// Determinism: a scene depends only on its seed and options (std::mt19937_64
// and cv::RNG seeded from it; no global RNG), so train / held-out splits are
// seed ranges (docs/training.md).
//
// Thread-safety: the functions are reentrant; a VideoScene is immutable after
// construction (frame() is const).
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sam3::synth {

struct SceneOptions {
  int width = 0, height = 0;     // 0 x 0: a random frame size (240p..1080p)
  int min_objects = 2, max_objects = 7;
  double min_size = 0.03, max_size = 0.6;  // object extent / short side (log-uniform)
  bool noise = true, blur = true;          // image degradations
};

struct Object {
  int id = 0;                 // 1-based, in drawing order
  std::string kind;           // polygon, ellipse, star, ring, rect, band, strip
  cv::Mat mask;               // CV_8UC1 0/255, frame size: the visible part
  cv::Rect box;               // tight box of mask (empty if fully occluded)
  int64_t area = 0;           // visible pixels
  int64_t full_area = 0;      // pixels before occlusion
  double visible_fraction() const {
    return full_area > 0 ? static_cast<double>(area) / static_cast<double>(full_area) : 0.0;
  }
};

struct Scene {
  cv::Mat image;              // CV_8UC3, RGB
  std::vector<Object> objects;
};

// One still scene.
Scene generate_scene(uint64_t seed, const SceneOptions& options = {});

// The frame size a seed picks when SceneOptions leaves it at 0 x 0.
cv::Size random_frame_size(uint64_t seed);

// An object's geometry and paint, in its own frame (unit radius, before scale,
// rotation and translation).
struct Shape {
  std::string kind;
  std::vector<cv::Point2d> outer, hole;  // polygons; hole may be empty
  double sx = 1, sy = 1;                 // half extents in pixels
  int fill = 0;                          // 0 solid, 1 gradient, 2 stripes, 3 noise
  cv::Vec3d c0, c1;                      // RGB colours of the fill
  double period = 8, fill_angle = 0;     // stripes / gradient direction
  cv::Mat noise;                         // CV_32F pattern for fill 3 (object frame)
};

// A short clip: objects moving (constant velocity, bouncing off the borders)
// and rotating over a fixed background; they pass in front of each other.
class VideoScene {
 public:
  VideoScene(uint64_t seed, int width, int height, int num_objects = 4);
  Scene frame(int index) const;
  int width() const { return size_.width; }
  int height() const { return size_.height; }

 private:
  cv::Size size_;
  cv::Mat background_;
  std::vector<Shape> shapes_;
  std::vector<cv::Point2d> start_, velocity_;
  std::vector<double> angle0_, spin_;
  uint64_t seed_;
};

// Visible-object filter used by the evaluation (docs/training.md): at least
// min_area pixels and min_visible of the object left unoccluded.
bool is_evaluable(const Object& o, int64_t min_area, double min_visible);

}  // namespace sam3::synth
