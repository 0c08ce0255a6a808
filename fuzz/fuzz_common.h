// Helpers shared by the predictor-side fuzz harnesses (fuzz_*.cpp).
//
//   sam3_fuzz::TempFile f(".pt");            // one per process, in /dev/shm when it exists
//   f.write(data, size);                      // replaces the content
//   sam3::load_torch_zip(f.path());
//   sam3_fuzz::touch(tensor);                 // reads every byte
//
// Thread-safety: a TempFile must not be shared between threads (libFuzzer runs
// one input at a time per process).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <torch/torch.h>

namespace sam3_fuzz {

// Reads every byte of a loaded tensor (so ASan sees a bad buffer) and checks the
// reader's promise that tensors are defined, contiguous and on the CPU.
inline void touch(const torch::Tensor& t) {
  if (!t.defined() || !t.is_contiguous() || !t.device().is_cpu()) __builtin_trap();
  const auto* p = static_cast<const volatile uint8_t*>(t.data_ptr());
  const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  uint8_t acc = 0;
  for (size_t k = 0; k < n; ++k) acc ^= p[k];
  (void)acc;
}

// A per-process scratch file, removed at exit.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    std::error_code ec;
    const std::string dir = std::filesystem::is_directory("/dev/shm", ec)
                                ? "/dev/shm"
                                : std::filesystem::temp_directory_path().string();
    path_ = dir + "/sam3-fuzz-" + std::to_string(getpid()) + suffix;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

  void write(const void* data, size_t size) const {
    FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();  // the harness itself is broken, not the code under test
    }
  }

 private:
  std::string path_;
};

}  // namespace sam3_fuzz
