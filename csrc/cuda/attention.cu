// Scaled-dot-product attention, forward and backward, in FP32 on the CUDA cores
// (flash-attention style: scores live only in shared memory, never in global memory).
// Forward: one block per (b, q head, query block) walks K/V tiles with an online softmax.
// Decode-sized Tq (<= 8) uses one block per (b, kv head, 8 (head, query) rows, key split)
// so all heads of a group share each K/V tile. When a launch would have too few blocks,
// keys are split and a second pass merges the splits in split order.
// Backward: delta = rowsum(dout * out); dK/dV: one block per (b, kv head, key block)
// loops over the group's q heads and the query tiles in a fixed order; dQ: one block
// per (b, q head, query block) loops over the key tiles. No atomics, and the split
// count depends only on the shapes, so every run gives the same bits.
// exp is __expf (ex2.approx, what --use_fast_math makes of expf anyway): a few ulp, well
// inside the 1e-5 CPU/GPU tolerance; outputs use correctly rounded division, lse a double log.
#include <cmath>
#include <cstdint>
#include <type_traits>
#include "../core/model_kernels.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "scratch.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr int kLanes = 16;  // threads across a tile row (half a warp: row reductions stay in-warp)
constexpr int kRows = 4;    // tile rows per thread
constexpr int kDecRows = 8;  // (head, query) rows per decode block
constexpr int kDecThreads = 128;
constexpr int kDecodeMaxTq = 8;
// Split keys until a launch has about this many blocks. Shape-only (not the SM count),
// so the same shapes give the same bits on every GPU.
constexpr int64_t kTargetBlocks = 264;
constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kMaxGridX = 2147483647;
constexpr int kMaxDh = 256;



__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__host__ __device__ __forceinline__ int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tile sizes per head-dim capacity DHT (Dh <= DHT, zero-padded). Chosen so every kernel's
// shared memory fits the 99 KiB per block of sm_86/sm_89 (and two blocks per SM on sm_80/90).
template <int DHT>
struct Tiles {
  static_assert(DHT % kLanes == 0 && DHT <= kMaxDh, "DHT must be a multiple of 16, at most 256");
  static constexpr int fwdQ = DHT <= 128 ? 64 : 32;
  static constexpr int fwdK = DHT <= 64 ? 64 : (DHT <= 128 ? 32 : 16);
  static constexpr int decK = DHT <= 64 ? 64 : (DHT <= 128 ? 32 : 16);
  static constexpr int dqQ = DHT <= 64 ? 64 : (DHT <= 128 ? 32 : 16);
  static constexpr int dqK = DHT <= 32 ? 64 : (DHT <= 128 ? 32 : 16);
  static constexpr int kvK = DHT <= 64 ? 64 : (DHT <= 128 ? 32 : 16);
  static constexpr int kvQ = DHT <= 128 ? 32 : 16;
  static constexpr int LD = DHT + 4;  // smem row stride: odd in float4s, so 8 rows hit 8 bank groups

  static constexpr size_t fwdSmem =
      4 * ((size_t(fwdQ) + 2 * fwdK) * LD + size_t(fwdK) * (fwdQ + 4) + fwdK);
  static constexpr size_t decSmem = 4 * ((size_t(kDecRows) + 2 * decK) * LD + size_t(kDecRows) * decK + decK);
  static constexpr size_t dqSmem = 4 * (2 * (size_t(dqQ) + dqK) * LD + size_t(dqK) * (dqQ + 4) + dqK);
  static constexpr size_t kvSmem =
      4 * (2 * (size_t(kvK) + kvQ) * LD + 2 * size_t(kvQ) * (kvK + 4) + 2 * kvQ + kvK);
};

struct AttnParams {
  const float* q;        // [B, Tq, Hq, Dh]
  const float* k;        // [B, Tk, Hkv, Dh], batch items kvStride apart (a KV cache read in place)
  const float* v;        // [B, Tk, Hkv, Dh], likewise
  const int32_t* mask;   // device [B, Tk] or nullptr
  const float* dout;     // [B, Tq, Hq, Dh]
  const float* out;      // [B, Tq, Hq, Dh]
  const float* lse;      // [B, Hq, Tq]
  const float* delta;    // [B, Hq, Tq]
  float* o;              // [B, Tq, Hq, Dh]
  float* lseOut;         // [B, Hq, Tq]
  float* dq;             // [B, Tq, Hq, Dh]
  float* dk;             // [B, Tk, Hkv, Dh]
  float* dv;             // [B, Tk, Hkv, Dh]
  float* partO;          // [splits, B, Hq, Tq, Dh] unnormalised, or nullptr (no split)
  float* partM;          // [splits, B, Hq, Tq] running max
  float* partL;          // [splits, B, Hq, Tq] running sum
  int64_t B, Tq, Tk, Hq, Hkv, Dh, group, off;  // off = Tk - Tq: absolute position of query 0
  int64_t kvStride;                              // elements between batch items of k and v
  int64_t splits, tilesPerSplit;
  float scale;
  int causal;
  int vec;  // float4 global loads are legal (Dh % 4 == 0, 16-byte aligned bases)
};

// Flattened (y, z) block index: B * H may exceed the 65535 limit of grid.y.
__device__ __forceinline__ int64_t blockYZ() {
  return static_cast<int64_t>(blockIdx.y) + static_cast<int64_t>(gridDim.y) * blockIdx.z;
}

// Max/sum over the 16 lanes of a half-warp. Butterfly: partners add the same two values,
// so every lane ends with the same bits.
__device__ __forceinline__ float maxLanes16(float x) {
#pragma unroll
  for (int m = 8; m > 0; m >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, m));
  return x;
}
__device__ __forceinline__ float sumLanes16(float x) {
#pragma unroll
  for (int m = 8; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;
}
__device__ __forceinline__ float maxLanes32(float x) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, m));
  return x;
}
__device__ __forceinline__ float sumLanes32(float x) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;
}

