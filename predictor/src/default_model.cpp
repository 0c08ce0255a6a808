// Location of the bundled default model (see sam3/default_model.h).
#include "sam3/default_model.h"

#include <sys/stat.h>

namespace sam3 {

std::vector<std::string> default_model_candidates() {
  return {SAM3_MODEL_INSTALL_PATH, SAM3_MODEL_SOURCE_PATH};
}

std::string default_model_path() {
  const auto c = default_model_candidates();
  for (const auto& p : c) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
  }
  return c.front();
}

}  // namespace sam3
