// gst-sam3 predictor: reading and writing tensor files, without Python.
//
//   sam3::StateDict sd = sam3::load_state_dict("sam3.pt");      // or .safetensors
//   torch::Tensor w = sd.at("tracker.no_mem_embed");
//   sam3::save_safetensors("out.safetensors", {{"masks", masks}});
//
// Supported inputs
//   * torch.save zip archives (.pt / .pth, the format of sam3.pt, SAM 2.1 .pt and
//     SAM 1 .pth): read with LibTorch's zip reader and a restricted unpickler that
//     accepts only what torch.save emits for a (possibly nested) dict of tensors:
//     dict / collections.OrderedDict (its `_metadata` attribute is dropped),
//     torch._utils._rebuild_tensor_v2 (and _rebuild_parameter), the typed
//     storages (Float/Double/Half/BFloat16/ComplexFloat/ComplexDouble/Long/Int/
//     Short/Char/Byte/Bool) — like torch.load(weights_only=True). Any other
//     global or opcode is refused with a CheckpointError; a hostile or broken
//     file can neither run code nor crash the process.
//     A top-level {"model": dict} wrapper is unwrapped; nested dicts are
//     flattened with '.'.
//   * safetensors (.safetensors), dtypes BOOL U8 I8 I16 I32 I64 F16 BF16 F32 F64
//     (and C64 as an extension for complex64 tensors).
//   The format is chosen from the file's content, not its name.
//
// Thread-safety: the functions are reentrant; they share no state.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace sam3 {

// Flat mapping from the official key names to CPU tensors (contiguous).
using StateDict = std::map<std::string, torch::Tensor>;

// Reads a checkpoint (.pt/.pth zip archive or .safetensors). Throws
// CheckpointError naming the file and what is wrong.
StateDict load_state_dict(const std::string& path);

// Explicit format readers (load_state_dict picks one of them).
StateDict load_torch_zip(const std::string& path);
StateDict load_safetensors(const std::string& path,
                           std::map<std::string, std::string>* metadata = nullptr);

// Writes tensors (any device; moved to CPU, made contiguous) as safetensors.
// Throws sam3::Error if the file cannot be written or a dtype is unsupported.
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace sam3