// NR rows into S [NR][DHT + 4]: row r comes from rowPtr(r) (nullptr: zeros); zeros past Dh,
// so padded dims add exact zeros to every dot product.
template <int DHT, int NR, int NT, typename RowPtr>
__device__ __forceinline__ void loadTile(float* __restrict__ S, RowPtr rowPtr, int64_t Dh, bool vec) {
  constexpr int NQ = DHT / 4, LD = DHT + 4;
  for (int idx = threadIdx.x; idx < NR * NQ; idx += NT) {
    const int r = idx / NQ;
    const int d = (idx - r * NQ) * 4;
    float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
    const float* src = rowPtr(r);
    if (src != nullptr && d < Dh) {
      src += d;
      if (vec) {
        val = __ldg(reinterpret_cast<const float4*>(src));
      } else {
        val.x = __ldg(src);
        if (d + 1 < Dh) val.y = __ldg(src + 1);
        if (d + 2 < Dh) val.z = __ldg(src + 2);
        if (d + 3 < Dh) val.w = __ldg(src + 3);
      }
    }
    *reinterpret_cast<float4*>(S + r * LD + d) = val;
  }
}

// Rows [r0, r0 + NR) of x [B, T, H, Dh] at (b, h); batch items `batchStride` elements apart.
template <int DHT, int NR, int NT>
__device__ __forceinline__ void loadRows(float* __restrict__ S, const float* __restrict__ x, int64_t batchStride,
                                         int64_t b, int64_t T, int64_t H, int64_t h, int64_t Dh, int64_t r0,
                                         bool vec) {
  loadTile<DHT, NR, NT>(
      S,
      [=](int r) -> const float* {
        const int64_t t = r0 + r;
        return t < T ? x + b * batchStride + (t * H + h) * Dh : nullptr;
      },
      Dh, vec);
}

// Visible flags of keys [k0, k0 + N): inside Tk and not padding.
template <int N, int NT>
__device__ __forceinline__ void loadKeyFlags(int* __restrict__ Ms, const int32_t* __restrict__ mask, int64_t b,
                                             int64_t Tk, int64_t k0) {
  for (int j = threadIdx.x; j < N; j += NT) {
    const int64_t key = k0 + j;
    Ms[j] = key < Tk && (mask == nullptr || mask[b * Tk + key] != 0);
  }
}

// acc[r][j] = sum_d A[r][d] * Bm[tx + 16 j][d], rows of stride DHT + 4. Every kernel (and
// the decode path) sums d in this order with the same fmas, so the backward recomputes
// the forward's scores bit for bit.
template <int DHT, int NC>
__device__ __forceinline__ void dotTile(const float* __restrict__ A, const float* __restrict__ Bm, int tx,
                                        float (&acc)[kRows][NC]) {
  constexpr int LD = DHT + 4;
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int j = 0; j < NC; ++j) acc[r][j] = 0.f;
#pragma unroll 4
  for (int d = 0; d < DHT; d += 4) {
    float4 a[kRows], bq[NC];
#pragma unroll
    for (int r = 0; r < kRows; ++r) a[r] = *reinterpret_cast<const float4*>(A + r * LD + d);
#pragma unroll
    for (int j = 0; j < NC; ++j) bq[j] = *reinterpret_cast<const float4*>(Bm + (tx + kLanes * j) * LD + d);
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        acc[r][j] = fmaf(a[r].x, bq[j].x, acc[r][j]);
        acc[r][j] = fmaf(a[r].y, bq[j].y, acc[r][j]);
        acc[r][j] = fmaf(a[r].z, bq[j].z, acc[r][j]);
        acc[r][j] = fmaf(a[r].w, bq[j].w, acc[r][j]);
      }
  }
}

// acc[r][c] += sum_n P[n][r] * V[n][tx + 16 c] for n < N; P (stride LDP) is already offset
// to this thread's 4 rows, V has stride DHT + 4.
template <int DHT, int N, int LDP>
__device__ __forceinline__ void accumTile(const float* __restrict__ P, const float* __restrict__ V, int tx,
                                          float (&acc)[kRows][DHT / kLanes]) {
  constexpr int LD = DHT + 4, NO = DHT / kLanes;
#pragma unroll 4
  for (int n = 0; n < N; ++n) {
    const float4 p = *reinterpret_cast<const float4*>(P + n * LDP);
#pragma unroll
    for (int c = 0; c < NO; ++c) {
      const float x = V[n * LD + tx + kLanes * c];
      acc[0][c] = fmaf(p.x, x, acc[0][c]);
      acc[1][c] = fmaf(p.y, x, acc[1][c]);
      acc[2][c] = fmaf(p.z, x, acc[2][c]);
      acc[3][c] = fmaf(p.w, x, acc[3][c]);
    }
  }
}

