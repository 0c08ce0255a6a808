// Replays fuzz inputs without libFuzzer: runs LLVMFuzzerTestOneInput on every
// file named on the command line and on every regular file under the folders
// named there (recursively, in sorted order), then prints how many it ran.
// Used by the `fuzz` meson test suite so the normal (and the sanitizer) build
// replays every seed and regression input. Exit status 0 when at least one
// input ran and none crashed (a crash aborts the process); 1 when no input was
// found or a path cannot be read.
//
//   fuzz-replay-safetensors fuzz/corpus/safetensors fuzz/regressions/safetensors
//
// Thread-safety: single-threaded program.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (fs::recursive_directory_iterator it(arg, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file() && it->path().filename() != "README.md") {
          files.push_back(it->path());
        }
      }
      if (ec) {
        std::fprintf(stderr, "%s: cannot list the folder: %s\n", argv[i], ec.message().c_str());
        return 1;
      }
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else if (fs::exists(arg, ec)) {
      std::fprintf(stderr, "%s: not a file or folder\n", argv[i]);
      return 1;
    }
    // A missing path (e.g. an empty regressions folder git does not keep) is skipped.
  }
  std::sort(files.begin(), files.end());
  size_t ran = 0;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot open\n", f.c_str());
      return 1;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", f.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++ran;
  }
  std::printf("ran %zu inputs\n", ran);
  if (ran == 0) {
    std::fprintf(stderr, "no input files found\n");
    return 1;
  }
  return 0;
}
