// Precompiled header: LibTorch's API headers dominate compile time.
#include <torch/torch.h>

#include <opencv2/core.hpp>
