// sam3::Model: strict checkpoint loading (model_builder.py _load_checkpoint with
// sam2's strictness), device / precision placement, random models.
#include "sam3/model.h"

#include <dlfcn.h>
#include <unistd.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <cstdlib>
#include <thread>

#include "model_impl.h"
#include "sam3/errors.h"

namespace sam3 {

namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every parameter and buffer of the module, by its official key.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : m.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

// Copies the checkpoint's tensors into the module; throws one CheckpointError
// listing every missing / mis-shaped / mis-typed required key.
void load_strict(const detail::ModelImpl& impl, const StateDict& sd, const std::string& source) {
  const torch::nn::Module& net = impl.root();
  std::vector<std::string> problems;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [key, dst] : named_tensors(net)) {
    auto it = sd.find(key);
    const bool rope_table = ends_with(key, ".attn.freqs_cis");
    if (it == sd.end()) {
      // RoPE tables are derivable (and agree with the formula); everything
      // else must be in the file.
      if (!rope_table) problems.push_back("missing key '" + key + "'");
      continue;
    }
    const auto& src = it->second;
    if (src.sizes() != dst.sizes()) {
      problems.push_back("key '" + key + "': expected shape " + shape_str(dst.sizes()) + ", got " +
                         shape_str(src.sizes()));
      continue;
    }
    if (rope_table ? !src.is_complex() : !src.is_floating_point()) {
      problems.push_back("key '" + key + "': expected a " +
                         std::string(rope_table ? "complex" : "floating-point") +
                         " tensor, got " + std::string(c10::toString(src.scalar_type())));
      continue;
    }
    copies.emplace_back(dst, src);
  }
  if (!problems.empty()) {
    throw CheckpointError(source + ": the checkpoint does not fit the " +
                              std::string(impl.sam2 ? "SAM 2.1 image" : "SAM 3 interactive") +
                              " model",
                          problems);
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.scalar_type()));
}

torch::ScalarType to_dtype(Precision p) {
  switch (p) {
    case Precision::kBFloat16: return torch::kBFloat16;
    case Precision::kFloat16: return torch::kHalf;
    default: return torch::kFloat;
  }
}

std::shared_ptr<const Model> finish(std::unique_ptr<detail::ModelImpl> impl,
                                    const ModelOptions& options) {
  torch::NoGradGuard no_grad;
  auto& net = impl->root();
  net.eval();
  net.to(impl->device);
  impl->dtype = to_dtype(impl->precision);
  if (impl->dtype != torch::kFloat) {
    // Weights in the compute dtype; RoPE tables (complex) and the prompt
    // encoder's Fourier matrix stay in fp32.
    for (auto& p : net.parameters(true)) p.set_data(p.to(impl->dtype));
  }
  if (impl->net) impl->net->detector->backbone->vision_backbone->trunk->refresh_rope_tables();
  impl->dense_pe = impl->prompt_encoder->get_dense_pe().to(torch::kFloat);
  impl->num_parameters = 0;
  for (const auto& t : named_tensors(net)) impl->num_parameters += t.second.numel();
  set_num_threads(options.num_threads);
  return std::make_shared<const Model>(std::move(impl));
}

// SAM 1 (segment-anything .pth): flat keys with mask_decoder./prompt_encoder.
// (SAM 2.1 uses sam_mask_decoder., SAM 3 detector./tracker.).
bool is_sam1_state_dict(const StateDict& sd) {
  return sd.count("image_encoder.patch_embed.proj.weight") &&
         sd.count("mask_decoder.output_upscaling.0.weight") &&
         !sd.count("image_encoder.trunk.patch_embed.proj.weight");
}

// A SAM 1 model behind sam3::Model: its own modules, pre- and post-processing
// (sam1/sam1_predictor.h); ModelConfig carries the family, R and widths only.
std::shared_ptr<const Model> load_sam1_model(const StateDict& sd, const ModelOptions& options,
                                             const std::string& source) {
  if (options.precision != Precision::kFloat32) {
    throw ConfigError(source + ": SAM 1 checkpoints run in fp32 only (precision " +
                      precision_name(options.precision) + " was asked)");
  }
  auto impl = std::make_unique<detail::ModelImpl>();
  impl->device = detail::parse_device(options.device);
  impl->precision = Precision::kFloat32;
  impl->dtype = torch::kFloat;
  sam1::Sam1Config c1 = options.config_path.empty()
                            ? sam1::Sam1Config::from_state_dict(sd)
                            : sam1::Sam1Config::from_json_file(options.config_path);
  impl->sam1 = sam1::load_sam1(sd, c1, impl->device, source);
  impl->config.family = "sam1";
  impl->config.name = "sam_" + c1.name;
  impl->config.image_size = c1.img_size;
  impl->config.backbone_stride = c1.patch_size;
  impl->config.hidden_dim = c1.prompt_embed_dim;
  impl->config.predictor = PredictorDefaults{0.0, 0.0, 0.0};  // SamPredictor: no hole / sprinkle pass
  impl->num_parameters = 0;
  for (const auto& t : named_tensors(*impl->sam1)) impl->num_parameters += t.second.numel();
  set_num_threads(options.num_threads);
  return std::make_shared<const Model>(std::move(impl));
}

