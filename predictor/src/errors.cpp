#include "sam3/errors.h"

namespace sam3 {

namespace {
std::string join_problems(const std::string& what, const std::vector<std::string>& problems) {
  if (problems.empty()) return what;
  std::string msg = what + " (" + std::to_string(problems.size()) + " problem" +
                    (problems.size() == 1 ? "" : "s") + "):";
  for (const auto& p : problems) msg += "\n  - " + p;
  return msg;
}
}  // namespace

CheckpointError::CheckpointError(const std::string& what, std::vector<std::string> problems)
    : Error(join_problems(what, problems)), message_(what), problems_(std::move(problems)) {}

}  // namespace sam3
