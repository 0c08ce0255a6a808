#pragma once
#define SAM3_PREDICTOR_VERSION "0.1.0"
