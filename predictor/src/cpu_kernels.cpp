// SPDX-License-Identifier: Apache-2.0
// No LibTorch here: the GStreamer plugin's loader links this file before the
// library that links LibTorch (and so OpenBLAS) is loaded.
#include "sam3/cpu_kernels.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace sam3 {
namespace {

struct Family {
  const char* name;
  int rank;
};
// OpenBLAS's x86-64 DYNAMIC_ARCH families, by the widest instructions their
// GEMM kernels use.
constexpr Family kFamilies[] = {
    {"Prescott", 0},   {"Katmai", 0},    {"Coppermine", 0}, {"Northwood", 0}, {"Banias", 0},
    {"Atom", 0},       {"Athlon", 0},    {"Opteron", 0},    {"Opteron_SSE3", 0},
    {"Barcelona", 1},  {"Nano", 1},      {"Core2", 1},      {"Penryn", 1},    {"Dunnington", 1},
    {"Nehalem", 2},    {"Sandybridge", 3}, {"Bulldozer", 3}, {"Piledriver", 3},
    {"Steamroller", 3}, {"Excavator", 4}, {"Haswell", 4},    {"Zen", 4},
    {"SkylakeX", 5},   {"Cooperlake", 6}, {"SapphireRapids", 6},
};

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

bool has_corename(void* h) { return dlsym(h, "openblas_get_corename") != nullptr; }

// OpenBLAS, when some library already loaded it (RTLD_LOCAL included); never
// loads it. Debian's LibTorch links libblas.so.3 / libcblas.so.3, which the
// alternatives system points at OpenBLAS (or at the reference BLAS), so the
// usual sonames go first, then any mapped file whose name holds "blas".
void* openblas_handle() {
  for (const char* soname : {"libopenblas.so.0", "libblas.so.3", "libcblas.so.3"}) {
    if (void* h = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD)) {
      if (has_corename(h)) return h;
      dlclose(h);
    }
  }
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return nullptr;
  void* found = nullptr;
  char line[4096];
  while (found == nullptr && std::fgets(line, sizeof line, maps) != nullptr) {
    char* path = std::strchr(line, '/');
    if (path == nullptr) continue;
    path[std::strcspn(path, "\n")] = '\0';
    const char* base = std::strrchr(path, '/') + 1;
    if (std::strstr(base, "blas") == nullptr || std::strstr(base, ".so") == nullptr) continue;
    if (void* h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD)) {
      if (has_corename(h)) {
        found = h;
      } else {
        dlclose(h);
      }
    }
  }
  std::fclose(maps);
  return found;
}

}  // namespace

std::string cpu_best_blas_core() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // __builtin_cpu_supports checks the OS-enabled register state (XCR0) too.
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512cd");
  if (avx512) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) != 0;
    return bf16 ? "Cooperlake" : "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return __builtin_cpu_is("amd") ? "Zen" : "Haswell";
  }
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
  if (__builtin_cpu_supports("sse4.2")) return "Nehalem";
  if (__builtin_cpu_supports("ssse3")) return "Core2";
  return "Prescott";
#else
  return "";
#endif
}

int blas_core_rank(const std::string& name) {
  for (const Family& f : kFamilies) {
    if (strcasecmp(f.name, name.c_str()) == 0) return f.rank;
  }
  return -1;
}

std::string BlasKernels::summary() const {
  if (in_use.empty()) return "OpenBLAS is not loaded in this process";
  std::string s = "OpenBLAS kernels " + in_use + " (the CPU's best: " +
                  (cpu_best.empty() ? std::string("unknown") : cpu_best) + ")";
  if (!coretype.empty()) s += ", OPENBLAS_CORETYPE=" + coretype;
  if (below_cpu) {
    s += ": below what the CPU supports, GEMMs run several times slower; "
         "set OPENBLAS_CORETYPE=" + cpu_best + " before the program starts";
  }
  return s;
}

BlasKernels blas_kernels() {
  BlasKernels k;
  k.cpu_best = cpu_best_blas_core();
  if (const char* v = env("OPENBLAS_CORETYPE")) k.coretype = v;
  if (void* h = openblas_handle()) {
    using GetCorename = char* (*)();
    if (auto f = reinterpret_cast<GetCorename>(dlsym(h, "openblas_get_corename"))) {
      if (const char* n = f()) k.in_use = n;
    }
    dlclose(h);  // drops only the reference taken by RTLD_NOLOAD
  }
  const int used = blas_core_rank(k.in_use), best = blas_core_rank(k.cpu_best);
  k.below_cpu = !k.in_use.empty() && used >= 0 && best >= 0 && used < best;
  return k;
}

// SAM3_BLAS_CORETYPE when it names a known family; *bad holds it otherwise.
static const char* forced_coretype(std::string* bad) {
  const char* v = env("SAM3_BLAS_CORETYPE");
  if (v != nullptr && blas_core_rank(v) < 0) {
    *bad = std::string("SAM3_BLAS_CORETYPE=") + v +
           " is not an OpenBLAS x86-64 kernel family (e.g. SkylakeX, Haswell, Sandybridge): "
           "ignored";
    return nullptr;
  }
  return v;
}

std::string prepare_blas_coretype() {
  if (void* h = openblas_handle()) {
    dlclose(h);
    return "OpenBLAS was loaded already: its kernels are chosen (" + blas_kernels().summary() + ")";
  }
  if (const char* v = env("OPENBLAS_CORETYPE")) {
    return std::string("OPENBLAS_CORETYPE=") + v + " set by the environment: left as it is";
  }
  std::string bad;
  const char* forced = forced_coretype(&bad);
  if (!bad.empty()) bad += "; ";
  const std::string want = forced ? std::string(forced) : cpu_best_blas_core();
  if (want.empty()) return bad + "no OpenBLAS kernel family for this architecture: nothing set";
  if (setenv("OPENBLAS_CORETYPE", want.c_str(), 1) != 0) return bad + "setenv OPENBLAS_CORETYPE failed";
  return bad + "OPENBLAS_CORETYPE=" + want +
         (forced ? " (from SAM3_BLAS_CORETYPE)" : " (the CPU's best)") + " set before OpenBLAS is loaded";
}

std::string prepare_cpu_environment() {
  std::string s = prepare_blas_coretype();
  if (env("OMP_WAIT_POLICY") != nullptr) return s;
  if (void* h = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD)) {
    dlclose(h);
    return s + "; libgomp was loaded already: OMP_WAIT_POLICY left unset";
  }
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return s + "; setenv OMP_WAIT_POLICY failed";
  return s + "; OMP_WAIT_POLICY=PASSIVE set before libgomp is loaded";
}

void reexec_with_cpu_environment(char** argv) {
  if (argv == nullptr) return;
  bool changed = false;
  if (env("OMP_WAIT_POLICY") == nullptr && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0) {
    changed = true;
  }
  if (env("OPENBLAS_CORETYPE") == nullptr) {
    const BlasKernels k = blas_kernels();
    std::string bad;
    const char* forced = forced_coretype(&bad);
    if (!bad.empty()) std::fprintf(stderr, "warning: %s\n", bad.c_str());
    std::string want;
    if (forced != nullptr && !k.in_use.empty() && strcasecmp(forced, k.in_use.c_str()) != 0) {
      want = forced;
    } else if (forced == nullptr && k.below_cpu) {
      want = k.cpu_best;
    }
    if (!want.empty() && setenv("OPENBLAS_CORETYPE", want.c_str(), 1) == 0) changed = true;
  }
  if (changed) execv("/proc/self/exe", argv);
  // exec failed (or nothing to do): run on; the variables reach children only
}

}  // namespace sam3