// Writes one finished row: normalised out and lse, or the split's unnormalised partials.
// o holds NO values for columns col0 + stride * c.
template <int NO>
__device__ __forceinline__ void storeRow(const AttnParams& p, int64_t split, int64_t b, int64_t h, int64_t i,
                                         const float (&o)[NO], float m, float l, int col0, int stride,
                                         bool writeStats) {
  const int64_t bh = b * p.Hq + h;
  if (p.partO != nullptr) {
    const int64_t pr = (split * p.B * p.Hq + bh) * p.Tq + i;
    float* dst = p.partO + pr * p.Dh;
#pragma unroll
    for (int c = 0; c < NO; ++c) {
      const int col = col0 + stride * c;
      if (col < p.Dh) dst[col] = o[c];
    }
    if (writeStats) {
      p.partM[pr] = m;
      p.partL[pr] = l;
    }
    return;
  }
  float* dst = p.o + ((b * p.Tq + i) * p.Hq + h) * p.Dh;
#pragma unroll
  for (int c = 0; c < NO; ++c) {
    const int col = col0 + stride * c;
    if (col < p.Dh) dst[col] = l > 0.f ? __fdiv_rn(o[c], l) : 0.f;
  }
  if (writeStats)
    p.lseOut[bh * p.Tq + i] =
        l > 0.f ? static_cast<float>(static_cast<double>(m) + log(static_cast<double>(l))) : -INFINITY;
}

// ---- forward ------------------------------------------------------------------------
// grid (query blocks * splits, B * Hq over y/z); block 4 * BQ threads: thread (ty, tx)
// owns query rows 4 ty .. 4 ty + 3, score columns tx + 16 j, output columns tx + 16 c.
template <int DHT>
__global__ void __launch_bounds__(Tiles<DHT>::fwdQ * 4) fwdKernel(const AttnParams p) {
  constexpr int BQ = Tiles<DHT>::fwdQ, BK = Tiles<DHT>::fwdK, LD = Tiles<DHT>::LD;
  constexpr int NT = BQ * 4, LDP = BQ + 4, NC = BK / kLanes, NO = DHT / kLanes;
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // [BQ][LD]
  float* Ks = Qs + BQ * LD;                     // [BK][LD]
  float* Vs = Ks + BK * LD;                     // [BK][LD]
  float* Pt = Vs + BK * LD;                     // [BK][LDP] probabilities, key-major
  int* Ms = reinterpret_cast<int*>(Pt + BK * LDP);  // [BK]

  const int64_t bh = blockYZ();
  if (bh >= p.B * p.Hq) return;
  const int64_t b = bh / p.Hq, h = bh - b * p.Hq, hk = h / p.group;
  const int64_t nQB = ceilDiv(p.Tq, BQ);
  const int64_t split = blockIdx.x % p.splits;
  const int64_t q0 = (nQB - 1 - blockIdx.x / p.splits) * BQ;  // the longest causal rows start first
  const int tx = threadIdx.x % kLanes, ty = threadIdx.x / kLanes;

  const int64_t kEnd = p.causal ? imax(0, imin(p.Tk, p.off + imin(q0 + BQ, p.Tq))) : p.Tk;
  const int64_t nTiles = ceilDiv(kEnd, BK);
  const int64_t tBeg = split * p.tilesPerSplit;
  const int64_t tEnd = imin(nTiles, tBeg + p.tilesPerSplit);

  loadRows<DHT, BQ, NT>(Qs, p.q, p.Tq * p.Hq * p.Dh, b, p.Tq, p.Hq, h, p.Dh, q0, p.vec);
  // Row r of this thread sees key j when j - lim0 <= r (causal); lim0 is far above any key otherwise.
  const int64_t lim0 = p.causal ? p.off + q0 + ty * kRows : INT64_MAX / 2;
  float m[kRows], l[kRows], o[kRows][NO];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < NO; ++c) o[r][c] = 0.f;
  }

  for (int64_t t = tBeg; t < tEnd; ++t) {
    const int64_t k0 = t * BK;
    __syncthreads();  // the previous tile's Ks/Vs/Pt reads are done
    loadRows<DHT, BK, NT>(Ks, p.k, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
    loadRows<DHT, BK, NT>(Vs, p.v, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
    loadKeyFlags<BK, NT>(Ms, p.mask, b, p.Tk, k0);
    __syncthreads();

    float s[kRows][NC];
    dotTile<DHT, NC>(Qs + ty * kRows * LD, Ks, tx, s);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float mt = -INFINITY;
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        const int kj = tx + kLanes * j;
        const bool vis = Ms[kj] != 0 && k0 + kj - lim0 <= r;
        s[r][j] = vis ? s[r][j] * p.scale : -INFINITY;
        mt = fmaxf(mt, s[r][j]);
      }
      mt = maxLanes16(mt);
      const float mNew = fmaxf(m[r], mt);
      const float base = mNew == -INFINITY ? 0.f : mNew;  // nothing visible yet: p = 0, no NaN
      const float alpha = __expf(m[r] - base);
      float rs = 0.f;
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        s[r][j] = __expf(s[r][j] - base);
        rs += s[r][j];
      }
      rs = sumLanes16(rs);
      l[r] = l[r] * alpha + rs;
      m[r] = mNew;
#pragma unroll
      for (int c = 0; c < NO; ++c) o[r][c] *= alpha;
    }
#pragma unroll
    for (int j = 0; j < NC; ++j)
      *reinterpret_cast<float4*>(Pt + (tx + kLanes * j) * LDP + ty * kRows) =
          make_float4(s[0][j], s[1][j], s[2][j], s[3][j]);
    __syncthreads();
    accumTile<DHT, BK, LDP>(Pt + ty * kRows, Vs, tx, o);
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = q0 + ty * kRows + r;
    if (i < p.Tq) storeRow<NO>(p, split, b, h, i, o[r], m[r], l[r], tx, kLanes, tx == 0);
  }
}

