// FP32 SGEMM (no tensor cores, no cuBLAS): C[b] (=|+=) alpha * op(A[b]) @ op(B[b]) (+ bias).
// Block tile BM x BN, K step BK, each thread an TM x TN register tile. A and B tiles go
// through double-buffered shared memory stored k-major ([BK][BM]), so the inner loop
// reads float4 fragments of both. Every C element is one thread's FMA chain over k in
// ascending order: the bits depend neither on the tile config nor on the launch.
#include <cstdint>
#include "../core/model_kernels.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr int kThreads = 256;  // both configs: 16 x 16 threads
constexpr int kGroupM = 8;     // tile rows walked together, so a band of B stays in L2

struct Params {
  int64_t M, N, K;
  const float* A;
  int64_t lda, strideA;
  const float* B;
  int64_t ldb, strideB;
  float* C;
  int64_t ldc, strideC;
  const float* bias;
  float alpha;
  int accumulate;
  int vecA, vecB, vecC;  // float4 access is legal (aligned base, ld and stride multiples of 4)
  int64_t batch;
  int64_t tilesM, tilesN;
};

// Global -> register loader of one operand tile: ROWS (M or N) x BK values.
// KCONTIG: the operand is stored [rows, K] (A plain, B transposed), quads run along k and
// are stored transposed into the k-major tile. Otherwise it is stored [K, rows] and quads
// run along rows. Out-of-range values load as 0. Pointers advance by one k tile per load,
// so the k loop does no 64-bit index math.
template <int ROWS, int BK, bool KCONTIG>
struct TileLoader {
  static constexpr int kQuads = ROWS * BK / 4 / kThreads;
  static_assert(kQuads >= 1 && ROWS * BK % (4 * kThreads) == 0, "tile does not split into thread quads");
  static constexpr int kLd = ROWS + 4;  // k-major row pitch: float4 aligned; transposed stores conflict-free at BK 8

  const float* ptr[kQuads];
  int rowsIn[kQuads];  // valid rows of the quad: 0/1 (KCONTIG) or 0..4
  int64_t step;           // pointer advance per k tile
  float4 reg[kQuads];

  __device__ __forceinline__ void init(const float* base, int64_t ld, int64_t row0, int64_t rows, int64_t K) {
    step = KCONTIG ? BK : BK * ld;
#pragma unroll
    for (int l = 0; l < kQuads; ++l) {
      const int q = threadIdx.x + l * kThreads;
      if (KCONTIG) {
        const int64_t r = row0 + q / (BK / 4);
        const int k = (q % (BK / 4)) * 4;
        rowsIn[l] = r < rows ? 1 : 0;
        ptr[l] = base + (r < rows ? r : 0) * ld + k;
      } else {
        const int k = q / (ROWS / 4);
        const int64_t r = row0 + (q % (ROWS / 4)) * 4;
        const int64_t left = rows - r;
        rowsIn[l] = left <= 0 ? 0 : left >= 4 ? 4 : static_cast<int>(left);
        ptr[l] = base + (rowsIn[l] ? r : 0) + (k < K ? k : 0) * ld;
      }
    }
  }

  // Loads the tile whose first k is k0 (the next one after init or the previous load).
  __device__ __forceinline__ void load(int64_t k0, int64_t K, bool vec) {
#pragma unroll
    for (int l = 0; l < kQuads; ++l) {
      const int q = threadIdx.x + l * kThreads;
      const int64_t left = K - k0 - (KCONTIG ? (q % (BK / 4)) * 4 : q / (ROWS / 4));  // k values left from the quad's k
      float v[4] = {0.f, 0.f, 0.f, 0.f};
      const float* p = ptr[l];
      if (KCONTIG) {
        if (rowsIn[l]) {
          if (vec && left >= 4) {
            const float4 t = __ldg(reinterpret_cast<const float4*>(p));
            v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
          } else {
#pragma unroll
            for (int j = 0; j < 4; ++j)
              if (j < left) v[j] = __ldg(p + j);
          }
        }
      } else if (left > 0) {
        if (vec && rowsIn[l] == 4) {
          const float4 t = __ldg(reinterpret_cast<const float4*>(p));
          v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (j < rowsIn[l]) v[j] = __ldg(p + j);
        }
      }
      reg[l] = make_float4(v[0], v[1], v[2], v[3]);
      ptr[l] += step;
    }
  }

