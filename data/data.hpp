// Everything in data/: datasets, the loader, CSV and IDX files.
#pragma once

#include "csv.hpp"
#include "dataset.hpp"
#include "idx.hpp"
#include "sampler.hpp"
