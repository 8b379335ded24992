// Everything in layers/: Module, the layers, losses, initialisation and safetensors checkpoints.
#pragma once

#include "layers/activation.hpp"
#include "layers/batchnorm.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/init.hpp"
#include "layers/layernorm.hpp"
#include "layers/linear.hpp"
#include "layers/loss.hpp"
#include "layers/module.hpp"
#include "layers/safetensors.hpp"
#include "layers/sequential.hpp"