// Decode: grid (row blocks * splits, B * Hkv over y/z), 128 threads. Rows are the
// (head in group, query) pairs of one kv head, so K/V tiles are shared by the group.
// Scores: thread -> (key tid % BK, RS rows); softmax and P.V: warp w owns rows 2w, 2w + 1.
template <int DHT>
__global__ void __launch_bounds__(kDecThreads) decodeKernel(const AttnParams p) {
  constexpr int R = kDecRows, NT = kDecThreads, BK = Tiles<DHT>::decK, LD = Tiles<DHT>::LD;
  constexpr int RS = R * BK / NT, NOC = (DHT + 31) / 32, NU = (BK + 31) / 32;
  static_assert(RS >= 1 && R * BK % NT == 0 && R == 2 * (NT / 32), "decode layout");
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // [R][LD]
  float* Ks = Qs + R * LD;                      // [BK][LD]
  float* Vs = Ks + BK * LD;                     // [BK][LD]
  float* Ss = Vs + BK * LD;                     // [R][BK] scores, then probabilities
  int* Ms = reinterpret_cast<int*>(Ss + R * BK);  // [BK]

  const int64_t bhk = blockYZ();
  if (bhk >= p.B * p.Hkv) return;
  const int64_t b = bhk / p.Hkv, hk = bhk - b * p.Hkv;
  const int64_t rowsPer = p.group * p.Tq;
  const int64_t split = blockIdx.x % p.splits;
  const int64_t r0 = (blockIdx.x / p.splits) * R;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  loadTile<DHT, R, NT>(
      Qs,
      [&](int r) -> const float* {
        const int64_t gr = r0 + r;
        if (gr >= rowsPer) return nullptr;
        const int64_t g = gr / p.Tq, i = gr - g * p.Tq;
        return p.q + ((b * p.Tq + i) * p.Hq + hk * p.group + g) * p.Dh;
      },
      p.Dh, p.vec);

  const int key = tid % BK, rg = tid / BK;
  int64_t lim[RS];  // last visible key of the score rows; -1: padding row
#pragma unroll
  for (int u = 0; u < RS; ++u) {
    const int64_t gr = r0 + rg * RS + u;
    lim[u] = gr >= rowsPer ? -1 : (p.causal ? p.off + gr % p.Tq : INT64_MAX);
  }
  float m[2], l[2], o[2][NOC];
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    m[w] = -INFINITY;
    l[w] = 0.f;
#pragma unroll
    for (int c = 0; c < NOC; ++c) o[w][c] = 0.f;
  }

  const int64_t nTiles = ceilDiv(p.Tk, BK);  // off + Tq = Tk: causal limits never cut the range
  const int64_t tBeg = split * p.tilesPerSplit;
  const int64_t tEnd = imin(nTiles, tBeg + p.tilesPerSplit);
  for (int64_t t = tBeg; t < tEnd; ++t) {
    const int64_t k0 = t * BK;
    __syncthreads();
    loadRows<DHT, BK, NT>(Ks, p.k, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
    loadRows<DHT, BK, NT>(Vs, p.v, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
    loadKeyFlags<BK, NT>(Ms, p.mask, b, p.Tk, k0);
    __syncthreads();

    float acc[RS];
#pragma unroll
    for (int u = 0; u < RS; ++u) acc[u] = 0.f;
#pragma unroll 4
    for (int d = 0; d < DHT; d += 4) {
      const float4 kv = *reinterpret_cast<const float4*>(Ks + key * LD + d);
#pragma unroll
      for (int u = 0; u < RS; ++u) {
        const float4 qv = *reinterpret_cast<const float4*>(Qs + (rg * RS + u) * LD + d);
        acc[u] = fmaf(qv.x, kv.x, acc[u]);
        acc[u] = fmaf(qv.y, kv.y, acc[u]);
        acc[u] = fmaf(qv.z, kv.z, acc[u]);
        acc[u] = fmaf(qv.w, kv.w, acc[u]);
      }
    }
    const bool keyOk = Ms[key] != 0;
#pragma unroll
    for (int u = 0; u < RS; ++u)
      Ss[(rg * RS + u) * BK + key] = keyOk && k0 + key <= lim[u] ? acc[u] * p.scale : -INFINITY;
    __syncthreads();

#pragma unroll
    for (int w = 0; w < 2; ++w) {
      float* row = Ss + (warp * 2 + w) * BK;
      float sv[NU];
      float mt = -INFINITY;
#pragma unroll
      for (int u = 0; u < NU; ++u) {
        const int n = lane + 32 * u;
        sv[u] = (BK % 32 == 0 || n < BK) ? row[n] : -INFINITY;
        mt = fmaxf(mt, sv[u]);
      }
      mt = maxLanes32(mt);
      const float mNew = fmaxf(m[w], mt);
      const float base = mNew == -INFINITY ? 0.f : mNew;
      const float alpha = __expf(m[w] - base);
      float rs = 0.f;
#pragma unroll
      for (int u = 0; u < NU; ++u) {
        const int n = lane + 32 * u;
        sv[u] = __expf(sv[u] - base);
        rs += sv[u];
        if (BK % 32 == 0 || n < BK) row[n] = sv[u];
      }
      rs = sumLanes32(rs);
      l[w] = l[w] * alpha + rs;
      m[w] = mNew;
#pragma unroll
      for (int c = 0; c < NOC; ++c) o[w][c] *= alpha;
    }
    __syncwarp();  // each warp reads back only its own two rows

    const float* p0 = Ss + (warp * 2) * BK;
    const float* p1 = p0 + BK;
#pragma unroll 4
    for (int n = 0; n < BK; ++n) {
      const float a0 = p0[n], a1 = p1[n];
#pragma unroll
      for (int c = 0; c < NOC; ++c) {
        const int col = lane + 32 * c;
        if (DHT % 32 == 0 || col < DHT) {
          const float x = Vs[n * LD + col];
          o[0][c] = fmaf(a0, x, o[0][c]);
          o[1][c] = fmaf(a1, x, o[1][c]);
        }
      }
    }
  }

#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const int64_t gr = r0 + warp * 2 + w;
    if (gr >= rowsPer) continue;
    const int64_t g = gr / p.Tq, i = gr - g * p.Tq;
    storeRow<NOC>(p, split, b, hk * p.group + g, i, o[w], m[w], l[w], lane, 32, lane == 0);
  }
}

