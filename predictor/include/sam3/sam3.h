// gst-sam3 predictor: umbrella header. See image_predictor.h for usage.
#pragma once

#include "sam3/checkpoint.h"
#include "sam3/config.h"
#include "sam3/cpu_kernels.h"
#include "sam3/default_model.h"
#include "sam3/errors.h"
#include "sam3/image_predictor.h"
#include "sam3/model.h"
#include "sam3/version.h"
