// Everything in distributed/ (built when MPI is found; link tapegrad::distributed):
// the collectives, DistributedDataParallel and SyncBatchNorm. DistributedSampler is in data/.
#pragma once

#include "collectives.hpp"
#include "ddp.hpp"
#include "sync_batchnorm.hpp"
