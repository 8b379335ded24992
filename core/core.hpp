// Everything in core/: tensors, autograd, ops, gradcheck, threads and random numbers.
#pragma once

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/gradcheck.hpp"
#include "core/ops/activation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/linalg.hpp"
#include "core/ops/loss.hpp"
#include "core/ops/normalization.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/shape.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
