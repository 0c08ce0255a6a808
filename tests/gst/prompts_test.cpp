// sam3segment's prompt parsers without a pipeline (gst-plugin/sam3prompts.h):
// the boxes / points strings, their caps and their error messages.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sam3prompts.h"

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp () override { gst_init (nullptr, nullptr); }
};
const auto *const kEnv = ::testing::AddGlobalTestEnvironment (new GstEnv);

TEST (Sam3Prompts, BoxesAndPointsStrings) {
  std::vector<sam3gst::Box> boxes;
  std::vector<sam3gst::Point> points;
  std::string err;
  ASSERT_TRUE (sam3gst::parse_boxes_string ("<<10,10,50,60>, <1.5,2,3e1,-4>>", &boxes, &err)) << err;
  ASSERT_EQ (boxes.size (), 2u);
  EXPECT_FLOAT_EQ (boxes[1][0], 1.5f);
  EXPECT_FLOAT_EQ (boxes[1][2], 30.f);
  EXPECT_FLOAT_EQ (boxes[1][3], -4.f);
  ASSERT_TRUE (sam3gst::parse_points_string ("<<20,30,1>,<5,6,0>>", &points, &err)) << err;
  ASSERT_EQ (points.size (), 2u);
  EXPECT_FLOAT_EQ (points[0][2], 1.f);
  EXPECT_TRUE (sam3gst::parse_points_string ("", &points, &err));
  EXPECT_TRUE (points.empty ());
}

// Malformed lists are refused with the entry and the problem; nothing is kept.
// (Syntax errors inside a nested array are left to the fuzz harness: GStreamer
// 1.22 leaks a GValue on them, fuzz/lsan-gst.supp.)
TEST (Sam3Prompts, MalformedListsAreRefusedNamingTheEntry) {
  std::vector<sam3gst::Box> boxes{{1, 2, 3, 4}};
  std::string err;
  EXPECT_FALSE (sam3gst::parse_boxes_string ("<<1,2,3,4>,<1,2,3>>", &boxes, &err));
  EXPECT_TRUE (boxes.empty ());
  EXPECT_NE (err.find ("boxes entry 1 must have 4 numbers"), std::string::npos) << err;
  err.clear ();
  EXPECT_FALSE (sam3gst::parse_boxes_string ("<<1,2,3,1e39>>", &boxes, &err));
  EXPECT_NE (err.find ("boxes entry 0 is not finite"), std::string::npos) << err;
}

// Nesting beyond the list and its entries, and type casts, are refused before
// GStreamer's recursive parser sees them.
TEST (Sam3Prompts, DeepNestingAndCastsAreRefused) {
  std::vector<sam3gst::Point> points{{1, 2, 1}};
  std::string err;
  const std::string deep = std::string (5000, '<') + "1" + std::string (5000, '>');
  EXPECT_FALSE (sam3gst::parse_points_string (deep.c_str (), &points, &err));
  EXPECT_TRUE (points.empty ());
  EXPECT_NE (err.find ("nested more than 2 levels deep (at offset 2)"), std::string::npos) << err;
  err.clear ();
  EXPECT_FALSE (sam3gst::parse_points_string ("<<(float)1,2,1>>", &points, &err));
  EXPECT_NE (err.find ("type casts are not accepted (offset 2)"), std::string::npos) << err;
}

// At most 256 entries per string (docs/elements.md, "Limits").
TEST (Sam3Prompts, EntryCap) {
  std::string text = "<";
  for (int i = 0; i < 257; ++i) text += std::string (i ? "," : "") + "<1,2,1>";
  text += ">";
  std::vector<sam3gst::Point> points;
  std::string err;
  EXPECT_FALSE (sam3gst::parse_points_string (text.c_str (), &points, &err));
  EXPECT_NE (err.find ("257"), std::string::npos) << err;
  text = "<";
  for (int i = 0; i < 256; ++i) text += std::string (i ? "," : "") + "<1,2,1>";
  text += ">";
  EXPECT_TRUE (sam3gst::parse_points_string (text.c_str (), &points, &err)) << err;
  EXPECT_EQ (points.size (), 256u);
}

}  // namespace
