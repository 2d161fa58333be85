// The collectives of data-parallel training (src/parallel/), over MPI: a separate addon, built only where Open MPI
// is installed (native/find-mpi.cjs), so that the engine builds and runs without it. Every MPI call is made from
// the JavaScript main thread (MPI_THREAD_FUNNELED). A watchdog bounds each collective: a rank that stops answering
// ends the job with a clear message instead of hanging it.
#include <dlfcn.h>
#include <mpi.h>
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

bool initialized = false;
double timeoutSeconds = 1800;

// A watchdog thread ends this rank when a collective outlives the timeout; mpirun then ends the others. The
// collectives themselves stay blocking (MPI's own progress loop: polling a non-blocking one from here, with sleeps
// between polls, measured 20x slower on large buffers). The watchdog makes no MPI call.
class Watchdog {
 public:
  void arm(const char* what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
      // Detached: it sleeps until armed, and process exit ends it.
      std::thread([this] { loop(); }).detach();
      started_ = true;
    }
    what_ = what;
    start_ = Clock::now();
    armed_ = true;
    cv_.notify_all();
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (!armed_) {
        cv_.wait(lock);
        continue;
      }
      const auto deadline =
          start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeoutSeconds));
      const auto armedAt = start_;
      cv_.wait_until(lock, deadline);
      if (armed_ && start_ == armedAt && Clock::now() >= deadline) {
        std::fprintf(stderr,
                     "aha: rank %d: %s waited %.0f s for the other ranks (AHA_MPI_TIMEOUT=%g): a rank is dead or "
                     "stuck; ending the job\n",
                     rank, what_, timeoutSeconds, timeoutSeconds);
        std::fflush(stderr);
        std::_Exit(3);
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  const char* what_ = "";
  Clock::time_point start_;
  bool armed_ = false;

 public:
  int rank = -1;
};

// Never destroyed: glibc's condition-variable destructor would wait for the sleeping watchdog at exit.
Watchdog& watchdog = *new Watchdog;

// Arms the watchdog for the lifetime of one collective.
struct Guard {
  explicit Guard(const char* what) { watchdog.arm(what); }
  ~Guard() { watchdog.disarm(); }
};

void requireInit(const Napi::Env& env) {
  if (!initialized) throw Napi::Error::New(env, "aha_mpi: init() was not called");
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() > 0 && info[0].IsNumber()) timeoutSeconds = info[0].As<Napi::Number>().DoubleValue();
  if (!initialized) {
    // Node loads addons with RTLD_LOCAL; Open MPI's plugins need libmpi's symbols global.
    if (!dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL);
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw Napi::Error::New(env, "MPI_Init_thread failed");
    // Errors end the job (MPI's default), with MPI's message naming the failing rank.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &watchdog.rank);
    initialized = true;
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  auto r = Napi::Object::New(env);
  r.Set("rank", rank);
  r.Set("size", size);
  return r;
}

// allreduceSum(Float32Array): sums in place across ranks, in chunks that fit MPI's int counts.
Napi::Value AllreduceSumF32(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  requireInit(env);
  auto a = info[0].As<Napi::Float32Array>();
  float* p = a.Data();
  size_t n = a.ElementLength();
  const size_t chunk = (size_t)1 << 28;
  for (size_t off = 0; off < n; off += chunk) {
    const int c = (int)std::min(chunk, n - off);
    Guard g("gradient all-reduce");
    MPI_Allreduce(MPI_IN_PLACE, p + off, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  return env.Undefined();
}

// allreduceF64(Float64Array, op): 'sum' | 'max' | 'min', in place (metrics, counts, checksums).
Napi::Value AllreduceF64(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  requireInit(env);
  auto a = info[0].As<Napi::Float64Array>();
  const std::string op = info[1].As<Napi::String>().Utf8Value();
  MPI_Op mop = op == "max" ? MPI_MAX : op == "min" ? MPI_MIN : MPI_SUM;
  Guard g("all-reduce");
  MPI_Allreduce(MPI_IN_PLACE, a.Data(), (int)a.ElementLength(), MPI_DOUBLE, mop, MPI_COMM_WORLD);
  return env.Undefined();
}

// allgatherBytes(Uint8Array): every rank's bytes, in rank order.
Napi::Value AllgatherBytes(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  requireInit(env);
  auto a = info[0].As<Napi::Uint8Array>();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (a.ByteLength() > (size_t)INT32_MAX) throw Napi::RangeError::New(env, "allgatherBytes: over 2 GiB");
  int mine = (int)a.ByteLength();
  std::vector<int> counts(size), displs(size);
  {
    Guard g("all-gather");
    MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  }
  size_t total = 0;
  for (int i = 0; i < size; i++) {
    displs[i] = (int)total;
    total += counts[i];
  }
  if (total > (size_t)INT32_MAX) throw Napi::RangeError::New(env, "allgatherBytes: over 2 GiB in all");
  auto out = Napi::Uint8Array::New(env, total);
  {
    Guard g("all-gather");
    MPI_Allgatherv(a.Data(), mine, MPI_BYTE, out.Data(), counts.data(), displs.data(), MPI_BYTE, MPI_COMM_WORLD);
  }
  auto parts = Napi::Array::New(env, size);
  for (int i = 0; i < size; i++)
    parts.Set(i, Napi::Uint8Array::New(env, counts[i], out.ArrayBuffer(), (size_t)displs[i]));
  return parts;
}

// broadcast(Uint8Array | Float32Array, root): in place; every rank's array has the same byte length.
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  requireInit(env);
  auto a = info[0].As<Napi::TypedArray>();
  const int root = info[1].As<Napi::Number>().Int32Value();
  auto* p = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  size_t n = a.ByteLength();
  const size_t chunk = (size_t)1 << 30;
  for (size_t off = 0; off < n; off += chunk) {
    Guard g("broadcast");
    MPI_Bcast(p + off, (int)std::min(chunk, n - off), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  return env.Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  requireInit(env);
  Guard g("barrier");
  MPI_Barrier(MPI_COMM_WORLD);
  return env.Undefined();
}

// abort(code, message): ends every rank of the job (mpirun reports which one asked).
Napi::Value Abort(const Napi::CallbackInfo& info) {
  const int code = info.Length() > 0 ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (info.Length() > 1) {
    std::fprintf(stderr, "%s\n", info[1].As<Napi::String>().Utf8Value().c_str());
    std::fflush(stderr);
  }
  if (initialized) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  if (initialized) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
  return info.Env().Undefined();
}

Napi::Value Wtime(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), MPI_Wtime()); }

Napi::Object ModuleInit(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("allreduceSumF32", Napi::Function::New(env, AllreduceSumF32));
  exports.Set("allreduceF64", Napi::Function::New(env, AllreduceF64));
  exports.Set("allgatherBytes", Napi::Function::New(env, AllgatherBytes));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("abort", Napi::Function::New(env, Abort));
  exports.Set("finalize", Napi::Function::New(env, Finalize));
  exports.Set("wtime", Napi::Function::New(env, Wtime));
  return exports;
}

}  // namespace

NODE_API_MODULE(aha_mpi, ModuleInit)
