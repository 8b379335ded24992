// The whole of tapegrad: #include <tapegrad/tapegrad.hpp>
#pragma once

#include "core/core.hpp"
#include "data/data.hpp"
#include "layers/layers.hpp"
#include "optim/optim.hpp"
