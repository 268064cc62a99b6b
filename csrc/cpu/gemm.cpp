// Float32 GEMM for the CPU backend (GemmArgs in model_kernels.h), GotoBLAS / BLIS style.
//
// Blocking, outermost first. MR x NR is the micro-kernel's register tile, kc <= 256 the
// K chunk; sized for 48 KiB L1 and 2 MiB L2 per core:
//   batch item
//     output tile, mc x nc with mc <= 1020, in parallel (one thread per tile)
//       K chunk of kc (the split depends on K alone)
//         pack op(A)[tile rows, chunk] into MR-row panels (per-thread buffer, <= 1 MiB)
//         block of <= 512 B columns (kc x 512 floats = 512 KiB: half of L2)
//           pack op(B)[chunk, block] into NR-column panels (per thread), or use the
//           panels packed up front (below)
//           for each MR-row panel of A (kc x MR, 12 KiB: stays in L1)
//             for each NR-column panel of B (streamed from L2): micro-kernel, write back
// With more than one row of tiles (M > 1020), op(B) is packed once up front, in
// parallel, and shared (in N superblocks of <= 8 MiB); otherwise each tile packs its own
// B blocks, each exactly once, with no extra pass over memory and no extra barrier.
// The tile grid packs the least for ~2 tiles per thread (small products) or 4 (large).
// While a block computes, the sources of the next A chunk / B block are prefetched into
// L2, so packing reads cache instead of DRAM.
//
// Packing gives op(A) and op(B) one layout whatever the transposes (transposes happen
// in the packing), so one micro-kernel serves all four cases. Panels are zero-padded
// at the edges and only valid rows / columns are written back, as
//   C = (accumulate or a later K chunk ? C : 0) + alpha * acc (+ bias, first chunk only).
// Determinism: every C element is written by one thread, and its sequence of operations
// (chunks in order, FMAs in k order) does not depend on tiles or thread count: tile
// edges fall on multiples of MR / NR and the K split depends on K alone.
//
// Micro-kernels, chosen once at run time (prebuilt binaries target baseline x86-64):
//   avx512  12 x 32  (24 zmm accumulators; a k step: 2 B loads, 12 A broadcasts, 24 FMAs)
//   avx2     6 x 16  (12 ymm accumulators, FMA)
//   generic  4 x 8   (plain C++ the compiler vectorises: SSE2 on x86-64, NEON on arm64)
// VALR_GEMM_ISA=avx512|avx2|generic (read once) caps the choice, for debugging.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include "../core/error.h"
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define VALR_GEMM_X86 1
#include <immintrin.h>
#define VALR_TARGET_AVX512 __attribute__((target("avx512f")))
#define VALR_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define VALR_GEMM_X86 0
#endif

namespace valr {
namespace cpu {

namespace {

constexpr int64_t kKcMax = 256;               // K chunk: a 12 x 256 A micro-panel is 12 KiB of L1
constexpr int64_t kMcMax = 1020;              // tile rows: packed A <= 1 MiB (multiple of 12, 6, 4)
constexpr int64_t kL2BlockFloats = int64_t(1) << 17;  // B block kc x nc: 512 KiB of L2 (half)
constexpr int64_t kPackedBMax = int64_t(2) << 20;  // floats of packed B per superblock (8 MiB)
constexpr int64_t kParallelFlops = int64_t(1) << 21;  // below this one thread is faster

// How a finished micro-tile is written: C = (loadC ? C : 0) + alpha * acc (+ bias[j]).
struct Tail {
  float alpha;
  bool loadC;
  const float* bias;  // already offset to the tile's first column, or nullptr
  const float* nextB;  // the next B micro-panel (kc x NR) to pull into L2 meanwhile, or nullptr
};

// acc[rows x cols] = sum over k < kc of a[k][r] * b[k][j]; a is MR-wide, b NR-wide.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows,
                             int cols, const Tail& t);
// One instance for a fixed row count (the template argument).
using TileKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int cols,
                            const Tail& t);

// Table of the instances K<1>::run ... K<MR>::run: table[rows - 1].
template <template <int> class K, int... R>
constexpr std::array<TileKernel, sizeof...(R)> kernelTable(std::integer_sequence<int, R...>) {
  return {K<R + 1>::run...};
}

// ---- generic micro-kernel ----------------------------------------------------------

constexpr int kGenMR = 4, kGenNR = 8;

template <int ROWS>
struct MicroGeneric {
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int cols, const Tail& t) {
    float acc[ROWS][kGenNR] = {};
    for (int64_t k = 0; k < kc; ++k, a += kGenMR, b += kGenNR)
      for (int r = 0; r < ROWS; ++r)
        for (int j = 0; j < kGenNR; ++j) acc[r][j] += a[r] * b[j];
    for (int r = 0; r < ROWS; ++r) {
      float* cr = c + r * ldc;
      for (int j = 0; j < cols; ++j) {
        float v = acc[r][j] * t.alpha;
        if (t.loadC) v = cr[j] + v;
        if (t.bias) v = v + t.bias[j];
        cr[j] = v;
      }
    }
  }
};