// Merges the key splits of every (b, h, i) row in split order: one warp per row.
__global__ void __launch_bounds__(256) combineKernel(const AttnParams p) {
  const int64_t rows = p.B * p.Hq * p.Tq;
  const int lane = threadIdx.x & 31;
  const int64_t firstWarp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warpStride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = firstWarp; row < rows; row += warpStride) {
    const int64_t bh = row / p.Tq, i = row - bh * p.Tq;
    const int64_t b = bh / p.Hq, h = bh - b * p.Hq;
    float M = -INFINITY;
    for (int64_t s = 0; s < p.splits; ++s) M = fmaxf(M, p.partM[s * rows + row]);
    const float base = M == -INFINITY ? 0.f : M;
    float L = 0.f;
    for (int64_t s = 0; s < p.splits; ++s) L += __expf(p.partM[s * rows + row] - base) * p.partL[s * rows + row];
    float* dst = p.o + ((b * p.Tq + i) * p.Hq + h) * p.Dh;
    for (int64_t col = lane; col < p.Dh; col += 32) {
      float acc = 0.f;
      for (int64_t s = 0; s < p.splits; ++s)
        acc += __expf(p.partM[s * rows + row] - base) * p.partO[(s * rows + row) * p.Dh + col];
      dst[col] = L > 0.f ? __fdiv_rn(acc, L) : 0.f;
    }
    if (lane == 0)
      p.lseOut[row] = L > 0.f ? static_cast<float>(static_cast<double>(M) + log(static_cast<double>(L))) : -INFINITY;
  }
}

// ---- backward ---------------------------------------------------------------------
// delta [B, Hq, Tq] = rowsum(dout * out): one warp per row, fixed lane order.
__global__ void __launch_bounds__(256) deltaKernel(const AttnParams p, float* __restrict__ delta) {
  const int64_t rows = p.B * p.Hq * p.Tq;
  const int lane = threadIdx.x & 31;
  const int64_t firstWarp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warpStride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = firstWarp; row < rows; row += warpStride) {
    const int64_t bh = row / p.Tq, i = row - bh * p.Tq;
    const int64_t b = bh / p.Hq, h = bh - b * p.Hq;
    const int64_t base = ((b * p.Tq + i) * p.Hq + h) * p.Dh;
    float acc = 0.f;
    for (int64_t col = lane; col < p.Dh; col += 32) acc = fmaf(p.dout[base + col], p.out[base + col], acc);
    acc = sumLanes32(acc);
    if (lane == 0) delta[row] = acc;
  }
}

// lse as the backward uses it: a row that saw no key gets +inf, so every p = exp(s - lse) is 0.
__device__ __forceinline__ float bwdLse(const AttnParams& p, int64_t bh, int64_t i) {
  if (i >= p.Tq) return INFINITY;
  const float v = p.lse[bh * p.Tq + i];
  return v == -INFINITY ? INFINITY : v;
}

// dQ: grid (query blocks, B * Hq over y/z); block 4 * BQ threads, layout as the forward.
// dq_i = scale * sum_j p_ij (dp_ij - delta_i) k_j, dp_ij = dout_i . v_j.
template <int DHT>
__global__ void __launch_bounds__(Tiles<DHT>::dqQ * 4) dqKernel(const AttnParams p) {
  constexpr int BQ = Tiles<DHT>::dqQ, BK = Tiles<DHT>::dqK, LD = Tiles<DHT>::LD;
  constexpr int NT = BQ * 4, LDP = BQ + 4, NC = BK / kLanes, NO = DHT / kLanes;
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);  // [BQ][LD]
  float* dOs = Qs + BQ * LD;                    // [BQ][LD]
  float* Ks = dOs + BQ * LD;                    // [BK][LD]
  float* Vs = Ks + BK * LD;                     // [BK][LD]
  float* dSt = Vs + BK * LD;                    // [BK][LDP] dS, key-major
  int* Ms = reinterpret_cast<int*>(dSt + BK * LDP);  // [BK]

  const int64_t bh = blockYZ();
  if (bh >= p.B * p.Hq) return;
  const int64_t b = bh / p.Hq, h = bh - b * p.Hq, hk = h / p.group;
  const int64_t q0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * BQ;
  const int tx = threadIdx.x % kLanes, ty = threadIdx.x / kLanes;
  const int64_t kEnd = p.causal ? imax(0, imin(p.Tk, p.off + imin(q0 + BQ, p.Tq))) : p.Tk;
  const int64_t nTiles = ceilDiv(kEnd, BK);

  loadRows<DHT, BQ, NT>(Qs, p.q, p.Tq * p.Hq * p.Dh, b, p.Tq, p.Hq, h, p.Dh, q0, p.vec);
  loadRows<DHT, BQ, NT>(dOs, p.dout, p.Tq * p.Hq * p.Dh, b, p.Tq, p.Hq, h, p.Dh, q0, p.vec);
  const int64_t lim0 = p.causal ? p.off + q0 + ty * kRows : INT64_MAX / 2;  // as in the forward
  float lseR[kRows], dR[kRows], acc[kRows][NO];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = q0 + ty * kRows + r;
    lseR[r] = bwdLse(p, bh, i);
    dR[r] = i < p.Tq ? p.delta[bh * p.Tq + i] : 0.f;
