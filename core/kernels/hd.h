#pragma once
// MOELAB_HD marks per-element functions compiled for the host and, under nvcc, for the device too,
// so that one definition serves the cpu loops and the cuda kernels (docs/architecture.md §2).
#if defined(__CUDACC__)
#define MOELAB_HD __host__ __device__ __forceinline__
#else
#define MOELAB_HD inline
#endif
