#include "engineThread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace aha {

namespace {

struct Job {
  const std::function<void()>* f;
  std::promise<void> done;
};

class EngineThread {
 public:
  EngineThread() : thread_([this] { loop(); }) { thread_.detach(); }
  void run(const std::function<void()>& f) {
    // Shared with the engine thread, which may still be inside set_value when this thread wakes and returns.
    auto job = std::make_shared<Job>(Job{&f, {}});
    std::future<void> done = job->done.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // A job that queued another would wait for itself.
      if (std::this_thread::get_id() == id_) throw std::logic_error("runOnEngineThread called from the engine thread");
      queue_.push_back(job);
    }
    ready_.notify_one();
    done.get();  // rethrows f's exception
  }

 private:
  void loop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      id_ = std::this_thread::get_id();
    }
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      try {
        (*job->f)();
        job->done.set_value();
      } catch (...) {
        job->done.set_exception(std::current_exception());
      }
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::thread::id id_;
  std::thread thread_;
};

}  // namespace

void runOnEngineThread(const std::function<void()>& f) {
  // Started on first use and never joined: it lives as long as the process (the addon is never unloaded).
  static EngineThread* engine = new EngineThread();
  engine->run(f);
}

}  // namespace aha