#pragma unroll
    for (int c = 0; c < NO; ++c) acc[r][c] = 0.f;
  }

  for (int64_t t = 0; t < nTiles; ++t) {
    const int64_t k0 = t * BK;
    __syncthreads();
    loadRows<DHT, BK, NT>(Ks, p.k, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
    loadRows<DHT, BK, NT>(Vs, p.v, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
    loadKeyFlags<BK, NT>(Ms, p.mask, b, p.Tk, k0);
    __syncthreads();

    float s[kRows][NC], dp[kRows][NC];
    dotTile<DHT, NC>(Qs + ty * kRows * LD, Ks, tx, s);
    dotTile<DHT, NC>(dOs + ty * kRows * LD, Vs, tx, dp);
#pragma unroll
    for (int j = 0; j < NC; ++j) {
      const int kj = tx + kLanes * j;
      const bool keyOk = Ms[kj] != 0;
      const int64_t rel = k0 + kj - lim0;
      float ds[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float pr = keyOk && rel <= r ? __expf(s[r][j] * p.scale - lseR[r]) : 0.f;
        ds[r] = pr * (dp[r][j] - dR[r]);
      }
      *reinterpret_cast<float4*>(dSt + kj * LDP + ty * kRows) = make_float4(ds[0], ds[1], ds[2], ds[3]);
    }
    __syncthreads();
    accumTile<DHT, BK, LDP>(dSt + ty * kRows, Ks, tx, acc);
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = q0 + ty * kRows + r;
    if (i >= p.Tq) continue;
    float* dst = p.dq + ((b * p.Tq + i) * p.Hq + h) * p.Dh;
#pragma unroll
    for (int c = 0; c < NO; ++c) {
      const int col = tx + kLanes * c;
      if (col < p.Dh) dst[col] = acc[r][c] * p.scale;
    }
  }
}

// dK/dV: grid (key blocks, B * Hkv over y/z); block 4 * BK threads: thread (ty, tx) owns
// keys 4 ty .. 4 ty + 3, query columns tx + 16 j, output columns tx + 16 c. The group's
// q heads and query tiles are visited in a fixed order, so the sums need no atomics.
template <int DHT>
__global__ void __launch_bounds__(Tiles<DHT>::kvK * 4) dkdvKernel(const AttnParams p) {
  constexpr int BK = Tiles<DHT>::kvK, BQ = Tiles<DHT>::kvQ, LD = Tiles<DHT>::LD;
  constexpr int NT = BK * 4, LDP = BK + 4, NC = BQ / kLanes, NO = DHT / kLanes;
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4);  // [BK][LD]
  float* Vs = Ks + BK * LD;                     // [BK][LD]
  float* Qs = Vs + BK * LD;                     // [BQ][LD]
  float* dOs = Qs + BQ * LD;                    // [BQ][LD]
  float* Pq = dOs + BQ * LD;                    // [BQ][LDP] P, query-major
  float* dSq = Pq + BQ * LDP;                   // [BQ][LDP] dS, query-major
  float* lseS = dSq + BQ * LDP;                 // [BQ]
  float* dltS = lseS + BQ;                      // [BQ]
  int* Ms = reinterpret_cast<int*>(dltS + BQ);  // [BK]

  const int64_t bhk = blockYZ();
  if (bhk >= p.B * p.Hkv) return;
  const int64_t b = bhk / p.Hkv, hk = bhk - b * p.Hkv;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * BK;
  const int tx = threadIdx.x % kLanes, ty = threadIdx.x / kLanes;

  loadRows<DHT, BK, NT>(Ks, p.k, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
  loadRows<DHT, BK, NT>(Vs, p.v, p.kvStride, b, p.Tk, p.Hkv, hk, p.Dh, k0, p.vec);
  loadKeyFlags<BK, NT>(Ms, p.mask, b, p.Tk, k0);

  float dk[kRows][NO], dv[kRows][NO];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int c = 0; c < NO; ++c) dk[r][c] = dv[r][c] = 0.f;

  // Causal: query i sees key j when off + i >= j, so queries below k0 - off see none of this block.
  const int64_t qtBeg = p.causal ? imax(0, k0 - p.off) / BQ : 0;
  const int64_t nQT = ceilDiv(p.Tq, BQ);
  for (int64_t g = 0; g < p.group; ++g) {
    const int64_t h = hk * p.group + g, bh = b * p.Hq + h;
    for (int64_t qt = qtBeg; qt < nQT; ++qt) {
      const int64_t q0 = qt * BQ;
      __syncthreads();  // the previous tile's Qs/dOs/Pq/dSq reads are done
      loadRows<DHT, BQ, NT>(Qs, p.q, p.Tq * p.Hq * p.Dh, b, p.Tq, p.Hq, h, p.Dh, q0, p.vec);
      loadRows<DHT, BQ, NT>(dOs, p.dout, p.Tq * p.Hq * p.Dh, b, p.Tq, p.Hq, h, p.Dh, q0, p.vec);
      for (int j = threadIdx.x; j < BQ; j += NT) {
        const int64_t i = q0 + j;
        lseS[j] = bwdLse(p, bh, i);
        dltS[j] = i < p.Tq ? p.delta[bh * p.Tq + i] : 0.f;
      }
      __syncthreads();

      float s[kRows][NC], dp[kRows][NC];
      dotTile<DHT, NC>(Ks + ty * kRows * LD, Qs, tx, s);
      dotTile<DHT, NC>(Vs + ty * kRows * LD, dOs, tx, dp);
      // key k0 + 4 ty + r is visible to query q0 + qj when rel0 + r - qj <= 0 (causal)
      const int64_t rel0 = p.causal ? k0 + ty * kRows - p.off - q0 : INT64_MIN / 2;
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        const int qj = tx + kLanes * j;
        const int64_t rel = rel0 - qj;
        const float lq = lseS[qj], dl = dltS[qj];
        float pr[kRows], ds[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const bool vis = Ms[ty * kRows + r] != 0 && rel + r <= 0;
          pr[r] = vis ? __expf(s[r][j] * p.scale - lq) : 0.f;
          ds[r] = pr[r] * (dp[r][j] - dl);
        }
        *reinterpret_cast<float4*>(Pq + qj * LDP + ty * kRows) = make_float4(pr[0], pr[1], pr[2], pr[3]);
        *reinterpret_cast<float4*>(dSq + qj * LDP + ty * kRows) = make_float4(ds[0], ds[1], ds[2], ds[3]);
      }
      __syncthreads();
      accumTile<DHT, BQ, LDP>(Pq + ty * kRows, dOs, tx, dv);
      accumTile<DHT, BQ, LDP>(dSq + ty * kRows, Qs, tx, dk);
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t key = k0 + ty * kRows + r;
    if (key >= p.Tk) continue;
    const int64_t off = ((b * p.Tk + key) * p.Hkv + hk) * p.Dh;
#pragma unroll
    for (int c = 0; c < NO; ++c) {
      const int col = tx + kLanes * c;
      if (col < p.Dh) {
        p.dk[off + col] = dk[r][c] * p.scale;
        p.dv[off + col] = dv[r][c];
      }
    }
  }
}

