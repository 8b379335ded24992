// Everything in optim/: optimizers, learning-rate schedulers and gradient clipping.
#pragma once

#include "optim/adagrad.hpp"
#include "optim/adam.hpp"
#include "optim/adamw.hpp"
#include "optim/clip_grad.hpp"
#include "optim/cosine_annealing_lr.hpp"
#include "optim/exponential_lr.hpp"
#include "optim/linear_lr.hpp"
#include "optim/multi_step_lr.hpp"
#include "optim/optimizer.hpp"
#include "optim/reduce_lr_on_plateau.hpp"
#include "optim/rmsprop.hpp"
#include "optim/scheduler.hpp"
#include "optim/sgd.hpp"
#include "optim/step_lr.hpp"
