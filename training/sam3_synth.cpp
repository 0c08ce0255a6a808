// sam3-synth: writes generated scenes (or a clip) with their ground truth.
//
//   sam3-synth --out scenes/ --seed 1 --count 10 [--size 640x480]
//   sam3-synth --out clip/ --seed 7 --video 90 --size 640x360 [--objects 4]
//
// Per scene (clip frame) NAME = scene<seed> (frame<index>): NAME.png (RGB
// image), NAME.obj<id>.png (visible mask, 8-bit 0/255) and NAME.json
// ({"width", "height", "objects": [{"id", "kind", "box": [x0, y0, x1, y1],
// "area", "full_area"}]}, boxes with exclusive x1/y1, as sam3-predict --box
// takes them). Same seeds, same files (training/synth/scene_generator.h).
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "synth/scene_generator.h"

namespace {

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "sam3-synth: %s\n"
               "usage: sam3-synth --out DIR [--seed N] [--count N] [--size WxH]\n"
               "                  [--video FRAMES [--objects N]]\n",
               msg.c_str());
  std::exit(2);
}

bool write(const std::string& dir, const std::string& name, const sam3::synth::Scene& s) {
  cv::Mat bgr;
  cv::cvtColor(s.image, bgr, cv::COLOR_RGB2BGR);
  bool ok = cv::imwrite(dir + "/" + name + ".png", bgr);
  nlohmann::json j{{"width", s.image.cols}, {"height", s.image.rows}};
  j["objects"] = nlohmann::json::array();
  for (const auto& o : s.objects) {
    ok = ok && cv::imwrite(dir + "/" + name + ".obj" + std::to_string(o.id) + ".png", o.mask);
    j["objects"].push_back({{"id", o.id},
                            {"kind", o.kind},
                            {"box", {o.box.x, o.box.y, o.box.x + o.box.width, o.box.y + o.box.height}},
                            {"area", o.area},
                            {"full_area", o.full_area}});
  }
  std::ofstream f(dir + "/" + name + ".json");
  f << j.dump(1) << "\n";
  return ok && f.good();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  long long seed = 1, count = 1, video = 0, objects = 4;
  int w = 0, h = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + k);
      return argv[++i];
    };
    auto integer = [&](long long min) {
      const std::string v = val();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || n < min) usage(k + ": expected an integer >= " + std::to_string(min));
      return n;
    };
    if (k == "--out") out = val();
    else if (k == "--seed") seed = integer(0);
    else if (k == "--count") count = integer(1);
    else if (k == "--video") video = integer(1);
    else if (k == "--objects") objects = integer(1);
    else if (k == "--size") {
      const std::string v = val();
      if (std::sscanf(v.c_str(), "%dx%d", &w, &h) != 2 || w < 16 || h < 16 || w > 7680 || h > 4320)
        usage("--size: expected WxH, 16..7680 x 16..4320");
    } else if (k == "-h" || k == "--help") usage("help");
    else usage("unknown option " + k);
  }
  if (out.empty()) usage("--out is required");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) usage("cannot create " + out + ": " + ec.message());
  bool ok = true;
  if (video > 0) {
    sam3::synth::VideoScene v(static_cast<uint64_t>(seed), w > 0 ? w : 640, h > 0 ? h : 360,
                              static_cast<int>(objects));
    char name[32];
    for (long long i = 0; i < video; ++i) {
      std::snprintf(name, sizeof name, "frame%05lld", i);
      ok = ok && write(out, name, v.frame(static_cast<int>(i)));
    }
  } else {
    sam3::synth::SceneOptions o;
    o.width = w;
    o.height = h;
    for (long long i = 0; i < count; ++i)
      ok = ok && write(out, "scene" + std::to_string(seed + i),
                       sam3::synth::generate_scene(static_cast<uint64_t>(seed + i), o));
  }
  if (!ok) {
    std::fprintf(stderr, "sam3-synth: cannot write into %s\n", out.c_str());
    return 1;
  }
  std::printf("sam3-synth: wrote %lld %s into %s\n", video > 0 ? video : count,
              video > 0 ? "frames" : "scenes", out.c_str());
  return 0;
}
