// gst-sam3 predictor: exception types.
//
// Every failure of the library is reported by throwing one of these (all derive
// from sam3::Error, itself a std::runtime_error), with a message that names
// what is wrong. Callers at a C boundary (the GStreamer plugin) catch
// sam3::Error / std::exception and convert; nothing else escapes.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace sam3 {

// Base class of every error thrown by the library.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The checkpoint file is missing, unreadable, corrupt, not a supported format,
// or its tensors do not fit the model. problems() lists every bad key
// ("missing key 'x'", "key 'y': expected shape [..], got [..]", ...).
class CheckpointError : public Error {
 public:
  explicit CheckpointError(const std::string& what, std::vector<std::string> problems = {});
  const std::vector<std::string>& problems() const noexcept { return problems_; }
  // what() without the problem list.
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
  std::vector<std::string> problems_;
};

// A configuration (JSON or struct) is malformed or inconsistent.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// An argument to a predictor call is invalid (shape, value, NaN, range ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// The call needs state that is not there (predict before set_image,
// predict_batch outside batch mode).
class NotReadyError : public Error {
 public:
  using Error::Error;
};

// The requested device / precision cannot be used (e.g. device=cuda in a build
// or on a machine without CUDA). Never silently replaced by the CPU.
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace sam3
