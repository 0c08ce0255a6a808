// Fuzzes the torch.save zip reader and its restricted unpickler
// (sam3::load_torch_zip, predictor/src/checkpoint.cpp).
//
// An input that starts with "PK" is the whole .pt file. Any other input is the
// pickle stream: it is stored as archive/data.pkl in a valid zip (written with
// LibTorch's PyTorchStreamWriter) next to a few storage records data/0 ...
// data/3 of different sizes, so that the fuzzer reaches the unpickler and the
// tensor rebuilding (storage sizes, offsets, strides) instead of stopping at the
// zip layer. The only acceptable failure is a sam3::CheckpointError; any other
// exception, crash, leak or oversized allocation is a finding.
#include <caffe2/serialize/inline_container.h>
#include <sam3/checkpoint.h>
#include <sam3/errors.h>

#include <cstring>
#include <string>

#include "fuzz_common.h"

namespace {

std::string wrap_pickle(const uint8_t* data, size_t size) {
  std::string zip;
  caffe2::serialize::PyTorchStreamWriter writer([&zip](const void* buf, size_t n) -> size_t {
    zip.append(static_cast<const char*>(buf), n);
    return n;
  });
  writer.writeRecord("data.pkl", data, size);
  writer.writeRecord("byteorder", "little", 6);
  static const char kStorage[256] = {1, 2, 3, 4, 5, 6, 7, 8};
  writer.writeRecord("data/0", kStorage, 64);
  writer.writeRecord("data/1", kStorage, 4);
  writer.writeRecord("data/2", kStorage, 256);
  writer.writeRecord("data/3", kStorage, 0);
  writer.writeEndOfFile();
  return zip;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const sam3_fuzz::TempFile file(".pt");
  if (size >= 2 && std::memcmp(data, "PK", 2) == 0) {
    file.write(data, size);
  } else {
    const std::string zip = wrap_pickle(data, size);
    file.write(zip.data(), zip.size());
  }
  try {
    const sam3::StateDict sd = sam3::load_torch_zip(file.path());
    for (const auto& [name, t] : sd) sam3_fuzz::touch(t);
  } catch (const sam3::CheckpointError&) {
  }
  return 0;
}
