// The synthetic scene generator (training/synth): determinism, ground-truth
// consistency, variety (kinds, sizes, frame sizes, holes), videos.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <set>

#include "synth/scene_generator.h"

namespace synth = sam3::synth;

namespace {

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

void expect_consistent(const synth::Scene& s) {
  ASSERT_EQ(s.image.type(), CV_8UC3);
  cv::Mat covered = cv::Mat::zeros(s.image.size(), CV_8U);
  for (const auto& o : s.objects) {
    ASSERT_EQ(o.mask.size(), s.image.size());
    ASSERT_EQ(o.mask.type(), CV_8U);
    EXPECT_EQ(cv::countNonZero(o.mask), o.area);
    EXPECT_LE(o.area, o.full_area);
    if (o.area > 0) {
      EXPECT_EQ(o.box, cv::boundingRect(o.mask)) << o.kind;
    }
    // visible masks never overlap
    EXPECT_EQ(cv::countNonZero(covered & o.mask), 0) << "object " << o.id;
    covered |= o.mask;
    // binary 0 / 255
    cv::Mat other = (o.mask != 0) & (o.mask != 255);
    EXPECT_EQ(cv::countNonZero(other), 0);
  }
}

}  // namespace

TEST(Synth, SameSeedSameScene) {
  auto a = synth::generate_scene(12345), b = synth::generate_scene(12345);
  ASSERT_EQ(a.objects.size(), b.objects.size());
  EXPECT_TRUE(same(a.image, b.image));
  for (size_t i = 0; i < a.objects.size(); ++i) {
    EXPECT_TRUE(same(a.objects[i].mask, b.objects[i].mask));
    EXPECT_EQ(a.objects[i].kind, b.objects[i].kind);
  }
  auto c = synth::generate_scene(12346);
  EXPECT_FALSE(same(a.image, c.image));
}

TEST(Synth, GroundTruthIsConsistent) {
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    SCOPED_TRACE(seed);
    expect_consistent(synth::generate_scene(seed));
  }
}

TEST(Synth, OptionsAreHonoured) {
  synth::SceneOptions o;
  o.width = 333;
  o.height = 251;
  o.min_objects = o.max_objects = 5;
  auto s = synth::generate_scene(3, o);
  EXPECT_EQ(s.image.cols, 333);
  EXPECT_EQ(s.image.rows, 251);
  EXPECT_EQ(s.objects.size(), 5u);
  // without degradations a flat object keeps flat edges: only the noise differs
  o.noise = o.blur = false;
  auto clean = synth::generate_scene(3, o);
  expect_consistent(clean);
}

TEST(Synth, VarietyOfKindsSizesAndFrames) {
  std::set<std::string> kinds;
  std::set<std::pair<int, int>> frames;
  bool tiny = false, large = false, square = false, portrait = false, hd = false, small = false;
  for (uint64_t seed = 100; seed < 300; ++seed) {
    auto s = synth::generate_scene(seed);
    const int w = s.image.cols, h = s.image.rows;
    frames.insert({w, h});
    EXPECT_GE(w, 240);
    EXPECT_LE(w, 1920);
    EXPECT_GE(h, 240);
    EXPECT_LE(h, 1280);
    square |= (w == h);
    portrait |= (h > w);
    hd |= (w == 1920 && h == 1080);
    small |= (h == 240);
    const double short_side = std::min(w, h);
    for (const auto& o : s.objects) {
      kinds.insert(o.kind);
      if (o.full_area == 0) continue;
      const double extent = std::sqrt(static_cast<double>(o.full_area));
      tiny |= extent < 0.05 * short_side;
      large |= extent > 0.35 * short_side;
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"band", "ellipse", "polygon", "rect", "ring", "star",
                                          "strip"}));
  EXPECT_TRUE(tiny && large);
  EXPECT_TRUE(portrait && hd && small);
  EXPECT_GT(frames.size(), 15u);
  (void)square;
}

TEST(Synth, RingsHaveHoles) {
  // a fully visible ring away from the border has an inner contour (its hole)
  int rings = 0;
  for (uint64_t seed = 1; seed < 400 && rings < 3; ++seed) {
    auto s = synth::generate_scene(seed);
    for (const auto& o : s.objects) {
      if (o.kind != "ring" || o.visible_fraction() < 1.0 || o.area < 400) continue;
      if (o.box.x == 0 || o.box.y == 0 || o.box.br().x >= s.image.cols ||
          o.box.br().y >= s.image.rows)
        continue;
      std::vector<std::vector<cv::Point>> contours;
      std::vector<cv::Vec4i> hierarchy;
      cv::findContours(o.mask.clone(), contours, hierarchy, cv::RETR_CCOMP,
                       cv::CHAIN_APPROX_SIMPLE);
      bool hole = false;
      for (const auto& h : hierarchy) hole |= h[3] >= 0;
      EXPECT_TRUE(hole) << "seed " << seed;
      ++rings;
    }
  }
  EXPECT_GE(rings, 3);
}

TEST(Synth, OcclusionHappens) {
  int occluded = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed)
    for (const auto& o : synth::generate_scene(seed).objects)
      occluded += (o.area < o.full_area);
  EXPECT_GT(occluded, 10);
}

TEST(Synth, VideoIsDeterministicAndMoves) {
  synth::VideoScene v(7, 320, 240, 4), w(7, 320, 240, 4);
  auto f0 = v.frame(0), f10 = v.frame(10);
  EXPECT_TRUE(same(f0.image, w.frame(0).image));
  EXPECT_EQ(f0.image.cols, 320);
  EXPECT_EQ(f0.image.rows, 240);
  ASSERT_EQ(f0.objects.size(), 4u);
  expect_consistent(f0);
  expect_consistent(f10);
  int moved = 0;
  for (size_t i = 0; i < 4; ++i) moved += f0.objects[i].box != f10.objects[i].box;
  EXPECT_GE(moved, 3);
  // objects stay in the frame (they bounce)
  for (int i = 0; i < 300; i += 37)
    for (const auto& o : v.frame(i).objects) EXPECT_GT(o.full_area, 0) << "frame " << i;
}
