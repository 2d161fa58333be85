// The one thread every heavy engine call runs on. libgomp keeps a pool of worker threads for each thread that opens
// a parallel region, so calls run straight from libuv's pool (four threads) made up to four pools; once libgomp
// manages more threads than there are CPUs it stops spinning between regions, and each of a decode step's ~60
// parallel regions paid a futex wake-up (about a third of a step on the 27M shape at batch 1). One master thread
// means one pool, and omp_set_num_threads, a per-thread setting, means what it says.
#pragma once
#include <functional>

namespace aha {

// Runs f on the engine thread and waits for it; f's exception is rethrown here. Calls from several threads run one
// after another, in the order they arrive. f must not itself call runOnEngineThread.
void runOnEngineThread(const std::function<void()>& f);

}  // namespace aha
