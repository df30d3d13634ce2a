// cuda: device discovery, the per-device stream, cuBLAS handle and memory pool, and host<->device copies
// through pinned staging buffers. Device state is created on first use and never destroyed, so storages
// freed during static teardown find it still there (their frees are then ignored).
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/cuda_util.h"
#include "core/backend/device_select.h"

namespace moelab {

namespace cuda {

void throw_cuda_error(const char* file, int line, const char* expr, cudaError_t err) {
  std::ostringstream os;
  os << "CUDA error " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") in " << expr;
  if (err == cudaErrorIllegalAddress || err == cudaErrorLaunchFailure)
    os << "; a kernel faulted earlier on this stream (run with CUDA_LAUNCH_BLOCKING=1 to find which)";
  throw_error(file, line, os.str());
}

void throw_cublas_error(const char* file, int line, const char* expr, cublasStatus_t status) {
  std::ostringstream os;
  os << "cuBLAS error " << cublasGetStatusName(status) << " (" << cublasGetStatusString(status) << ") in "
     << expr;
  throw_error(file, line, os.str());
}

namespace {

// Host<->device copies go through two pinned buffers so that a large copy overlaps the host memcpy of
// one chunk with the DMA of the other; each buffer's event says when its last transfer finished.
constexpr size_t kStagingBytes = size_t(4) << 20;

struct DeviceState {
  std::once_flag init_once;
  cudaStream_t stream = nullptr;
  int sms = 1;
  std::mutex cublas_mu;
  cublasHandle_t cublas = nullptr;
  bool cublas_tf32 = false;
  std::mutex staging_mu;
  std::array<void*, 2> staging{nullptr, nullptr};
  std::array<cudaEvent_t, 2> staging_done{nullptr, nullptr};
};

struct Context {
  int count = 0;
  cudaError_t probe_error = cudaSuccess;
  std::vector<std::unique_ptr<DeviceState>> devices;
};

Context& context() {
  // Never destroyed: storages released at static teardown still look up their device here.
  static Context* ctx = [] {
    auto* c = new Context();
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      c->probe_error = err;
      n = 0;
      (void)cudaGetLastError();  // clear it: a missing driver is an answer here, not a failure
    }
    c->count = n;
    for (int i = 0; i < n; ++i) c->devices.push_back(std::make_unique<DeviceState>());
    return c;
  }();
  return *ctx;
}

DeviceState& state(int device) {
  Context& c = context();
  if (device < 0 || device >= c.count) [[unlikely]] {
    if (c.count == 0)
      MOELAB_FAIL("cuda:" << device << " requested, but " << cuda_device_summary(device)
                          << "; use the cpu device on this machine");
    MOELAB_FAIL("cuda:" << device << " requested, but this machine has " << c.count << " CUDA device(s)");
  }
  DeviceState& s = *c.devices[device];
  std::call_once(s.init_once, [&] {
    MOELAB_CUDA_CHECK(cudaSetDevice(device));
    MOELAB_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    MOELAB_CUDA_CHECK(cudaDeviceGetAttribute(&s.sms, cudaDevAttrMultiProcessorCount, device));
    // Keep freed blocks in the pool instead of returning them to the driver at every sync.
    cudaMemPool_t pool;
    MOELAB_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t keep_all = std::numeric_limits<uint64_t>::max();
    MOELAB_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  });
  return s;
}

bool is_teardown_error(cudaError_t err) {
  return err == cudaErrorCudartUnloading || err == cudaErrorContextIsDestroyed;
}

}  // namespace

int device_count() { return context().count; }

cudaStream_t stream(int device) {
  DeviceState& s = state(device);
  MOELAB_CUDA_CHECK(cudaSetDevice(device));
  return s.stream;
}

int sm_count(int device) { return state(device).sms; }

cublasHandle_t cublas(int device) {
  cudaStream_t st = stream(device);
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.cublas_mu);
  bool want_tf32 = cuda_allow_tf32();
  if (!s.cublas) {
    MOELAB_CUBLAS_CHECK(cublasCreate(&s.cublas));
    MOELAB_CUBLAS_CHECK(cublasSetStream(s.cublas, st));
    MOELAB_CUBLAS_CHECK(cublasSetPointerMode(s.cublas, CUBLAS_POINTER_MODE_HOST));
    s.cublas_tf32 = !want_tf32;  // force the math mode to be set below
  }
  if (s.cublas_tf32 != want_tf32) {
    MOELAB_CUBLAS_CHECK(
        cublasSetMathMode(s.cublas, want_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    s.cublas_tf32 = want_tf32;
  }
  return s.cublas;
}

void* pool_allocate(size_t nbytes, int device) {
  cudaStream_t st = stream(device);
  void* p = nullptr;
  cudaError_t err = cudaMallocAsync(&p, nbytes, st);
  if (err == cudaErrorMemoryAllocation) {
    // Blocks freed on the stream may still be pending: wait, hand cached blocks back, and try once more.
    (void)cudaGetLastError();
    MOELAB_CUDA_CHECK(cudaStreamSynchronize(st));
    cudaMemPool_t pool;
    MOELAB_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    MOELAB_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
    err = cudaMallocAsync(&p, nbytes, st);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      MOELAB_FAIL("out of memory on cuda:" << device << " allocating " << nbytes << " bytes ("
                                           << free_b / (1 << 20) << " MiB free of " << total_b / (1 << 20)
                                           << " MiB); reduce the batch size or the model");
    }
  }
  MOELAB_CUDA_CHECK(err);
  return p;
}

void pool_free(void* p, int device) noexcept {
  // Called from destructors: never throws. At process exit the runtime may already be gone; that is fine.
  if (!p) return;
  Context& c = context();
  if (device < 0 || device >= c.count) return;
  cudaError_t err = cudaSetDevice(device);
  if (err == cudaSuccess) err = cudaFreeAsync(p, c.devices[device]->stream);
  if (err != cudaSuccess && !is_teardown_error(err)) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
      std::fprintf(stderr, "moelab: warning: freeing device memory on cuda:%d failed: %s (%s)\n", device,
                   cudaGetErrorName(err), cudaGetErrorString(err));
  }
  (void)cudaGetLastError();
}

