// gst-sam3 synthetic scenes (see scene_generator.h).
#include "scene_generator.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <random>

namespace sam3::synth {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Rng {
  explicit Rng(uint64_t seed) : g(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  double uni(double a = 0.0, double b = 1.0) {
    // 53 random bits -> [0, 1): independent of the standard library's distributions
    const double u = static_cast<double>(g() >> 11) * (1.0 / 9007199254740992.0);
    return a + (b - a) * u;
  }
  int integer(int a, int b) {  // [a, b]
    return a + static_cast<int>(std::floor(uni() * (b - a + 1)));
  }
  bool chance(double p) { return uni() < p; }
  double log_uni(double a, double b) { return std::exp(uni(std::log(a), std::log(b))); }
  cv::Vec3d colour() { return {uni(0, 255), uni(0, 255), uni(0, 255)}; }
  uint64_t next() { return g(); }
  std::mt19937_64 g;
};

cv::Vec3d clamp_colour(cv::Vec3d c) {
  for (int k = 0; k < 3; ++k) c[k] = std::clamp(c[k], 0.0, 255.0);
  return c;
}

// A random smooth field in [0,1]: cells x cells of uniform noise, bicubic-resized.
cv::Mat value_noise(Rng& r, cv::Size size, int cells) {
  cv::Mat small(cells, cells, CV_32F);
  for (int y = 0; y < cells; ++y)
    for (int x = 0; x < cells; ++x) small.at<float>(y, x) = static_cast<float>(r.uni());
  cv::Mat big;
  cv::resize(small, big, size, 0, 0, cv::INTER_CUBIC);
  return big;
}

std::vector<cv::Point2d> circle_poly(double cx, double cy, double rad, int n = 64) {
  std::vector<cv::Point2d> p;
  for (int i = 0; i < n; ++i) {
    const double a = 2 * kPi * i / n;
    p.emplace_back(cx + rad * std::cos(a), cy + rad * std::sin(a));
  }
  return p;
}

const char* const kKinds[] = {"polygon", "ellipse", "star", "ring", "rect", "band", "strip"};

Shape make_shape(Rng& r, double extent, const cv::Vec3d& avoid) {
  Shape s;
  s.kind = kKinds[r.integer(0, 6)];
  double ar = r.log_uni(1.0 / 3.0, 3.0);
  double half = extent / 2.0;
  s.sx = half * std::sqrt(ar);
  s.sy = half / std::sqrt(ar);
  if (s.kind == "polygon") {
    const int n = r.integer(3, 8);
    std::vector<double> ang;
    for (int i = 0; i < n; ++i) ang.push_back(r.uni(0, 2 * kPi));
    std::sort(ang.begin(), ang.end());
    for (double a : ang) {
      const double rad = r.uni(0.6, 1.0);
      s.outer.emplace_back(rad * std::cos(a), rad * std::sin(a));
    }
  } else if (s.kind == "ellipse") {
    s.outer = circle_poly(0, 0, 1);
  } else if (s.kind == "star") {
    const int n = r.integer(5, 8);
    const double inner = r.uni(0.35, 0.6), phase = r.uni(0, kPi);
    for (int i = 0; i < 2 * n; ++i) {
      const double a = phase + kPi * i / n, rad = (i % 2) ? inner : 1.0;
      s.outer.emplace_back(rad * std::cos(a), rad * std::sin(a));
    }
  } else if (s.kind == "ring") {
    s.outer = circle_poly(0, 0, 1);
    const double hr = r.uni(0.35, 0.65);
    s.hole = circle_poly(r.uni(-0.1, 0.1), r.uni(-0.1, 0.1), hr);
  } else if (s.kind == "rect") {
    const double rc = r.uni(0.0, 0.4);
    // rounded square: 4 quarter circles of radius rc
    const double c = 1.0 - rc;
    const double cx[] = {c, -c, -c, c}, cy[] = {c, c, -c, -c};
    for (int q = 0; q < 4; ++q)
      for (int i = 0; i <= 8; ++i) {
        const double a = kPi / 2 * q + kPi / 2 * i / 8;
        s.outer.emplace_back(cx[q] + rc * std::cos(a), cy[q] + rc * std::sin(a));
      }
  } else if (s.kind == "band") {
    // thin straight bar
    s.sx = half;
    s.sy = half * r.uni(0.06, 0.2);
    s.outer = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
  } else {  // strip: a bent band along a sine centre line
    s.sx = half;
    s.sy = half * r.uni(0.3, 0.6);
    const double amp = r.uni(0.3, 0.7), freq = r.uni(0.5, 1.5), ph = r.uni(0, 2 * kPi);
    const double t = r.uni(0.15, 0.3);
    std::vector<cv::Point2d> top, bottom;
    for (int i = 0; i <= 32; ++i) {
      const double x = -1 + 2.0 * i / 32, y = amp * std::sin(kPi * freq * x + ph);
      top.emplace_back(x, y - t);
      bottom.emplace_back(x, y + t);
    }
    s.outer = top;
    s.outer.insert(s.outer.end(), bottom.rbegin(), bottom.rend());
  }
  // colour: at least 60 (RGB distance) away from what lies behind it
  cv::Vec3d c = r.colour();
  for (int i = 0; i < 32 && cv::norm(c - avoid) < 60.0; ++i) c = r.colour();
  s.c0 = c;
  s.c1 = clamp_colour(c + cv::Vec3d(r.uni(-60, 60), r.uni(-60, 60), r.uni(-60, 60)));
  s.fill = r.integer(0, 3);
  s.period = r.uni(4, 24);
  s.fill_angle = r.uni(0, kPi);
  if (s.fill == 3) s.noise = value_noise(r, cv::Size(32, 32), r.integer(3, 8));
  return s;
}

std::vector<cv::Point> place(const std::vector<cv::Point2d>& poly, const Shape& s,
                             cv::Point2d centre, double angle) {
  const double c = std::cos(angle), sn = std::sin(angle);
  std::vector<cv::Point> out;
  for (const auto& p : poly) {
    const double x = p.x * s.sx, y = p.y * s.sy;
    // 4 fractional bits (fillPoly shift)
    out.emplace_back(static_cast<int>(std::lround((centre.x + c * x - sn * y) * 16)),
                     static_cast<int>(std::lround((centre.y + sn * x + c * y) * 16)));
  }
  return out;
}

cv::Mat render_mask(const Shape& s, cv::Size size, cv::Point2d centre, double angle) {
  cv::Mat m = cv::Mat::zeros(size, CV_8U);
  std::vector<std::vector<cv::Point>> outer{place(s.outer, s, centre, angle)};
  cv::fillPoly(m, outer, cv::Scalar(255), cv::LINE_8, 4);
  if (!s.hole.empty()) {
    std::vector<std::vector<cv::Point>> hole{place(s.hole, s, centre, angle)};
    cv::fillPoly(m, hole, cv::Scalar(0), cv::LINE_8, 4);
  }
  return m;
}

// Paints the shape's fill into img (CV_32FC3) where mask is set. img and mask
// may be a region of the frame whose top-left corner is at `origin`.
void paint(cv::Mat& img, const cv::Mat& mask, const Shape& s, cv::Point2d centre, double angle,
           cv::Point origin = {}) {
  const cv::Rect box = cv::boundingRect(mask);
  const double c = std::cos(-angle), sn = std::sin(-angle);
  const double fc = std::cos(s.fill_angle), fs = std::sin(s.fill_angle);
  for (int y = box.y; y < box.y + box.height; ++y) {
    const uint8_t* mrow = mask.ptr<uint8_t>(y);
    auto* row = img.ptr<cv::Vec3f>(y);
    for (int x = box.x; x < box.x + box.width; ++x) {
      if (!mrow[x]) continue;
      const double dx = (x + origin.x) + 0.5 - centre.x, dy = (y + origin.y) + 0.5 - centre.y;
      const double lx = c * dx - sn * dy, ly = sn * dx + c * dy;  // pixels, object frame
      const double u = lx / s.sx, v = ly / s.sy;                 // about [-1, 1]
      double t = 0;
      switch (s.fill) {
        case 1: t = std::clamp((u * fc + v * fs + 1.0) / 2.0, 0.0, 1.0); break;
        case 2: t = 0.5 + 0.5 * std::sin(2 * kPi * (lx * fc + ly * fs) / s.period); break;
        case 3: {
          const double px = std::clamp((u + 1) / 2, 0.0, 1.0) * (s.noise.cols - 1);
          const double py = std::clamp((v + 1) / 2, 0.0, 1.0) * (s.noise.rows - 1);
          const int x0 = static_cast<int>(px), y0 = static_cast<int>(py);
          const int x1 = std::min(x0 + 1, s.noise.cols - 1), y1 = std::min(y0 + 1, s.noise.rows - 1);
          const double ax = px - x0, ay = py - y0;
          t = (1 - ay) * ((1 - ax) * s.noise.at<float>(y0, x0) + ax * s.noise.at<float>(y0, x1)) +
              ay * ((1 - ax) * s.noise.at<float>(y1, x0) + ax * s.noise.at<float>(y1, x1));
          break;
        }
        default: break;
      }
      const cv::Vec3d col = s.c0 * (1 - t) + s.c1 * t;
      row[x] = cv::Vec3f(static_cast<float>(col[0]), static_cast<float>(col[1]),
                         static_cast<float>(col[2]));
    }
  }
}

// Textured background (CV_32FC3) and faint clutter shapes that are not objects.
cv::Mat make_background(Rng& r, cv::Size size) {
  const cv::Vec3d a = r.colour(), b = clamp_colour(a + cv::Vec3d(r.uni(-90, 90), r.uni(-90, 90),
                                                                   r.uni(-90, 90)));
  const double ang = r.uni(0, 2 * kPi), ca = std::cos(ang), sa = std::sin(ang);
  const int tex = r.integer(0, 3);
  const double amp = r.uni(8, 35), period = r.uni(10, 80);
  cv::Mat noise;
  if (tex == 0) noise = value_noise(r, size, r.integer(4, 24));
  const cv::Vec3d tint(r.uni(0.5, 1.0), r.uni(0.5, 1.0), r.uni(0.5, 1.0));
  cv::Mat img(size, CV_32FC3);
  const double diag = std::hypot(size.width, size.height);
  for (int y = 0; y < size.height; ++y) {
    auto* row = img.ptr<cv::Vec3f>(y);
    for (int x = 0; x < size.width; ++x) {
      const double t = std::clamp(0.5 + ((x - size.width / 2.0) * ca + (y - size.height / 2.0) * sa) / diag,
                                  0.0, 1.0);
      double m = 0;
      if (tex == 0) m = (noise.at<float>(y, x) - 0.5) * 2;
      else if (tex == 1) m = std::sin(2 * kPi * (x * sa - y * ca) / period);
      else if (tex == 2) m = ((static_cast<int>(x / period) + static_cast<int>(y / period)) % 2) ? 0.5 : -0.5;
      const cv::Vec3d col = clamp_colour(a * (1 - t) + b * t + tint * (amp * m));
      row[x] = cv::Vec3f(static_cast<float>(col[0]), static_cast<float>(col[1]),
                         static_cast<float>(col[2]));
    }
  }
  // clutter
  const int clutter = r.integer(0, 8);
  const double short_side = std::min(size.width, size.height);
  for (int i = 0; i < clutter; ++i) {
    Shape s = make_shape(r, short_side * r.log_uni(0.03, 0.3), cv::Vec3d(-1000, 0, 0));
    const cv::Point2d c(r.uni(0, size.width), r.uni(0, size.height));
    const double angle = r.uni(0, 2 * kPi);
    const cv::Mat m = render_mask(s, size, c, angle);
    // blend within the shape's bounding box only (pixel for pixel the same
    // as over the whole frame, without a frame-sized copy per shape)
    const cv::Rect roi = cv::boundingRect(m);
    const double alpha = r.uni(0.1, 0.3);
    if (roi.empty()) continue;  // entirely outside the frame
    cv::Mat region = img(roi);
    cv::Mat layer = region.clone();
    paint(layer, m(roi), s, c, angle, roi.tl());
    cv::Mat blended;
    cv::addWeighted(region, 1 - alpha, layer, alpha, 0, blended);
    blended.copyTo(region, m(roi));
  }
  return img;
}

// Ground truth from masks in drawing order: each object's visible part.
void finish_objects(std::vector<Object>& objs) {
  cv::Mat covered;
  for (auto it = objs.rbegin(); it != objs.rend(); ++it) {
    it->full_area = cv::countNonZero(it->mask);
    cv::Mat full = it->mask;
    if (!covered.empty()) {
      cv::Mat vis;
      cv::bitwise_and(full, ~covered, vis);
      it->mask = vis;
      cv::bitwise_or(covered, full, covered);
    } else {
      covered = full.clone();
    }
    it->area = cv::countNonZero(it->mask);
    it->box = it->area > 0 ? cv::boundingRect(it->mask) : cv::Rect();
  }
}

cv::Mat degrade(Rng& r, const cv::Mat& img32, const SceneOptions& o) {
  cv::Mat img = img32.clone();
  if (o.noise) {
    const double sigma = r.uni(0, 8);
    cv::Mat n(img.size(), CV_32FC3);
    cv::RNG cr(r.next());
    cr.fill(n, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(sigma));
    img += n;
  }
  if (o.blur && r.chance(0.4)) cv::GaussianBlur(img, img, cv::Size(0, 0), r.uni(0.5, 1.5));
  cv::Mat out;
  img.convertTo(out, CV_8UC3);  // saturating
  return out;
}

cv::Vec3d colour_at(const cv::Mat& img32, cv::Point2d c) {
  const int x = std::clamp(static_cast<int>(c.x), 0, img32.cols - 1);
  const int y = std::clamp(static_cast<int>(c.y), 0, img32.rows - 1);
  const auto v = img32.at<cv::Vec3f>(y, x);
  return {v[0], v[1], v[2]};
}

}  // namespace

cv::Size random_frame_size(uint64_t seed) {
  Rng r(seed ^ 0x5A17E5C3u);
  static const cv::Size kSizes[] = {{320, 240},  {426, 240},  {640, 360}, {640, 480},
                                    {800, 600},  {854, 480},  {960, 540}, {1024, 576},
                                    {1280, 720}, {1024, 768}, {1920, 1080}, {480, 640},
                                    {720, 1280}};
  if (r.chance(0.7)) return kSizes[r.integer(0, 12)];
  const int w = r.integer(320, 1920);
  const int h = std::clamp(static_cast<int>(w / r.log_uni(0.5, 2.0)), 240, 1080);
  return {w, h};
}

Scene generate_scene(uint64_t seed, const SceneOptions& o) {
  Rng r(seed);
  const cv::Size size = (o.width > 0 && o.height > 0) ? cv::Size(o.width, o.height)
                                                     : random_frame_size(seed);
  cv::Mat img = make_background(r, size);
  const double short_side = std::min(size.width, size.height);
  const int n = r.integer(o.min_objects, o.max_objects);
  Scene scene;
  for (int i = 0; i < n; ++i) {
    const double extent = short_side * r.log_uni(o.min_size, o.max_size);
    const cv::Point2d c(r.uni(0.05, 0.95) * size.width, r.uni(0.05, 0.95) * size.height);
    Shape s = make_shape(r, extent, colour_at(img, c));
    const double angle = r.uni(0, 2 * kPi);
    Object obj;
    obj.id = i + 1;
    obj.kind = s.kind;
    obj.mask = render_mask(s, size, c, angle);
    paint(img, obj.mask, s, c, angle);
    scene.objects.push_back(std::move(obj));
  }
  finish_objects(scene.objects);
  scene.image = degrade(r, img, o);
  return scene;
}

VideoScene::VideoScene(uint64_t seed, int width, int height, int num_objects)
    : size_(width, height), seed_(seed) {
  Rng r(seed);
  background_ = make_background(r, size_);
  const double short_side = std::min(width, height);
  for (int i = 0; i < num_objects; ++i) {
    const cv::Point2d c(r.uni(0.15, 0.85) * width, r.uni(0.15, 0.85) * height);
    Shape s = make_shape(r, short_side * r.uni(0.15, 0.4), colour_at(background_, c));
    if (s.kind == "band") s.sy = std::max(s.sy, 0.06 * short_side);  // stays visible
    shapes_.push_back(s);
    start_.push_back(c);
    const double speed = r.uni(0.004, 0.012) * short_side, dir = r.uni(0, 2 * kPi);
    velocity_.emplace_back(speed * std::cos(dir), speed * std::sin(dir));
    angle0_.push_back(r.uni(0, 2 * kPi));
    spin_.push_back(r.uni(-0.03, 0.03));
  }
}

Scene VideoScene::frame(int index) const {
  cv::Mat img = background_.clone();
  Scene scene;
  auto bounce = [](double p, double lo, double hi) {
    const double span = hi - lo, q = std::fmod(std::fabs(p - lo), 2 * span);
    return lo + (q <= span ? q : 2 * span - q);
  };
  for (size_t i = 0; i < shapes_.size(); ++i) {
    const cv::Point2d c(bounce(start_[i].x + velocity_[i].x * index, 0.1 * size_.width, 0.9 * size_.width),
                        bounce(start_[i].y + velocity_[i].y * index, 0.1 * size_.height, 0.9 * size_.height));
    const double angle = angle0_[i] + spin_[i] * index;
    Object obj;
    obj.id = static_cast<int>(i) + 1;
    obj.kind = shapes_[i].kind;
    obj.mask = render_mask(shapes_[i], size_, c, angle);
    paint(img, obj.mask, shapes_[i], c, angle);
    scene.objects.push_back(std::move(obj));
  }
  finish_objects(scene.objects);
  Rng r(seed_ * 7919 + static_cast<uint64_t>(index) + 1);
  SceneOptions o;
  o.blur = false;
  scene.image = degrade(r, img, o);
  return scene;
}

bool is_evaluable(const Object& o, int64_t min_area, double min_visible) {
  return o.area >= min_area && o.visible_fraction() >= min_visible;
}

}  // namespace sam3::synth
