// SPDX-License-Identifier: Apache-2.0
// main() of the test programs that link the predictor: the CPU environment
// first (OPENBLAS_CORETYPE for the CPU's best kernels, OMP_WAIT_POLICY;
// sam3/cpu_kernels.h), as the tools do, then GoogleTest.
#include <gtest/gtest.h>

#include "sam3/cpu_kernels.h"

int main(int argc, char** argv) {
  sam3::reexec_with_cpu_environment(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