void kernelGeneric(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols,
                   const Tail& t) {
  static constexpr auto table = kernelTable<MicroGeneric>(std::make_integer_sequence<int, kGenMR>());
  table[size_t(rows - 1)](kc, a, b, c, ldc, cols, t);
}

#if VALR_GEMM_X86

// The x86 kernels name their accumulators (c0a, c0b, c1a, ...) instead of using arrays:
// GCC otherwise may keep an accumulator array in memory and store it every iteration.
// `if (ROWS > r)` is a compile-time test; unused accumulators vanish.
#define VALR_ROWS_6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define VALR_ROWS_12(X) VALR_ROWS_6(X) X(6) X(7) X(8) X(9) X(10) X(11)

// ---- AVX2 + FMA micro-kernel: 6 x 16 -----------------------------------------------

constexpr int kAvx2MR = 6, kAvx2NR = 16;

// One row of the write-back; m0 / m1 mask the valid lanes of a partial column panel
// (maskload never touches masked-out lanes).
VALR_TARGET_AVX2 inline void storeRowAvx2(float* cr, __m256 v0, __m256 v1, __m256i m0, __m256i m1, __m256 alpha,
                                          bool loadC, const float* bias, __m256 bias0, __m256 bias1) {
  v0 = _mm256_mul_ps(v0, alpha);
  v1 = _mm256_mul_ps(v1, alpha);
  if (loadC) {
    v0 = _mm256_add_ps(_mm256_maskload_ps(cr, m0), v0);
    v1 = _mm256_add_ps(_mm256_maskload_ps(cr + 8, m1), v1);
  }
  if (bias) {
    v0 = _mm256_add_ps(v0, bias0);
    v1 = _mm256_add_ps(v1, bias1);
  }
  _mm256_maskstore_ps(cr, m0, v0);
  _mm256_maskstore_ps(cr + 8, m1, v1);
}

template <int ROWS>
struct MicroAvx2 {
  VALR_TARGET_AVX2 static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int cols,
                                   const Tail& t) {
#define VALR_DECL(r) __m256 c##r##a = _mm256_setzero_ps(), c##r##b = _mm256_setzero_ps();
    VALR_ROWS_6(VALR_DECL)
#undef VALR_DECL
    for (int64_t k = 0; k < kc; ++k, a += kAvx2MR, b += kAvx2NR) {
      const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#define VALR_FMA(r)                                  \
  if (ROWS > r) {                                    \
    const __m256 ar = _mm256_broadcast_ss(a + r);    \
    c##r##a = _mm256_fmadd_ps(ar, b0, c##r##a);      \
    c##r##b = _mm256_fmadd_ps(ar, b1, c##r##b);      \
  }
      VALR_ROWS_6(VALR_FMA)
#undef VALR_FMA
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
    const __m256 alpha = _mm256_set1_ps(t.alpha);
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (t.bias) {
      bias0 = _mm256_maskload_ps(t.bias, m0);
      bias1 = _mm256_maskload_ps(t.bias + 8, m1);
    }
#define VALR_STORE(r) \
  if (ROWS > r) storeRowAvx2(c + r * ldc, c##r##a, c##r##b, m0, m1, alpha, t.loadC, t.bias, bias0, bias1);
    VALR_ROWS_6(VALR_STORE)
#undef VALR_STORE
  }
};

void kernelAvx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols,
                const Tail& t) {
  static constexpr auto table = kernelTable<MicroAvx2>(std::make_integer_sequence<int, kAvx2MR>());
  table[size_t(rows - 1)](kc, a, b, c, ldc, cols, t);
}