IndexFault::IndexFault(int device) : device_(device), slot_(sizeof(unsigned long long), device) {
  MOELAB_CUDA_CHECK(cudaMemsetAsync(slot_.get(), 0xff, sizeof(unsigned long long), stream(device)));
}

int64_t IndexFault::first_bad() const {
  cudaStream_t st = stream(device_);
  unsigned long long pos = 0;
  MOELAB_CUDA_CHECK(cudaMemcpyAsync(&pos, slot_.get(), sizeof(pos), cudaMemcpyDeviceToHost, st));
  MOELAB_CUDA_CHECK(cudaStreamSynchronize(st));
  return pos == ~0ull ? -1 : static_cast<int64_t>(pos);
}

void IndexFault::check(const char* kernel, const Tensor& index, int64_t limit) const {
  int64_t bad = first_bad();
  if (bad < 0) return;
  MOELAB_FAIL(kernel << ": index " << read_index_at(index, bad) << " at position " << bad
                     << " is out of range [0, " << limit << ")");
}

int64_t read_index_at(const Tensor& index, int64_t position) {
  cudaStream_t st = stream_for(index);
  size_t elem = dtype_size(index.dtype());
  int64_t v64 = 0;
  int32_t v32 = 0;
  void* host = index.dtype() == DType::i32 ? static_cast<void*>(&v32) : static_cast<void*>(&v64);
  MOELAB_CUDA_CHECK(cudaMemcpyAsync(host, static_cast<const char*>(index.raw_data()) + position * elem, elem,
                                    cudaMemcpyDeviceToHost, st));
  MOELAB_CUDA_CHECK(cudaStreamSynchronize(st));
  return index.dtype() == DType::i32 ? int64_t(v32) : v64;
}

namespace {

// Staging buffers of the device, allocated on first use. Caller holds s.staging_mu.
void ensure_staging(DeviceState& s, int device) {
  if (s.staging[0]) return;
  MOELAB_CUDA_CHECK(cudaSetDevice(device));
  for (int i = 0; i < 2; ++i) {
    MOELAB_CUDA_CHECK(cudaHostAlloc(&s.staging[i], kStagingBytes, cudaHostAllocPortable));
    MOELAB_CUDA_CHECK(cudaEventCreateWithFlags(&s.staging_done[i], cudaEventDisableTiming));
  }
}

// host -> device. Returns once the host source has been read; the DMA of the last chunk may still run.
void copy_host_to_device(const char* src, char* dst, size_t nbytes, int device) {
  cudaStream_t st = stream(device);
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.staging_mu);
  ensure_staging(s, device);
  for (size_t off = 0, chunk = 0; off < nbytes; off += kStagingBytes, ++chunk) {
    size_t len = std::min(kStagingBytes, nbytes - off);
    int b = static_cast<int>(chunk % 2);
    MOELAB_CUDA_CHECK(cudaEventSynchronize(s.staging_done[b]));  // the buffer's previous DMA is done
    std::memcpy(s.staging[b], src + off, len);
    MOELAB_CUDA_CHECK(cudaMemcpyAsync(dst + off, s.staging[b], len, cudaMemcpyHostToDevice, st));
    MOELAB_CUDA_CHECK(cudaEventRecord(s.staging_done[b], st));
  }
}

// device -> host. Synchronizes with the device stream (the host needs the values); this is one of the
// places where the host waits for the GPU.
void copy_device_to_host(const char* src, char* dst, size_t nbytes, int device) {
  cudaStream_t st = stream(device);
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.staging_mu);
  ensure_staging(s, device);
  size_t chunks = (nbytes + kStagingBytes - 1) / kStagingBytes;
  auto issue = [&](size_t chunk) {
    size_t off = chunk * kStagingBytes, len = std::min(kStagingBytes, nbytes - off);
    int b = static_cast<int>(chunk % 2);
    MOELAB_CUDA_CHECK(cudaMemcpyAsync(s.staging[b], src + off, len, cudaMemcpyDeviceToHost, st));
    MOELAB_CUDA_CHECK(cudaEventRecord(s.staging_done[b], st));
  };
  if (chunks > 0) issue(0);
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    if (chunk + 1 < chunks) issue(chunk + 1);  // its buffer was emptied in the previous iteration
    int b = static_cast<int>(chunk % 2);
    MOELAB_CUDA_CHECK(cudaEventSynchronize(s.staging_done[b]));
    size_t off = chunk * kStagingBytes, len = std::min(kStagingBytes, nbytes - off);
    std::memcpy(dst + off, s.staging[b], len);
  }
}

}  // namespace

}  // namespace cuda

