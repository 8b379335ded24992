// Everything in core/: tensors, autograd, ops, gradcheck, threads and random numbers.
#pragma once

#include "autograd.hpp"
#include "creation.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "gradcheck.hpp"
#include "ops/activation.hpp"
#include "ops/conv.hpp"
#include "ops/elementwise.hpp"
#include "ops/linalg.hpp"
#include "ops/loss.hpp"
#include "ops/normalization.hpp"
#include "ops/reduce.hpp"
#include "ops/shape.hpp"
#include "parallel.hpp"
#include "random.hpp"
#include "tensor.hpp"