// ---- AVX-512 micro-kernel: 12 x 32 -------------------------------------------------

constexpr int kAvx512MR = 12, kAvx512NR = 32;

VALR_TARGET_AVX512 inline void storeRowAvx512(float* cr, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1,
                                              __m512 alpha, bool loadC, const float* bias, __m512 bias0,
                                              __m512 bias1) {
  v0 = _mm512_mul_ps(v0, alpha);
  v1 = _mm512_mul_ps(v1, alpha);
  if (loadC) {
    v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), v0);
    v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), v1);
  }
  if (bias) {
    v0 = _mm512_add_ps(v0, bias0);
    v1 = _mm512_add_ps(v1, bias1);
  }
  _mm512_mask_storeu_ps(cr, m0, v0);
  _mm512_mask_storeu_ps(cr + 16, m1, v1);
}

// With PREFETCH the loop also pulls t.nextB, the next B micro-panel (kc x 32 floats,
// 128 B per k), into L2: the first row of micro-tiles does this so that B does not
// arrive in a burst from L3 / DRAM when each panel's turn comes.
template <int ROWS, bool PREFETCH>
VALR_TARGET_AVX512 inline __attribute__((always_inline)) void avx512Tile(int64_t kc, const float* a, const float* b,
                                                                         float* c, int64_t ldc, int cols,
                                                                         const Tail& t) {
#define VALR_DECL(r) __m512 c##r##a = _mm512_setzero_ps(), c##r##b = _mm512_setzero_ps();
  VALR_ROWS_12(VALR_DECL)
#undef VALR_DECL
  // C is needed right after the loop: start fetching it now.
  if (t.loadC)
    for (int r = 0; r < ROWS; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 31), _MM_HINT_T0);
    }
  const char* pf = reinterpret_cast<const char*>(t.nextB);
  for (int64_t k = 0; k < kc; ++k, a += kAvx512MR, b += kAvx512NR) {
    if (PREFETCH) {
      _mm_prefetch(pf + k * 128, _MM_HINT_T1);
      _mm_prefetch(pf + k * 128 + 64, _MM_HINT_T1);
    }
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#define VALR_FMA(r)                               \
  if (ROWS > r) {                                 \
    const __m512 ar = _mm512_set1_ps(a[r]);       \
    c##r##a = _mm512_fmadd_ps(ar, b0, c##r##a);   \
    c##r##b = _mm512_fmadd_ps(ar, b1, c##r##b);   \
  }
    VALR_ROWS_12(VALR_FMA)
#undef VALR_FMA
  }
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
  const __m512 alpha = _mm512_set1_ps(t.alpha);
  __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
  if (t.bias) {
    bias0 = _mm512_maskz_loadu_ps(m0, t.bias);
    bias1 = _mm512_maskz_loadu_ps(m1, t.bias + 16);
  }
#define VALR_STORE(r) \
  if (ROWS > r) storeRowAvx512(c + r * ldc, c##r##a, c##r##b, m0, m1, alpha, t.loadC, t.bias, bias0, bias1);
  VALR_ROWS_12(VALR_STORE)
#undef VALR_STORE
}

template <int ROWS>
struct MicroAvx512 {
  VALR_TARGET_AVX512 static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int cols,
                                     const Tail& t) {
    if (t.nextB)
      avx512Tile<ROWS, true>(kc, a, b, c, ldc, cols, t);
    else
      avx512Tile<ROWS, false>(kc, a, b, c, ldc, cols, t);
  }
};

void kernelAvx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols,
                  const Tail& t) {
  static constexpr auto table = kernelTable<MicroAvx512>(std::make_integer_sequence<int, kAvx512MR>());
  table[size_t(rows - 1)](kc, a, b, c, ldc, cols, t);
}

#endif  // VALR_GEMM_X86

// ---- packing -----------------------------------------------------------------------

constexpr int64_t kPackAhead = 16;  // rows of X fetched ahead while packing