// ---- CudaBackend: memory and copies ----

bool CudaBackend::available() const { return cuda::device_count() > 0; }

void* CudaBackend::device_allocate(size_t nbytes, Device d) {
  MOELAB_CHECK(d.is_cuda(), "cuda backend asked to allocate on " << d.str());
  if (nbytes == 0) return nullptr;
  return cuda::pool_allocate(nbytes, d.index);
}

void CudaBackend::device_free(void* p, Device d) { cuda::pool_free(p, d.index); }

void CudaBackend::copy_across(const Tensor& src, Tensor& dst) {
  MOELAB_CHECK(src.dtype() == dst.dtype() && src.numel() == dst.numel(),
               "copy_across: " << dtype_name(src.dtype()) << src.shape().str() << " -> "
                               << dtype_name(dst.dtype()) << dst.shape().str());
  MOELAB_CHECK(src.is_contiguous() && dst.is_contiguous(), "copy_across needs contiguous tensors");
  size_t nbytes = src.nbytes();
  if (nbytes == 0) return;
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  Device sd = src.device(), dd = dst.device();
  if (sd.is_cpu() && dd.is_cuda()) {
    cuda::copy_host_to_device(s, d, nbytes, dd.index);
  } else if (sd.is_cuda() && dd.is_cpu()) {
    cuda::copy_device_to_host(s, d, nbytes, sd.index);
  } else if (sd.is_cuda() && dd.is_cuda() && sd.index == dd.index) {
    MOELAB_CUDA_CHECK(cudaMemcpyAsync(d, s, nbytes, cudaMemcpyDeviceToDevice, cuda::stream(dd.index)));
  } else if (sd.is_cuda() && dd.is_cuda()) {
    // Between devices: wait for the source's producers, copy, and wait again so that the source may be
    // freed on its own stream right after (rare; clarity over overlap).
    MOELAB_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(sd.index)));
    cudaStream_t st = cuda::stream(dd.index);
    MOELAB_CUDA_CHECK(cudaMemcpyPeerAsync(d, dd.index, s, sd.index, nbytes, st));
    MOELAB_CUDA_CHECK(cudaStreamSynchronize(st));
  } else {
    std::memcpy(d, s, nbytes);
  }
}

void CudaBackend::synchronize() {
  cuda::Context& c = cuda::context();
  for (int i = 0; i < c.count; ++i) {
    cuda::DeviceState& s = *c.devices[i];
    if (s.stream) {
      MOELAB_CUDA_CHECK(cudaSetDevice(i));
      MOELAB_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    }
  }
}

namespace {
std::string device_summary(int index) {
  cuda::Context& c = cuda::context();
  if (c.count == 0) {
    if (c.probe_error != cudaSuccess)
      return std::string("no CUDA device is usable (cudaGetDeviceCount: ") + cudaGetErrorName(c.probe_error) +
             ", " + cudaGetErrorString(c.probe_error) + ")";
    return "no CUDA device is present";
  }
  if (index < 0 || index >= c.count) return "cuda:" + std::to_string(index) + " does not exist";
  cudaDeviceProp prop{};
  MOELAB_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  int driver = 0;
  MOELAB_CUDA_CHECK(cudaDriverGetVersion(&driver));
  std::ostringstream os;
  os.precision(1);
  os << "cuda:" << index << " " << prop.name << " (sm_" << prop.major << prop.minor << ", " << std::fixed
     << double(prop.totalGlobalMem) / double(1 << 30) << " GiB, driver " << driver / 1000 << "."
     << (driver % 1000) / 10 << ")";
  return os.str();
}

// The default pool's used-memory high-water mark (every device allocation comes from that pool).
uint64_t memory_high_water(int index) {
  (void)cuda::state(index);
  cudaMemPool_t pool;
  MOELAB_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, index));
  uint64_t high = 0;
  MOELAB_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high));
  return high;
}

void reset_memory_high_water(int index) {
  (void)cuda::state(index);
  cudaMemPool_t pool;
  MOELAB_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, index));
  uint64_t zero = 0;  // the only value this attribute accepts: restarts it at the bytes in use now
  MOELAB_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
}

Backend* backend() {
  static CudaBackend b;
  return &b;
}

// Registered at static initialization; the library is whole-archived into programs (core/CMakeLists.txt).
const bool registered = register_cuda_runtime(
    {&backend, &cuda::device_count, &device_summary, &memory_high_water, &reset_memory_high_water});
}  // namespace

}  // namespace moelab
