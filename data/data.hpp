// Everything in data/: datasets, the loader, CSV and IDX files.
#pragma once

#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