// ---- host -------------------------------------------------------------------------

// Calls f with the smallest compiled head-dim capacity that holds Dh.
template <typename F>
void withDht(int64_t Dh, F&& f) {
  if (Dh <= 32) f(std::integral_constant<int, 32>());
  else if (Dh <= 64) f(std::integral_constant<int, 64>());
  else if (Dh <= 80) f(std::integral_constant<int, 80>());
  else if (Dh <= 96) f(std::integral_constant<int, 96>());
  else if (Dh <= 128) f(std::integral_constant<int, 128>());
  else f(std::integral_constant<int, 256>());
}

// x blocks along grid.x; `rows` (B * heads) spread over grid.y and grid.z.
dim3 gridFor(int64_t x, int64_t rows, const char* what) {
  const int64_t y = imin(rows, kMaxGridYZ);
  const int64_t z = ceilDiv(rows, y);
  VALR_CHECK(x <= kMaxGridX && z <= kMaxGridYZ, Range, what << ": grid of " << x << " x " << rows << " blocks is too large");
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y), static_cast<unsigned>(z));
}

// Opts a kernel into more than 48 KiB of dynamic shared memory.
template <typename Kernel>
void prepareSmem(Kernel kernel, size_t bytes, int dev) {
  if (bytes <= 48 * 1024) return;
  int optin = 0;
  VALR_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  VALR_CHECK(bytes <= static_cast<size_t>(optin), Cuda,
             "attention: kernel needs " << bytes << " bytes of shared memory, the device allows " << optin);
  VALR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// Key splits for a launch of `base` blocks over `tiles` key tiles: enough splits to reach
// kTargetBlocks, each at least minTiles long. Depends on shapes only.
void chooseSplits(int64_t base, int64_t tiles, int64_t minTiles, int64_t& splits, int64_t& tilesPerSplit) {
  splits = 1;
  if (base > 0 && base < kTargetBlocks && tiles > 0)
    splits = imax(1, imin(ceilDiv(kTargetBlocks, base), tiles / imax(1, minTiles)));
  tilesPerSplit = tiles > 0 ? ceilDiv(tiles, splits) : 1;
  splits = tiles > 0 ? ceilDiv(tiles, tilesPerSplit) : 1;
}

void checkDims(const AttentionDims& d, const char* what) {
  VALR_CHECK(d.B >= 0 && d.Tq >= 0 && d.Tk >= 0 && d.Hq >= 0 && d.Hkv >= 0 && d.Dh >= 0, Shape,
             what << ": negative size");
  VALR_CHECK(d.Hkv > 0 && d.Hq % d.Hkv == 0, Shape,
             what << ": Hq = " << d.Hq << " is not a multiple of Hkv = " << d.Hkv);
  VALR_CHECK(d.kvBatchStride == 0 || d.kvBatchStride >= d.Tk * d.Hkv * d.Dh, Shape,
             what << ": kvBatchStride " << d.kvBatchStride << " < Tk * Hkv * Dh");
  VALR_CHECK(d.Dh <= kMaxDh, Argument, what << ": head dim " << d.Dh << " > " << kMaxDh << " is not supported");
}

AttnParams baseParams(const AttentionDims& d) {
  AttnParams p{};
  p.B = d.B;
  p.Tq = d.Tq;
  p.Tk = d.Tk;
  p.Hq = d.Hq;
  p.Hkv = d.Hkv;
  p.Dh = d.Dh;
  p.group = d.Hq / d.Hkv;
  p.off = d.Tk - d.Tq;
  p.kvStride = d.kvStride();
  p.scale = d.scale;
  p.causal = d.causal ? 1 : 0;
  p.splits = 1;
  p.tilesPerSplit = 1;
  return p;
}

int64_t warpGridBlocks(int64_t rows) { return imax(1, imin(ceilDiv(rows, 8), int64_t{1} << 20)); }

}  // namespace

