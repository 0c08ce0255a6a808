// gst-sam3: which OpenBLAS kernels run LibTorch's CPU GEMMs, and making them
// the best the CPU supports.
//
// Debian's LibTorch takes its GEMMs from the system OpenBLAS (DYNAMIC_ARCH:
// one kernel family per CPU generation, chosen when the library is loaded).
// OpenBLAS 0.3.21 (Debian 12) does not recognise some newer CPUs and then
// silently uses its SSE3 "Prescott" kernels: 3.7x slower set_image on an
// AVX-512 Xeon. OpenBLAS reads OPENBLAS_CORETYPE once, in its constructor, so
// the choice has to be made before it is loaded into the process:
//   - programs: call reexec_with_cpu_environment(argv) first thing in main();
//     when the kernels in use rank below the CPU's best (or OMP_WAIT_POLICY is
//     unset, model.h) it sets the variables and re-executes the program;
//   - libraries loaded into processes we do not control (the GStreamer plugin,
//     a Python application): call prepare_cpu_environment() before the code that
//     links LibTorch is loaded; gst-plugin/plugin.cpp does so, then loads the
//     elements from a library of their own (docs/elements.md, "CPU kernels").
// Choice: the CPU's best family (cpu_best_blas_core()), or SAM3_BLAS_CORETYPE
// when set to a known family (an unknown name is reported and ignored). A user's own OPENBLAS_CORETYPE is never overridden.
//
// Usage:
//   int main(int argc, char** argv) {
//     sam3::reexec_with_cpu_environment(argv);   // may not return
//     ...
//     sam3::BlasKernels k = sam3::blas_kernels();
//     if (k.below_cpu) std::fprintf(stderr, "%s\n", k.summary().c_str());
//   }
//
// Thread-safety: all functions may be called from any thread;
// the prepare_* functions and reexec_with_cpu_environment() change the process
// environment (setenv) and belong at start-up, before other threads read it.
// No function throws.
#pragma once

#include <string>

namespace sam3 {

// The OpenBLAS x86-64 kernel family (OPENBLAS_CORETYPE spelling) that best
// fits this CPU's features and the OS's enabled register state: Cooperlake
// (AVX-512 + BF16), SkylakeX (AVX-512), Haswell / Zen (AVX2 + FMA),
// Sandybridge (AVX), Nehalem (SSE4.2), Core2 (SSSE3), Prescott; "" on other
// architectures. Sapphire Rapids CPUs get Cooperlake: OpenBLAS runs fp32 GEMM
// on the same kernels there, and 0.3.21 may not know the name.
std::string cpu_best_blas_core();

// Rank of an OpenBLAS x86-64 kernel family by the instruction set its kernels
// use (case-insensitive; Zen and Haswell share a rank); -1 when unknown.
int blas_core_rank(const std::string& name);

struct BlasKernels {
  std::string in_use;     // openblas_get_corename(); "" when OpenBLAS is not in the process
  std::string cpu_best;   // cpu_best_blas_core()
  std::string coretype;   // OPENBLAS_CORETYPE in the environment ("" if unset)
  bool below_cpu = false; // in_use ranks below cpu_best
  // One line, e.g. "OpenBLAS kernels Zen (the CPU's best: Zen)".
  std::string summary() const;
};

// The kernels OpenBLAS chose in this process, however it was loaded
// (libopenblas.so.0, or libblas.so.3 / libcblas.so.3 pointing at it, also by
// a library opened with RTLD_LOCAL).
BlasKernels blas_kernels();

// For code that runs before OpenBLAS is loaded: sets OPENBLAS_CORETYPE to
// SAM3_BLAS_CORETYPE or the CPU's best family unless OPENBLAS_CORETYPE is set
// already or OpenBLAS is loaded already (too late: nothing is changed).
// Returns what it did, one line, for a debug log.
std::string prepare_blas_coretype();

// prepare_blas_coretype(), and OMP_WAIT_POLICY=PASSIVE (model.h, CPU threading
// note) unless it is set or libgomp is loaded already. For the code that loads
// a library linking LibTorch into a process we do not control (the plugin).
std::string prepare_cpu_environment();

// Programs: OMP_WAIT_POLICY=PASSIVE when unset (model.h, CPU threading note)
// and, when the OpenBLAS kernels in use rank below the CPU's best (or differ
// from SAM3_BLAS_CORETYPE) and OPENBLAS_CORETYPE is unset, OPENBLAS_CORETYPE;
// re-executes the program (/proc/self/exe) when it changed either. Returns when
// nothing had to be done or exec failed.
void reexec_with_cpu_environment(char** argv);

}  // namespace sam3