// Asks for the cache lines of x[0, n): into L1 (soon needed) or L2 (needed later).
// A hint only; nothing off x86.
template <bool L1 = true>
inline void prefetchRange(const float* x, int64_t n) {
#if VALR_GEMM_X86
  for (int64_t i = 0; i < n; i += 16)
    _mm_prefetch(reinterpret_cast<const char*>(x + i), L1 ? _MM_HINT_T0 : _MM_HINT_T1);
#else
  (void)x;
  (void)n;
#endif
}

// The part of X a packPanels call reads: `rows` rows of `len` floats, ld apart.
struct Region {
  const float* p = nullptr;
  int64_t rows = 0, len = 0, ld = 0;
};

Region packSource(const float* X, int64_t ld, bool kMajor, int64_t o0, int64_t outer, int64_t k0, int64_t kc) {
  return kMajor ? Region{X + k0 * ld + o0, kc, outer, ld} : Region{X + o0 * ld + k0, outer, kc, ld};
}

// Fetches the i-th of n slices of a region into L2: packing the next block then reads
// cache instead of DRAM, and the fetching overlaps the micro-kernels' arithmetic.
inline void prefetchSlice(const Region& r, int64_t i, int64_t n) {
  for (int64_t row = i * r.rows / n, end = (i + 1) * r.rows / n; row < end; ++row)
    prefetchRange<false>(r.p + row * r.ld, r.len);
}

// Packs op(X)[o0 + o, k0 + k] for o < outer, k < kc into panels of W along `outer`
// (W = MR for A, NR for B): dst[p * kc * W + k * W + w], zero past `outer`. X holds
// the element either k-major at X[k * ld + o] (A transposed, B as is) or outer-major
// at X[o * ld + k] (A as is, B transposed: a transpose).
template <int W>
void packPanels(const float* X, int64_t ld, bool kMajor, int64_t o0, int64_t outer, int64_t k0, int64_t kc,
                float* dst) {
  const int64_t full = outer / W;
  const int rest = int(outer % W);
  if (kMajor) {
    // Panel by panel: the writes are sequential, and the few lines each panel reads per
    // row of X are mostly the lines the previous panel read. The source is usually in
    // cache already (prefetchSlice); the first rows of a panel are fetched ahead anyway.
    for (int64_t p = 0; p * W < outer; ++p) {
      const int n = p < full ? W : rest;
      const float* src = X + k0 * ld + o0 + p * W;
      float* d = dst + p * kc * W;
      for (int64_t k = 0; k < kc; ++k, src += ld, d += W) {
        if (k + kPackAhead < kc) prefetchRange(src + kPackAhead * ld, n);
        if (n == W) {
          std::memcpy(d, src, W * sizeof(float));
        } else {
          for (int w = 0; w < n; ++w) d[w] = src[w];
          for (int w = n; w < W; ++w) d[w] = 0.f;
        }
      }
    }
    return;
  }
  for (int64_t p = 0; p * W < outer; ++p) {
    const int n = p < full ? W : rest;
    const float* src = X + (o0 + p * W) * ld + k0;
    float* d = dst + p * kc * W;
    int w = 0;
#if VALR_GEMM_X86
    // 4 x 4 SSE transposes (baseline x86-64): 4 rows of X become 4 lanes of 4 k's. K
    // goes in blocks of 16 so the panel rows being written stay in L1 across row groups.
    const int n4 = n / 4 * 4;
    const int64_t kc4 = kc / 4 * 4;
    for (int64_t kb = 0; kb < kc4; kb += 16) {
      const int64_t ke = std::min(kb + 16, kc4);
      for (int w4 = 0; w4 < n4; w4 += 4) {
        const float* s0 = src + w4 * ld;
        for (int64_t k = kb; k < ke; k += 4) {
          __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s0 + ld + k);
          __m128 r2 = _mm_loadu_ps(s0 + 2 * ld + k), r3 = _mm_loadu_ps(s0 + 3 * ld + k);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
          _mm_storeu_ps(d + k * W + w4, r0);
          _mm_storeu_ps(d + (k + 1) * W + w4, r1);
          _mm_storeu_ps(d + (k + 2) * W + w4, r2);
          _mm_storeu_ps(d + (k + 3) * W + w4, r3);
        }
      }
    }
    for (int w4 = 0; w4 < n4; ++w4)
      for (int64_t k = kc4; k < kc; ++k) d[k * W + w4] = src[w4 * ld + k];
    w = n4;
#endif
    for (; w < n; ++w) {
      const float* sw = src + w * ld;
      for (int64_t k = 0; k < kc; ++k) d[k * W + w] = sw[k];
    }
    if (n < W)
      for (int64_t k = 0; k < kc; ++k)
        for (int ww = n; ww < W; ++ww) d[k * W + ww] = 0.f;
  }
}