void attentionForward(const float* q, const float* k, const float* v, const int32_t* keyMask, float* out, float* lse,
                      const AttentionDims& d) {
  if (d.B == 0 || d.Tq == 0 || d.Hq == 0) return;  // out and lse are empty
  checkDims(d, "attentionForward");
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  const size_t maskBytes = keyMask ? static_cast<size_t>(d.B * d.Tk) * sizeof(int32_t) : 0;
  Scratch dMask(dev, maskBytes);
  if (maskBytes)
    VALR_CUDA_CHECK(cudaMemcpyAsync(dMask.as<int32_t>(), keyMask, maskBytes, cudaMemcpyHostToDevice, s));

  AttnParams p = baseParams(d);
  p.q = q;
  p.k = k;
  p.v = v;
  p.mask = maskBytes ? dMask.as<int32_t>() : nullptr;
  p.o = out;
  p.lseOut = lse;
  p.vec = d.Dh % 4 == 0 && p.kvStride % 4 == 0 && aligned16(q) && aligned16(k) && aligned16(v);

  const bool decode = d.Tq <= kDecodeMaxTq;
  withDht(d.Dh, [&](auto dht) {
    constexpr int DHT = decltype(dht)::value;
    using T = Tiles<DHT>;
    int64_t blocksX, rowsYZ, tiles;
    if (decode) {
      blocksX = ceilDiv(p.group * d.Tq, kDecRows);
      rowsYZ = d.B * d.Hkv;
      tiles = ceilDiv(d.Tk, T::decK);
      chooseSplits(blocksX * rowsYZ, tiles, imax(1, 128 / T::decK), p.splits, p.tilesPerSplit);
    } else {
      blocksX = ceilDiv(d.Tq, T::fwdQ);
      rowsYZ = d.B * d.Hq;
      tiles = ceilDiv(d.Tk, T::fwdK);
      chooseSplits(blocksX * rowsYZ, tiles, imax(1, 256 / T::fwdK), p.splits, p.tilesPerSplit);
    }
    const dim3 grid = gridFor(blocksX * p.splits, rowsYZ, "attentionForward");

    const int64_t rows = d.B * d.Hq * d.Tq;
    const size_t partFloats = p.splits > 1 ? static_cast<size_t>(p.splits * rows) : 0;
    Scratch part(dev, (partFloats * static_cast<size_t>(d.Dh) + 2 * partFloats) * sizeof(float));
    if (p.splits > 1) {
      p.partO = part.as<float>();
      p.partM = p.partO + partFloats * static_cast<size_t>(d.Dh);
      p.partL = p.partM + partFloats;
    }

    if (decode) {
      prepareSmem(decodeKernel<DHT>, T::decSmem, dev);
      decodeKernel<DHT><<<grid, kDecThreads, T::decSmem, s>>>(p);
    } else {
      prepareSmem(fwdKernel<DHT>, T::fwdSmem, dev);
      fwdKernel<DHT><<<grid, T::fwdQ * 4, T::fwdSmem, s>>>(p);
    }
    VALR_CUDA_CHECK_LAUNCH();
    if (p.splits > 1) {
      combineKernel<<<static_cast<unsigned>(warpGridBlocks(rows)), 256, 0, s>>>(p);
      VALR_CUDA_CHECK_LAUNCH();
    }
  });
}

void attentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                       const float* lse, const int32_t* keyMask, float* dq, float* dk, float* dv,
                       const AttentionDims& d) {
  const bool anyDq = d.B > 0 && d.Tq > 0 && d.Hq > 0 && d.Dh > 0;
  const bool anyDkv = d.B > 0 && d.Tk > 0 && d.Hkv > 0 && d.Dh > 0;
  if (!anyDq && !anyDkv) return;
  checkDims(d, "attentionBackward");
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  const size_t maskBytes = keyMask ? static_cast<size_t>(d.B * d.Tk) * sizeof(int32_t) : 0;
  Scratch dMask(dev, maskBytes);
  if (maskBytes)
    VALR_CUDA_CHECK(cudaMemcpyAsync(dMask.as<int32_t>(), keyMask, maskBytes, cudaMemcpyHostToDevice, s));

  const int64_t rows = d.B * d.Hq * d.Tq;
  Scratch delta(dev, static_cast<size_t>(rows) * sizeof(float));  // [B, Hq, Tq]

  AttnParams p = baseParams(d);
  p.q = q;
  p.k = k;
  p.v = v;
  p.mask = maskBytes ? dMask.as<int32_t>() : nullptr;
  p.dout = dout;
  p.out = out;
  p.lse = lse;
  p.delta = delta.as<float>();
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.vec = d.Dh % 4 == 0 && p.kvStride % 4 == 0 && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout);

  if (rows > 0) {
    deltaKernel<<<static_cast<unsigned>(warpGridBlocks(rows)), 256, 0, s>>>(p, delta.as<float>());
    VALR_CUDA_CHECK_LAUNCH();
  }
  withDht(d.Dh, [&](auto dht) {
    constexpr int DHT = decltype(dht)::value;
    using T = Tiles<DHT>;
    if (anyDkv) {  // Tq == 0 or Hq == 0 still writes dk = dv = 0
      const dim3 grid = gridFor(ceilDiv(d.Tk, T::kvK), d.B * d.Hkv, "attentionBackward");
      prepareSmem(dkdvKernel<DHT>, T::kvSmem, dev);
      dkdvKernel<DHT><<<grid, T::kvK * 4, T::kvSmem, s>>>(p);
      VALR_CUDA_CHECK_LAUNCH();
    }
    if (anyDq) {  // Tk == 0 writes dq = 0
      const dim3 grid = gridFor(ceilDiv(d.Tq, T::dqQ), d.B * d.Hq, "attentionBackward");
      prepareSmem(dqKernel<DHT>, T::dqSmem, dev);
      dqKernel<DHT><<<grid, T::dqQ * 4, T::dqSmem, s>>>(p);
      VALR_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace cuda
}  // namespace valr
