// cuda: conv2d forward and backward through cuDNN (host code). Deterministic algorithms only (implicit
// GEMM forward, ALGO_1 for both backward passes), so repeated runs give the same bits; f32 uses FMA maths
// unless set_cuda_allow_tf32(true). Built only when CMake finds cuDNN (MOELAB_HAVE_CUDNN); otherwise these
// return false and the op layer runs im2col + cuBLAS.
#include "core/backend/cuda/cuda_backend.h"

#if MOELAB_HAVE_CUDNN
#include <cudnn.h>

#include <array>
#include <mutex>

#include "core/backend/cuda/cuda_util.h"
#include "core/backend/device_select.h"

#define MOELAB_CUDNN_CHECK(expr)                                                                         \
  do {                                                                                                   \
    cudnnStatus_t moelab_cudnn_st_ = (expr);                                                             \
    if (moelab_cudnn_st_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                           \
      ::moelab::throw_error(__FILE__, __LINE__,                                                          \
                            std::string("cuDNN call failed: ") + #expr + ": " +                          \
                                cudnnGetErrorString(moelab_cudnn_st_));                                  \
  } while (0)

namespace moelab {
namespace {

constexpr int kMaxDevices = 64;

// One cuDNN handle per device, created on first use and bound to the device's stream.
cudnnHandle_t cudnn_handle(int device) {
  static std::mutex mu;
  static std::array<cudnnHandle_t, kMaxDevices> handles{};
  MOELAB_CHECK(device >= 0 && device < kMaxDevices, "cuDNN: device index " << device << " out of range");
  cudaStream_t st = cuda::stream(device);  // also makes the device current
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[device]) MOELAB_CUDNN_CHECK(cudnnCreate(&handles[device]));
  MOELAB_CUDNN_CHECK(cudnnSetStream(handles[device], st));
  return handles[device];
}

cudnnDataType_t cudnn_type(DType t) {
  MOELAB_CHECK(t == DType::f32 || t == DType::f64, "cuDNN conv2d: float tensors only, got " << dtype_name(t));
  return t == DType::f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// The descriptors of one convolution: x (B, C, H, W), w (O, C, kh, kw), y (B, O, OH, OW).
class ConvDescriptors {
 public:
  ConvDescriptors(const Shape& xs, const Shape& ws, int64_t stride, int64_t pad, DType dtype) {
    const cudnnDataType_t t = cudnn_type(dtype);
    MOELAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    MOELAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    MOELAB_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    MOELAB_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    MOELAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, t, int(xs[0]), int(xs[1]), int(xs[2]),
                                                  int(xs[3])));
    MOELAB_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, t, CUDNN_TENSOR_NCHW, int(ws[0]), int(ws[1]), int(ws[2]),
                                                  int(ws[3])));
    MOELAB_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, int(pad), int(pad), int(stride), int(stride), 1, 1,
                                                       CUDNN_CROSS_CORRELATION, t));
    // FMA maths keeps f32 results at f32 rounding (no TF32) unless the config allowed TF32.
    MOELAB_CUDNN_CHECK(cudnnSetConvolutionMathType(
        conv, dtype == DType::f32 && cuda_allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int n = 0, c = 0, h = 0, wd = 0;
    MOELAB_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd));
    MOELAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, t, n, c, h, wd));
    out_shape = Shape{n, c, h, wd};
  }
  ~ConvDescriptors() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;

  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Shape out_shape;
};

// alpha = 1, beta = 0 in the data's precision (cuDNN reads them as float for f32, double for f64).
struct Scalars {
  explicit Scalars(DType t) : is_f32(t == DType::f32) {}
  const void* one() const { return is_f32 ? static_cast<const void*>(&f1) : static_cast<const void*>(&d1); }
  const void* zero() const { return is_f32 ? static_cast<const void*>(&f0) : static_cast<const void*>(&d0); }
  bool is_f32;
  float f1 = 1.f, f0 = 0.f;
  double d1 = 1.0, d0 = 0.0;
};

// Asks cuDNN how much workspace a call needs (size(&bytes)), then makes the call with that scratch
// (run(workspace, bytes)); each returns a cudnnStatus_t.
template <typename Size, typename Run>
void with_workspace(int device, Size size, Run run) {
  size_t bytes = 0;
  MOELAB_CUDNN_CHECK(size(&bytes));
  cuda::Scratch ws(bytes, device);
  MOELAB_CUDNN_CHECK(run(ws.get(), bytes));
}

}  // namespace

bool CudaBackend::conv2d_library(const Tensor& x, const Tensor& w, int64_t stride, int64_t pad, Tensor& out) {
  const int device = x.device().index;
  cudnnHandle_t h = cudnn_handle(device);
  ConvDescriptors d(x.shape(), w.shape(), stride, pad, x.dtype());
  MOELAB_CHECK(d.out_shape == out.shape(), "cuDNN conv2d: output " << out.shape().str() << ", cuDNN expects "
                                                                   << d.out_shape.str());
  const auto algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  Scalars s(x.dtype());
  with_workspace(
      device, [&](size_t* bytes) { return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, algo, bytes); },
      [&](void* ws, size_t bytes) {
        return cudnnConvolutionForward(h, s.one(), d.x, x.raw_data(), d.w, w.raw_data(), d.conv, algo, ws, bytes,
                                       s.zero(), d.y, out.raw_data());
      });
  return true;
}

bool CudaBackend::conv2d_library_backward(const Tensor& x, const Tensor& w, const Tensor& gy, int64_t stride,
                                          int64_t pad, Tensor* gx, Tensor* gw) {
  const int device = gy.device().index;
  cudnnHandle_t h = cudnn_handle(device);
  // x may be absent when only gx is wanted: its shape is gx's.
  const Shape xs = gx ? gx->shape() : x.shape();
  ConvDescriptors d(xs, w.shape(), stride, pad, gy.dtype());
  MOELAB_CHECK(d.out_shape == gy.shape(), "cuDNN conv2d backward: gradient " << gy.shape().str()
                                                                           << ", cuDNN expects " << d.out_shape.str());
  Scalars s(gy.dtype());
  if (gx) {
    const auto algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic
    with_workspace(
        device,
        [&](size_t* bytes) { return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, algo, bytes); },
        [&](void* ws, size_t bytes) {
          return cudnnConvolutionBackwardData(h, s.one(), d.w, w.raw_data(), d.y, gy.raw_data(), d.conv, algo, ws,
                                              bytes, s.zero(), d.x, gx->raw_data());
        });
  }
  if (gw) {
    const auto algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic
    with_workspace(
        device,
        [&](size_t* bytes) { return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, algo, bytes); },
        [&](void* ws, size_t bytes) {
          return cudnnConvolutionBackwardFilter(h, s.one(), d.x, x.raw_data(), d.y, gy.raw_data(), d.conv, algo, ws,
                                                bytes, s.zero(), d.w, gw->raw_data());
        });
  }
  return true;
}

}  // namespace moelab

#else  // built without cuDNN: the op layer's im2col + cuBLAS path serves

namespace moelab {
bool CudaBackend::conv2d_library(const Tensor&, const Tensor&, int64_t, int64_t, Tensor&) { return false; }
bool CudaBackend::conv2d_library_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, Tensor*,
                                          Tensor*) {
  return false;
}
}  // namespace moelab

#endif