using PackFn = void (*)(const float*, int64_t, bool, int64_t, int64_t, int64_t, int64_t, float*);

struct Isa {
  const char* name;
  int mr, nr;
  MicroKernel kernel;
  PackFn packA, packB;  // packPanels<mr>, packPanels<nr>
};

#if VALR_GEMM_X86
bool isaAllowed(const char* name) {
  // VALR_GEMM_ISA caps the level: "avx2" allows avx2 and generic, and so on.
  static const char* cap = std::getenv("VALR_GEMM_ISA");
  if (!cap || !*cap) return true;
  const char* order[] = {"generic", "avx2", "avx512"};
  int capLevel = 2, level = 0;
  for (int i = 0; i < 3; ++i) {
    if (std::strcmp(cap, order[i]) == 0) capLevel = i;
    if (std::strcmp(name, order[i]) == 0) level = i;
  }
  return level <= capLevel;
}

#endif

Isa chooseIsa() {
#if VALR_GEMM_X86
  __builtin_cpu_init();
  if (isaAllowed("avx512") && __builtin_cpu_supports("avx512f"))
    return {"avx512", kAvx512MR, kAvx512NR, kernelAvx512, packPanels<kAvx512MR>, packPanels<kAvx512NR>};
  if (isaAllowed("avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {"avx2", kAvx2MR, kAvx2NR, kernelAvx2, packPanels<kAvx2MR>, packPanels<kAvx2NR>};
#endif
  return {"generic", kGenMR, kGenNR, kernelGeneric, packPanels<kGenMR>, packPanels<kGenNR>};
}

const Isa& isa() {
  static const Isa chosen = chooseIsa();
  return chosen;
}

// ---- scratch memory ----------------------------------------------------------------

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using FloatBuffer = std::unique_ptr<float, FreeDeleter>;

FloatBuffer allocFloats(int64_t n) {
  const size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  VALR_CHECK(p != nullptr, Oom, "gemm: out of host memory for a " << bytes << "-byte packing buffer");
  return FloatBuffer(p);
}

// A grow-only per-thread buffer: packing buffers are reused between calls, since a fresh
// multi-MiB block costs a page fault per 4 KiB on first touch. Sizes are bounded by the
// blocking (packed A <= kMcMax x kKcMax, packed B <= kPackedBMax floats).
struct ThreadBuffer {
  FloatBuffer buf;
  int64_t size = 0;
  float* get(int64_t n) {
    if (size < n) {
      buf.reset();  // free first: the old block is not needed, and memory may be short
      size = 0;
      buf = allocFloats(n);
      size = n;
    }
    return buf.get();
  }
};

float* threadPackA(int64_t n) {
  thread_local ThreadBuffer b;
  return b.get(n);
}

float* threadPackB(int64_t n) {
  thread_local ThreadBuffer b;
  return b.get(n);
}

// ---- driver ------------------------------------------------------------------------

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t roundUp(int64_t a, int64_t b) { return ceilDiv(a, b) * b; }

// Tile grid for `want` tiles over an M x N output: each tile packs its rows of A
// (M x K per column of tiles) and, unless B is packed up front, its columns of B
// (K x N per row of tiles). Pick the grid that packs the least.
void chooseTiles(int64_t M, int64_t N, int64_t MR, int64_t NR, int64_t want, bool sharedB, int64_t* mc,
                 int64_t* nc) {
  const int64_t minTilesM = ceilDiv(M, kMcMax);
  double best = -1;
  for (int64_t tm = minTilesM; tm <= ceilDiv(M, MR); ++tm) {
    const int64_t m = roundUp(ceilDiv(M, tm), MR);
    const int64_t tn = std::min(ceilDiv(want, ceilDiv(M, m)), ceilDiv(N, NR));
    const int64_t n = roundUp(ceilDiv(N, tn), NR);
    const double cost = double(ceilDiv(N, n)) * double(M) + (sharedB ? 0.0 : double(ceilDiv(M, m)) * double(N));
    if (best < 0 || cost < best) {
      best = cost;
      *mc = m;
      *nc = n;
    }
    if (ceilDiv(M, m) >= want) break;  // more rows only add packing
  }
}

// One product C = op(A) op(B) (M, N, K > 0) for the pointers of one batch item.
void gemmOne(const Isa& k, const GemmArgs& g, const float* A, const float* B, float* C, bool parallel) {
  const int64_t M = g.M, N = g.N, K = g.K, MR = k.mr, NR = k.nr;
  // The K split depends on K alone (never on threads): same sums, same order.
  const int64_t kcStep = ceilDiv(K, ceilDiv(K, kKcMax));
  const int threads = parallel ? numThreads() : 1;
  const bool big = parallel && threads > 1 && 2.0 * double(M) * double(N) * double(K) >= double(kParallelFlops);
  // Columns of B kept in L2 while the rows of micro-tiles sweep over them.
  const int64_t ncL2 = std::max(NR, kL2BlockFloats / kcStep / NR * NR);
  // With several row tiles, B is packed once up front and shared (in N superblocks that
  // bound its size); with one, each tile packs its own B blocks, each exactly once.
  const bool sharedB = M > kMcMax;
  const int64_t nbMax = sharedB ? std::max(NR, kPackedBMax / K / NR * NR) : N;

  for (int64_t j0 = 0; j0 < N; j0 += nbMax) {
    const int64_t nb = std::min(nbMax, N - j0);
    const int64_t nbPad = roundUp(nb, NR);
    float* Bp = nullptr;
    if (sharedB) {
      // Chunk-major: chunk [k0, k0 + kc) is one contiguous kc x nbPad slab, panel after
      // panel. Work items are (chunk, group of 8 panels).
      Bp = threadPackB(nbPad * K);
      const int64_t chunks = ceilDiv(K, kcStep), groupCols = 8 * NR, groups = ceilDiv(nb, groupCols);
      parallelFor(chunks * groups, big ? 1 : chunks * groups, [&](int64_t w0, int64_t w1) {
        for (int64_t w = w0; w < w1; ++w) {
          const int64_t k0 = (w / groups) * kcStep, kc = std::min(kcStep, K - k0), c0 = (w % groups) * groupCols;
          k.packB(B, g.ldb, !g.transB, j0 + c0, std::min(groupCols, nb - c0), k0, kc,
                  Bp + k0 * nbPad + c0 * kc);
        }
      });
    }

    int64_t mc = roundUp(ceilDiv(M, ceilDiv(M, kMcMax)), MR), nc = nbPad;
    if (big) {
      // A few tiles per thread even out uneven progress (other processes, the last
      // tile); small products take fewer, since every extra tile repacks its A and B.
      const int64_t perThread = 2.0 * double(M) * double(nb) * double(K) >= double(kParallelFlops) * 512 ? 4 : 2;
      chooseTiles(M, nb, MR, NR, perThread * int64_t(threads), sharedB, &mc, &nc);
    }
    const int64_t tilesM = ceilDiv(M, mc), tilesN = ceilDiv(nb, nc);

    parallelFor(tilesM * tilesN, big ? 1 : tilesM * tilesN, [&](int64_t t0, int64_t t1) {
      float* Ap = threadPackA(mc * kcStep);
      float* Bt = sharedB ? nullptr : threadPackB(std::min(nc, ncL2) * kcStep);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t ti = t / tilesN, tj = t % tilesN;
        const int64_t i0 = ti * mc, rows = std::min(mc, M - i0);
        const int64_t jt0 = tj * nc, cols = std::min(nc, nb - jt0);  // within the superblock
        for (int64_t k0 = 0; k0 < K; k0 += kcStep) {
          const int64_t kc = std::min(kcStep, K - k0);
          k.packA(A, g.lda, g.transA, i0, rows, k0, kc, Ap);  // A as is is outer-major
          // Source of the next chunk's A, fetched while this chunk's last block computes.
          const int64_t k1 = k0 + kcStep, kc1 = std::min(kcStep, K - k1);
          const Region nextA = k1 < K ? packSource(A, g.lda, g.transA, i0, rows, k1, kc1) : Region{};
          Tail tail{g.alpha, g.accumulate || k0 > 0, nullptr, nullptr};
          for (int64_t cb = 0; cb < cols; cb += ncL2) {
            const int64_t cbN = std::min(ncL2, cols - cb), jc = j0 + jt0 + cb;  // jc: column in C
            const bool lastBlock = cb + ncL2 >= cols;
            const float* slab;
            Region nextB;
            if (sharedB) {
              slab = Bp + k0 * nbPad + (jt0 + cb) * kc;
            } else {
              k.packB(B, g.ldb, !g.transB, jc, cbN, k0, kc, Bt);
              slab = Bt;
              if (!lastBlock)
                nextB = packSource(B, g.ldb, !g.transB, jc + ncL2, std::min(ncL2, cols - cb - ncL2), k0, kc);
              else if (k1 < K)
                nextB = packSource(B, g.ldb, !g.transB, j0 + jt0, std::min(ncL2, cols), k1, kc1);
            }
            // The A micro-panel stays in L1 across a row of micro-tiles; the B block
            // (kc x cbN) stays in L2 across the rows.
            const int64_t nIp = ceilDiv(rows, MR);
            for (int64_t ip = 0; ip < rows; ip += MR) {
              if (nextB.p) prefetchSlice(nextB, ip / MR, nIp);
              if (lastBlock && nextA.p) prefetchSlice(nextA, ip / MR, nIp);
              const float* a = Ap + (ip / MR) * kc * MR;
              const int nRows = int(std::min(MR, rows - ip));
              float* c = C + (i0 + ip) * g.ldc + jc;
              for (int64_t jp = 0; jp < cbN; jp += NR) {
                const float* b = slab + jp * kc;
                tail.bias = (g.bias && k0 == 0) ? g.bias + jc + jp : nullptr;
                // The first row brings the B block in from L3: fetch one panel ahead.
                tail.nextB = (ip == 0 && jp + NR < cbN) ? b + kc * NR : nullptr;
                k.kernel(kc, a, b, c + jp, g.ldc, nRows, int(std::min(NR, cbN - jp)), tail);
              }
            }
          }
        }
      }
    });
  }
}

// K == 0: the product is empty, C = (accumulate ? C : 0) + bias.
void emptyProduct(const GemmArgs& g, float* C) {
  for (int64_t i = 0; i < g.M; ++i) {
    float* c = C + i * g.ldc;
    for (int64_t j = 0; j < g.N; ++j) {
      const float base = g.accumulate ? c[j] : 0.f;
      c[j] = g.bias ? base + g.bias[j] : base;
    }
  }
}

}  // namespace

