// Small device helpers shared by the kernels.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

namespace valr {
namespace cuda {

// float4 loads and stores need 16-byte alignment (a null pointer counts as aligned).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Element-type-generic add and zero, so one kernel template serves float and float4.
__device__ __forceinline__ float addv(float a, float b) { return a + b; }
__device__ __forceinline__ float4 addv(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
template <typename T>
__device__ __forceinline__ T zerov();
template <>
__device__ __forceinline__ float zerov<float>() {
  return 0.f;
}
template <>
__device__ __forceinline__ float4 zerov<float4>() {
  return make_float4(0.f, 0.f, 0.f, 0.f);
}

// Writes elements 4q..4q+3 of a row, stopping at D (the scalar path for unaligned rows).
__device__ __forceinline__ void storeQuad(float* row, int64_t q, int64_t D, bool vec, float4 v) {
  if (vec) {
    reinterpret_cast<float4*>(row)[q] = v;
    return;
  }
  const int64_t e = 4 * q;
  if (e < D) row[e] = v.x;
  if (e + 1 < D) row[e + 1] = v.y;
  if (e + 2 < D) row[e + 2] = v.z;
  if (e + 3 < D) row[e + 3] = v.w;
}

// exp(x) = 2^j * e^r with r = x - j ln2 (Cody-Waite, |r| <= ln2/2) and a degree-7
// Taylor polynomial (truncation < 0.1 ulp); 2^j applied as two exact power-of-two factors.
__device__ __forceinline__ float expAccurate(float x) {
  if (!(x == x)) return x;  // NaN
  const float xc = fminf(fmaxf(x, -104.f), 89.f);  // beyond: 0 (flushed) or inf
  const float j = rintf(xc * 1.44269504f);
  float r = fmaf(j, -0.693145751953125f, xc);  // ln2 high part: j * it is exact
  r = fmaf(j, -1.42860682030941723e-6f, r);    // ln2 low part
  float p = 1.98412698e-4f;  // 1/7!
  p = fmaf(p, r, 1.38888889e-3f);
  p = fmaf(p, r, 8.33333333e-3f);
  p = fmaf(p, r, 4.16666667e-2f);
  p = fmaf(p, r, 1.66666667e-1f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.f);
  p = fmaf(p, r, 1.f);
  const int ji = static_cast<int>(j);
  const int j1 = ji / 2, j2 = ji - j1;  // each in [-75, 65]: normal floats
  return p * __int_as_float((j1 + 127) << 23) * __int_as_float((j2 + 127) << 23);
}

}  // namespace cuda
}  // namespace valr
