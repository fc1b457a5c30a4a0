// The ttsbench C++ library: benchmark a TTS engine in this process (docs/LIBRARY.md).
#ifndef TTSBENCH_TTSBENCH_H_
#define TTSBENCH_TTSBENCH_H_

#include "ttsbench/benchmark.h"  // IWYU pragma: export
#include "ttsbench/engine.h"     // IWYU pragma: export

#endif  // TTSBENCH_TTSBENCH_H_
