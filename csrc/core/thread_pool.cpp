#include "thread_pool.h"
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace valr {
namespace {

thread_local bool tInsideJob = false;

class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int threads) {
    std::lock_guard<std::mutex> jobLock(jobMutex_);
    stop();
    start(threads);
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    int64_t maxChunks = (n + grain - 1) / grain;
    if (workers_.empty() || maxChunks <= 1 || tInsideJob) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> jobLock(jobMutex_, std::try_to_lock);
    if (!jobLock.owns_lock()) {  // another thread's job is running: do ours inline
      fn(0, n);
      return;
    }
    // A few chunks per thread evens out uneven rows without much scheduling cost.
    int64_t chunks = std::min<int64_t>(maxChunks, static_cast<int64_t>(size()) * 4);
    int64_t chunkSize = (n + chunks - 1) / chunks;
    chunks = (n + chunkSize - 1) / chunkSize;
    {
      // A worker still inside work() from the last job must leave before the job's
      // fields change under it.
      std::unique_lock<std::mutex> lk(mutex_);
      done_.wait(lk, [&] { return active_ == 0; });
      job_ = &fn;
      jobN_ = n;
      chunkSize_ = chunkSize;
      chunks_ = chunks;
      next_.store(0);
      pending_ = chunks;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(mutex_);
    done_.wait(lk, [&] { return pending_ == 0 && active_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start(int threads) {
    quit_ = false;
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { loop(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void loop() {
    tInsideJob = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mutex_);
        wake_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        ++active_;
      }
      work();
      std::lock_guard<std::mutex> lk(mutex_);
      if (--active_ == 0) done_.notify_all();
    }
  }

  // Claims chunks until none are left; the last finisher wakes the caller.
  void work() {
    bool wasInside = tInsideJob;
    tInsideJob = true;
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= chunks_) break;
      int64_t b = c * chunkSize_, e = std::min(jobN_, b + chunkSize_);
      try {
        (*job_)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> lk(mutex_);
      if (--pending_ == 0) done_.notify_all();
    }
    tInsideJob = wasInside;
  }

  std::vector<std::thread> workers_;
  std::mutex jobMutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool quit_ = false;
  uint64_t generation_ = 0;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t jobN_ = 0, chunkSize_ = 1, chunks_ = 0;
  std::atomic<int64_t> next_{0};
  int64_t pending_ = 0;
  int active_ = 0;  // workers inside work()
  std::exception_ptr error_;
};

int defaultThreads() {
  if (const char* env = std::getenv("VALR_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 1024) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

Pool& pool() {
  // Leaked on purpose: joining threads during static destruction at process exit
  // can deadlock when the addon is unloaded.
  static Pool* p = new Pool(defaultThreads());
  return *p;
}

}  // namespace

void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn);
}

int numThreads() { return pool().size(); }

void setNumThreads(int n) { pool().resize(std::max(1, std::min(n, 1024))); }

}  // namespace valr
