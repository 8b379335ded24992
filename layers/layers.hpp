// Everything in layers/: Module, the layers, losses, initialisation and safetensors checkpoints.
#pragma once

#include "activation.hpp"
#include "batchnorm.hpp"
#include "conv.hpp"
#include "dropout.hpp"
#include "embedding.hpp"
#include "flatten.hpp"
#include "init.hpp"
#include "layernorm.hpp"
#include "linear.hpp"
#include "loss.hpp"
#include "module.hpp"
#include "pad.hpp"
#include "pool.hpp"
#include "recurrent.hpp"
#include "safetensors.hpp"
#include "sequential.hpp"
