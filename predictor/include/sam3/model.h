// gst-sam3 predictor: a loaded SAM 3 interactive model (weights + config).
//
//   sam3::ModelOptions opt;           // cpu, fp32, all cores
//   opt.device = "cuda:0";            // optional; DeviceError if CUDA is absent
//   std::shared_ptr<const sam3::Model> model = sam3::Model::load("sam3.pt", opt);
//   sam3::InteractiveImagePredictor predictor(model);   // see image_predictor.h
//
// Loading is strict: the keys of the interactive path are taken by their
// official prefixes (detector.backbone.vision_backbone.trunk.*, ...sam2_convs.
// {0,1,2}.*, tracker.no_mem_embed, tracker.sam_prompt_encoder.*,
// tracker.sam_mask_decoder.*); every other key is ignored; one CheckpointError
// lists every missing, mis-shaped or mis-typed required key.
// SAM 2.1 checkpoints (released sam2.1_hiera_*.pt, {"model": state_dict}, or
// .safetensors with the same names) load the same way: family and size are
// detected from the keys and shapes (ModelConfig::family == "sam2.1"); the
// image-path keys (image_encoder.*, sam_prompt_encoder.*, sam_mask_decoder.*,
// no_mem_embed) are strict, the video-only ones are ignored. A SAM 2.1
// checkpoint of a non-released size needs ModelOptions::config_path, or a
// SAM 2.1 config.json in the checkpoint's folder.
//
// Thread-safety: a Model is immutable after load(). Any number of predictors,
// on any threads, may share one through std::shared_ptr<const Model>.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "sam3/checkpoint.h"
#include "sam3/config.h"

namespace sam3 {

enum class Precision { kFloat32, kBFloat16, kFloat16 };

// "fp32" | "bf16" | "fp16" (also "float32", "bfloat16", "float16"); throws
// InvalidArgument otherwise.
Precision parse_precision(const std::string& s);
const char* precision_name(Precision p);

struct ModelOptions {
  // "cpu", "cuda", "cuda:N". "cuda" without a usable CUDA LibTorch/GPU is a
  // DeviceError, never a silent CPU fallback.
  std::string device = "cpu";
  // fp32 (default); bf16 (CPU or GPU); fp16 (GPU only). LayerNorm, softmax,
  // RoPE and post-processing stay in fp32.
  Precision precision = Precision::kFloat32;
  // Intra-op threads of LibTorch (process-wide setting). 0 = all cores
  // (Debian's LibTorch otherwise starts with 1). Negative = leave as is.
  int num_threads = 0;
  // Optional JSON config; empty = derive from the checkpoint's shapes.
  std::string config_path;
};

namespace detail {
struct ModelImpl;
}

class Model {
 public:
  // Reads the checkpoint (.pt / .pth / .safetensors), builds and loads the
  // model. Throws CheckpointError / ConfigError / DeviceError.
  static std::shared_ptr<const Model> load(const std::string& checkpoint_path,
                                           const ModelOptions& options = {});
  // Same from tensors already in memory (config empty = derive).
  static std::shared_ptr<const Model> from_state_dict(const StateDict& sd,
                                                      const ModelOptions& options = {},
                                                      const ModelConfig* config = nullptr);
  // A model with deterministic random weights (benchmarks, tests): no file.
  static std::shared_ptr<const Model> random(const ModelConfig& config,
                                             const ModelOptions& options = {},
                                             uint64_t seed = 0);
  // A released SAM 1 size ("vit_b" / "b", "vit_l" / "l", "vit_h" / "h") with
  // deterministic random weights (benchmarks). ConfigError for another name.
  static std::shared_ptr<const Model> random_sam1(const std::string& size,
                                                  const ModelOptions& options = {},
                                                  uint64_t seed = 0);

  const ModelConfig& config() const;
  torch::Device device() const;
  Precision precision() const;
  // Number of required parameters/buffers and their elements.
  int64_t num_parameters() const;

  // The weights of the interactive path under their official sam3.pt names.
  StateDict state_dict() const;

  // Internal access for the predictor and tests (src/model_impl.h).
  const detail::ModelImpl& impl() const { return *impl_; }

  ~Model();
  explicit Model(std::unique_ptr<detail::ModelImpl> impl);

 private:
  std::unique_ptr<detail::ModelImpl> impl_;
};

// Applies ModelOptions::num_threads semantics to LibTorch's intra-op threads
// and, when the process uses OpenBLAS, to OpenBLAS's own thread pool (both
// process-wide); returns LibTorch's thread count now in use. blas_info() tells
// which BLAS LibTorch's CPU GEMM uses (for the benchmark).
int set_num_threads(int num_threads);
std::string blas_info();

// CPU threading note. Debian's LibTorch runs element-wise ops on OpenMP
// (libgomp) threads and GEMMs on OpenBLAS's own threads; libgomp's default
// spin-waiting then steals the cores from OpenBLAS. Measured on 2 cores:
// full-size set_image 55.0 s -> 50.7 s, predict 169 -> 104 ms, and 5x on the
// small fixture models, with OMP_WAIT_POLICY=PASSIVE. libgomp reads the
// variable once, when it is loaded, so it must be in the environment before
// the program starts: programs call sam3::reexec_with_cpu_environment(argv)
// (cpu_kernels.h) first thing in main(), which also makes OpenBLAS use the
// CPU's best kernels.
// The OMP_WAIT_POLICY in effect ("unset" if none).
std::string omp_wait_policy();

}  // namespace sam3