  __device__ __forceinline__ void store(float (*tile)[kLd]) const {
#pragma unroll
    for (int l = 0; l < kQuads; ++l) {
      const int q = threadIdx.x + l * kThreads;
      if (KCONTIG) {
        const int r = q / (BK / 4), k = (q % (BK / 4)) * 4;
        tile[k + 0][r] = reg[l].x;
        tile[k + 1][r] = reg[l].y;
        tile[k + 2][r] = reg[l].z;
        tile[k + 3][r] = reg[l].w;
      } else {
        const int k = q / (ROWS / 4), r = (q % (ROWS / 4)) * 4;
        *reinterpret_cast<float4*>(&tile[k][r]) = reg[l];
      }
    }
  }
};

// Threads form a 16 x 16 grid; a warp is 4 (rows) x 8 (cols) of it, so a k step's
// fragment reads are 4 and 8 distinct float4s per warp (broadcasts, no conflicts).
// Thread (ty, tx) owns rows r * 4 * TY + ty * 4 + i and cols c * 4 * TX + tx * 4 + j.
template <int BM, int BN, int BK, int TM, int TN, bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 2) sgemmKernel(const Params p) {
  constexpr int TY = BM / TM, TX = BN / TN;
  static_assert(TY == 16 && TX == 16 && TM % 4 == 0 && TN % 4 == 0, "thread grid must be 16 x 16");
  constexpr int RM = TM / 4, RN = TN / 4;
  using LoaderA = TileLoader<BM, BK, !TA>;
  using LoaderB = TileLoader<BN, BK, TB>;
  __shared__ __align__(16) float As[2][BK][LoaderA::kLd];
  __shared__ __align__(16) float Bs[2][BK][LoaderB::kLd];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int ty = (warp / 2) * 4 + lane / 8;
  const int tx = (warp % 2) * 8 + lane % 8;
  const int64_t kTiles = (p.K + BK - 1) / BK;

  // Grouped order: kGroupM tile rows share each band of B while it is hot in L2.
  const int64_t tile = blockIdx.x;
  const int64_t perGroup = kGroupM * p.tilesN;
  const int64_t group = tile / perGroup;
  const int64_t firstM = group * kGroupM;
  const int64_t groupRows = p.tilesM - firstM < kGroupM ? p.tilesM - firstM : kGroupM;
  const int64_t inGroup = tile - group * perGroup;
  const int64_t m0 = (firstM + inGroup % groupRows) * BM;
  const int64_t n0 = (inGroup / groupRows) * BN;
  const int64_t b = blockIdx.z;
  const float* A = p.A + b * p.strideA;
  const float* B = p.B + b * p.strideB;
  float* C = p.C + b * p.strideC;

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  LoaderA la;
  LoaderB lb;
  la.init(A, p.lda, m0, p.M, p.K);
  lb.init(B, p.ldb, n0, p.N, p.K);
  if (kTiles > 0) {
    la.load(0, p.K, p.vecA);
    lb.load(0, p.K, p.vecB);
    la.store(As[0]);
    lb.store(Bs[0]);
  }
  __syncthreads();

  for (int64_t kt = 0; kt < kTiles; ++kt) {
    const int cur = static_cast<int>(kt & 1);
    const bool more = kt + 1 < kTiles;
    if (more) {  // next tile's loads in flight during this tile's math
      la.load((kt + 1) * BK, p.K, p.vecA);
      lb.load((kt + 1) * BK, p.K, p.vecB);
    }
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], bv[TN];
#pragma unroll
      for (int r = 0; r < RM; ++r) {
        const float4 t = *reinterpret_cast<const float4*>(&As[cur][kk][r * 4 * TY + ty * 4]);
        a[r * 4 + 0] = t.x, a[r * 4 + 1] = t.y, a[r * 4 + 2] = t.z, a[r * 4 + 3] = t.w;
      }
#pragma unroll
      for (int c = 0; c < RN; ++c) {
        const float4 t = *reinterpret_cast<const float4*>(&Bs[cur][kk][c * 4 * TX + tx * 4]);
        bv[c * 4 + 0] = t.x, bv[c * 4 + 1] = t.y, bv[c * 4 + 2] = t.z, bv[c * 4 + 3] = t.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
    }
    if (more) {
      // Buffer cur ^ 1 was last read in the previous iteration, before its barrier.
      la.store(As[cur ^ 1]);
      lb.store(Bs[cur ^ 1]);
      __syncthreads();
    }
  }

  // Epilogue as the CPU kernel: v = alpha * acc, then C + v when accumulating, then + bias[n].
  float bsv[TN];
#pragma unroll
  for (int c = 0; c < RN; ++c)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + c * 4 * TX + tx * 4 + j;
      bsv[c * 4 + j] = p.bias && n < p.N ? __ldg(p.bias + n) : 0.f;
    }
