// gst-sam3 predictor: where the bundled default model is.
//
//   auto model = sam3::Model::load(sam3::default_model_path());
//
// The default model (models/sam3-synth-small.safetensors, docs/training.md) is
// a small SAM 3 interactive model trained by this project on synthetic scenes;
// it is the default `model-file` of sam3segment and the default checkpoint of
// sam3-predict. default_model_path() returns the installed copy
// (<prefix>/share/gst-sam3/) when it exists, else the copy in the source tree
// the library was built from, else the installed path (so that an error names
// where the file was expected).
//
// Thread-safety: reentrant.
#pragma once

#include <string>
#include <vector>

namespace sam3 {

std::string default_model_path();
// Every place looked at, in order.
std::vector<std::string> default_model_candidates();

}  // namespace sam3