std::unique_ptr<detail::ModelImpl> make_impl(const ModelConfig& cfg, const ModelOptions& options) {
  cfg.validate();
  auto impl = std::make_unique<detail::ModelImpl>();
  impl->config = cfg;
  impl->device = detail::parse_device(options.device);
  impl->precision = options.precision;
  if (impl->precision == Precision::kFloat16 && !impl->device.is_cuda()) {
    throw DeviceError("precision fp16 is supported on CUDA only (use fp32 or bf16 on the CPU)");
  }
  if (cfg.is_sam2()) {
    impl->sam2 = modeling::Sam2Model(cfg);
    impl->prompt_encoder = impl->sam2->sam_prompt_encoder;
    impl->mask_decoder = impl->sam2->sam_mask_decoder;
  } else {
    impl->net = modeling::Sam3InteractiveModel(cfg);
    impl->prompt_encoder = impl->net->tracker->sam_prompt_encoder;
    impl->mask_decoder = impl->net->tracker->sam_mask_decoder;
  }
  return impl;
}

}  // namespace

namespace detail {

torch::Device parse_device(const std::string& s) {
  if (s == "cpu" || s.empty()) return torch::Device(torch::kCPU);
  if (s.rfind("cuda", 0) != 0) {
    throw DeviceError("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
  }
  int index = 0;
  if (s.size() > 4) {
    if (s[4] != ':' || s.size() == 5 ||
        s.find_first_not_of("0123456789", 5) != std::string::npos) {
      throw DeviceError("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
    }
    index = std::stoi(s.substr(5));
  }
#if defined(SAM3_WITH_CUDA)
  if (!torch::cuda::is_available()) {
    throw DeviceError("device '" + s + "' requested but no CUDA GPU is available");
  }
  if (index >= static_cast<int>(torch::cuda::device_count())) {
    throw DeviceError("device '" + s + "' requested but only " +
                      std::to_string(torch::cuda::device_count()) + " CUDA device(s) exist");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
#else
  (void)index;
  throw DeviceError("device '" + s +
                    "' requested but this build has no CUDA support (LibTorch " TORCH_VERSION
                    " CPU); rebuild with -Dtorch-cmake-prefix=<CUDA LibTorch>");
#endif
}

}  // namespace detail

Precision parse_precision(const std::string& s) {
  if (s == "fp32" || s == "float32") return Precision::kFloat32;
  if (s == "bf16" || s == "bfloat16") return Precision::kBFloat16;
  if (s == "fp16" || s == "float16") return Precision::kFloat16;
  throw InvalidArgument("unknown precision '" + s + "' (expected fp32, bf16 or fp16)");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kBFloat16: return "bf16";
    case Precision::kFloat16: return "fp16";
    default: return "fp32";
  }
}

Model::Model(std::unique_ptr<detail::ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

// The architecture a safetensors file names in its "config" metadata entry
// (sam3-train writes one: the synthetic default model's decoder head count,
// for one, cannot be derived from shapes). Reads the header only; empty when
// the file is not safetensors or has no such entry.
static std::string safetensors_config_metadata(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char len_bytes[8];
  if (!f.read(reinterpret_cast<char*>(len_bytes), 8)) return {};
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  if (len < 2 || len > (100u << 20)) return {};
  std::string header(len, '\0');
  if (!f.read(header.data(), static_cast<std::streamsize>(len)) || header[0] != '{') return {};
  const auto j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("__metadata__")) return {};
  const auto& m = j.at("__metadata__");
  if (!m.is_object() || !m.contains("config") || !m.at("config").is_string()) return {};
  return m.at("config").get<std::string>();
}

std::shared_ptr<const Model> Model::load(const std::string& checkpoint_path,
                                         const ModelOptions& options) {
  StateDict sd = load_state_dict(checkpoint_path);
  if (is_sam1_state_dict(sd)) return load_sam1_model(sd, options, checkpoint_path);
  ModelConfig cfg;
  const std::string embedded =
      options.config_path.empty() ? safetensors_config_metadata(checkpoint_path) : std::string();
  if (!options.config_path.empty()) {
    cfg = ModelConfig::from_json_file(options.config_path);
  } else if (!embedded.empty()) {
    const auto j = nlohmann::json::parse(embedded, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
      throw CheckpointError(checkpoint_path + ": its \"config\" metadata is not valid JSON");
    try {
      cfg = ModelConfig::from_json(j);
    } catch (const ConfigError& e) {
      throw CheckpointError(checkpoint_path + ": its \"config\" metadata: " + e.what());
    }
  } else {
    try {
      cfg = ModelConfig::from_state_dict(sd);
    } catch (const CheckpointError& e) {
      // A SAM 2.1 checkpoint of a non-released size cannot be derived from
      // its shapes: a SAM 2.1 config.json next to it (the fixtures' layout)
      // is used when present.
      bool found = false;
      if (sd.count("image_encoder.trunk.patch_embed.proj.weight")) {
        auto slash = checkpoint_path.find_last_of('/');
        std::string side = (slash == std::string::npos ? std::string(".")
                                                       : checkpoint_path.substr(0, slash)) +
                           "/config.json";
        if (std::ifstream(side).good()) {
          try {
            auto c = ModelConfig::from_json_file(side);
            if (c.is_sam2()) {
              cfg = c;
              found = true;
            }
          } catch (const ConfigError&) {
          }
        }
      }
      if (!found) throw CheckpointError(checkpoint_path + ": " + e.message(), e.problems());
    }
  }
  auto impl = make_impl(cfg, options);
  load_strict(*impl, sd, checkpoint_path);
  return finish(std::move(impl), options);
}

std::shared_ptr<const Model> Model::from_state_dict(const StateDict& sd,
                                                    const ModelOptions& options,
                                                    const ModelConfig* config) {
  if (!config && is_sam1_state_dict(sd)) return load_sam1_model(sd, options, "state dict");
  ModelConfig cfg = config ? *config : ModelConfig::from_state_dict(sd);
  auto impl = make_impl(cfg, options);
  load_strict(*impl, sd, "state dict");
  return finish(std::move(impl), options);
}

std::shared_ptr<const Model> Model::random(const ModelConfig& config, const ModelOptions& options,
                                           uint64_t seed) {
  torch::manual_seed(seed);
  auto impl = make_impl(config, options);
  {
    torch::NoGradGuard no_grad;
    if (impl->sam2) {
      auto& trunk = impl->sam2->image_encoder->trunk;
      trunk->pos_embed.normal_(0.0, 0.02);
      trunk->pos_embed_window.normal_(0.0, 0.02);
      impl->sam2->no_mem_embed.normal_(0.0, 0.02);
    } else {
      auto& trunk = impl->net->detector->backbone->vision_backbone->trunk;
      if (trunk->pos_embed.defined()) trunk->pos_embed.normal_(0.0, 0.02);
      impl->net->tracker->no_mem_embed.normal_(0.0, 0.02);
    }
  }
  return finish(std::move(impl), options);
}

std::shared_ptr<const Model> Model::random_sam1(const std::string& size,
                                                const ModelOptions& options, uint64_t seed) {
  torch::manual_seed(seed);
  const auto cfg = sam1::Sam1Config::preset(size);
  modeling::sam1::Sam1Model net(cfg);  // official default initialisation
  StateDict sd;
  for (const auto& t : named_tensors(net)) sd[t.first] = t.second.detach();
  return load_sam1_model(sd, options, "random SAM 1 " + cfg.name);
}

const ModelConfig& Model::config() const { return impl_->config; }
torch::Device Model::device() const { return impl_->device; }
Precision Model::precision() const { return impl_->precision; }
int64_t Model::num_parameters() const { return impl_->num_parameters; }

StateDict Model::state_dict() const {
  StateDict sd;
  for (const auto& [k, v] : named_tensors(impl_->root())) {
    sd[k] = v.is_complex() ? v.detach().cpu() : v.detach().to(torch::kCPU, torch::kFloat);
  }
  return sd;
}

int set_num_threads(int num_threads) {
  if (num_threads == 0) {
    num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  if (num_threads > 0 && at::get_num_threads() != num_threads) at::set_num_threads(num_threads);
  // Debian's LibTorch takes its GEMM from the system OpenBLAS, whose own
  // thread pool at::set_num_threads does not touch: num_threads=1 still ran
  // every GEMM on all cores (and waited for a busy core under load).
  using SetThreads = void (*)(int);
  if (num_threads > 0) {
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      f(num_threads);
    }
  }
  return at::get_num_threads();
}

std::string blas_info() {
  // Which shared BLAS did the dynamic linker map for LibTorch's CPU GEMM?
  std::ifstream maps("/proc/self/maps");
  std::string line, lib;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if ((path.find("blas") != std::string::npos || path.find("mkl") != std::string::npos) &&
        path.find(".so") != std::string::npos) {
      lib = path;
      break;
    }
  }
  std::string kind = "unknown BLAS";
  using GetConfig = char* (*)();
  if (auto f = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    kind = std::string("OpenBLAS (") + f() + ")";
  } else if (lib.find("mkl") != std::string::npos) {
    kind = "MKL";
  } else if (lib.find("/blas/") != std::string::npos) {
    kind = "reference BLAS (slow: install libopenblas0-pthread)";
  } else if (lib.empty()) {
    kind = "no shared BLAS mapped (LibTorch's own GEMM / MKL linked statically)";
  }
  return lib.empty() ? kind : kind + " " + lib;
}

std::string omp_wait_policy() {
  const char* v = std::getenv("OMP_WAIT_POLICY");
  return v ? v : "unset";
}

}  // namespace sam3