#pragma unroll
  for (int r = 0; r < RM; ++r)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t m = m0 + r * 4 * TY + ty * 4 + i;
      if (m >= p.M) continue;
      float* crow = C + m * p.ldc;
#pragma unroll
      for (int c = 0; c < RN; ++c) {
        const int64_t n = n0 + c * 4 * TX + tx * 4;
        float v[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          v[j] = __fmul_rn(acc[r * 4 + i][c * 4 + j], p.alpha);  // no FMA with the adds below
        }
        if (p.vecC && n + 3 < p.N) {
          float4* dst = reinterpret_cast<float4*>(crow + n);
          if (p.accumulate) {
            const float4 o = *dst;
            v[0] = o.x + v[0], v[1] = o.y + v[1], v[2] = o.z + v[2], v[3] = o.w + v[3];
          }
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (p.bias) v[j] += bsv[c * 4 + j];
          *dst = make_float4(v[0], v[1], v[2], v[3]);
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (n + j < p.N) {
              float o = p.accumulate ? crow[n + j] + v[j] : v[j];
              if (p.bias) o += bsv[c * 4 + j];
              crow[n + j] = o;
            }
        }
      }
    }
}


template <int BM, int BN, int BK, int TM, int TN>
void launch(Params p, cudaStream_t s, bool transA, bool transB) {
  p.tilesM = (p.M + BM - 1) / BM;
  p.tilesN = (p.N + BN - 1) / BN;
  const int64_t tiles = p.tilesM * p.tilesN;
  VALR_CHECK(tiles <= 0x7fffffff, Argument, "gemm: " << p.M << " x " << p.N << " output is too large");
  // grid.z holds at most 65535 batch items: larger batches go in several launches.
  const int64_t total = p.batch;
  for (int64_t b0 = 0; b0 < total; b0 += 65535) {
    Params q = p;
    q.batch = total - b0 < 65535 ? total - b0 : 65535;
    q.A += b0 * p.strideA;
    q.B += b0 * p.strideB;
    q.C += b0 * p.strideC;
    const dim3 grid(static_cast<unsigned>(tiles), 1, static_cast<unsigned>(q.batch));
    if (!transA && !transB)
      sgemmKernel<BM, BN, BK, TM, TN, false, false><<<grid, kThreads, 0, s>>>(q);
    else if (!transA && transB)
      sgemmKernel<BM, BN, BK, TM, TN, false, true><<<grid, kThreads, 0, s>>>(q);
    else if (transA && !transB)
      sgemmKernel<BM, BN, BK, TM, TN, true, false><<<grid, kThreads, 0, s>>>(q);
    else
      sgemmKernel<BM, BN, BK, TM, TN, true, true><<<grid, kThreads, 0, s>>>(q);
    VALR_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void gemm(const GemmArgs& a) {
  VALR_CHECK(a.M >= 0 && a.N >= 0 && a.K >= 0 && a.batch >= 0, Argument,
             "gemm: negative size M=" << a.M << " N=" << a.N << " K=" << a.K << " batch=" << a.batch);
  if (a.M == 0 || a.N == 0 || a.batch == 0) return;  // K == 0 still writes C = bias (+ C)
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  Params p{};
  p.M = a.M, p.N = a.N, p.K = a.K;
  p.A = a.A, p.lda = a.lda, p.strideA = a.strideA;
  p.B = a.B, p.ldb = a.ldb, p.strideB = a.strideB;
  p.C = a.C, p.ldc = a.ldc, p.strideC = a.strideC;
  p.bias = a.bias;
  p.alpha = a.alpha;
  p.accumulate = a.accumulate ? 1 : 0;
  p.batch = a.batch;
  p.vecA = aligned16(a.A) && a.lda % 4 == 0 && a.strideA % 4 == 0;
  p.vecB = aligned16(a.B) && a.ldb % 4 == 0 && a.strideB % 4 == 0;
  p.vecC = aligned16(a.C) && a.ldc % 4 == 0 && a.strideC % 4 == 0;

  // 128 x 128 tiles when they fill the GPU at least once, else 64 x 64 (4x the blocks).
  int sms = 0;
  VALR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int64_t bigTiles = ((a.M + 127) / 128) * ((a.N + 127) / 128) * a.batch;
  if (bigTiles >= sms)
    launch<128, 128, 8, 8, 8>(p, s, a.transA, a.transB);
  else
    launch<64, 64, 16, 4, 4>(p, s, a.transA, a.transB);
}

}  // namespace cuda
}  // namespace valr
