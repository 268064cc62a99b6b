// One process-wide pool of worker threads for CPU kernels. The calling thread takes
// part in every job, so a pool of N threads has N-1 workers and never adds to the
// threads libuv already runs. Size: VALR_NUM_THREADS, else the hardware's count.
// A call from inside a job, or while another thread's job runs, runs inline: no
// nesting, no deadlock, no oversubscription.
#pragma once
#include <cstdint>
#include <functional>

namespace valr {

// fn(begin, end) is called on disjoint ranges covering [0, n). Ranges have at least
// `grain` items (except the last) so tiny jobs stay on one thread.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

int numThreads();
// Resizes the pool (1 = single-threaded). Safe to call between jobs.
void setNumThreads(int n);

}  // namespace valr