// Which micro-kernel gemm uses ("avx512", "avx2" or "generic"): for diagnostics.
const char* gemmIsa() { return isa().name; }

void gemm(const GemmArgs& args) {
  GemmArgs g = args;
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  // Items that share B and whose A and C rows continue one another are one taller product.
  if (g.batch > 1 && g.strideB == 0 && !g.transA && g.strideA == g.M * g.lda && g.strideC == g.M * g.ldc) {
    g.M *= g.batch;
    g.batch = 1;
  }
  // Items may run side by side only when their outputs do not overlap.
  const bool disjointC = g.strideC >= (g.M - 1) * g.ldc + g.N;
  if (g.K <= 0) {
    auto items = [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) emptyProduct(g, g.C + b * g.strideC);
    };
    if (disjointC) {
      parallelFor(g.batch, std::max<int64_t>(1, (int64_t(1) << 16) / (g.M * g.N)), items);
    } else {
      items(0, g.batch);
    }
    return;
  }
  const Isa& k = isa();
  const double flops = 2.0 * double(g.M) * double(g.N) * double(g.K);
  // Many small items: one per thread at a time. Otherwise items go in order, each
  // using all threads.
  if (g.batch > 1 && disjointC && flops < double(kParallelFlops) * 8) {
    const int64_t grain = std::max<int64_t>(1, int64_t(double(kParallelFlops) / flops));
    parallelFor(g.batch, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        gemmOne(k, g, g.A + b * g.strideA, g.B + b * g.strideB, g.C + b * g.strideC, false);
    });
    return;
  }
  for (int64_t b = 0; b < g.batch; ++b)
    gemmOne(k, g, g.A + b * g.strideA, g.B + b * g.strideB, g.C + b * g.strideC, true);
}

}  // namespace cpu
}  // namespace valr
