// Scaled dot-product attention on the CPU, flash-attention style: queries in blocks of
// kBQ, keys in blocks of kBK, a running max and sum per query (online softmax), so no
// [Tq, Tk] score matrix is ever held; per task only a kBQ x kBK tile of scores.
//
// Forward:  tasks (b, kv head, chunk of the group's query heads, query block); each
//           visible key block is transposed once for the chunk, then per head
//             S = Q K^T (tile), mask, online softmax, O += P V (V read in place).
//           Blocks of at most kDirectRows queries (decode) take S as dot products
//           with the key rows in place instead.
// Backward: D_i = dout_i . out_i (pre-pass, double sums), then, recomputing
//           p_ij = exp(scale q_i.k_j - lse_i) tile by tile,
//             dS = P (dO V^T - D),  dV += P^T dO,  dK += dS^T Q,  dQ += dS K,
//           on one of two schedules with bit-identical results:
//             fused: tasks (b, kv head) own their group's dq rows, so one sweep over
//               key blocks (then heads, then query blocks) does all five products;
//             two-pass (when B * Hkv tasks would leave threads idle): a dq pass over
//               query tasks (dQ summed over key blocks in order), then a dk/dv pass
//               over (b, kv head, key block) tasks (heads, then query blocks, in order).
// Determinism: every output element is written by one task and summed in a fixed
// order; block boundaries are constants, and a head's arithmetic is the same whichever
// heads share its task and whichever schedule runs, so results are bit-identical for
// any number of threads.
//
// The small matrix products run through one kernel whose inner loops sweep contiguous
// columns (the compiler vectorises them at whatever SIMD width it targets), and the
// exponentials through a polynomial exp written so that its loops vectorise too; the
// hot functions are cloned per SIMD level where the toolchain allows (see below).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

// Runtime dispatch for the vectorised loops: with GCC on x86-64 glibc, the hot
// functions are compiled for AVX-512, AVX2+FMA and the baseline, and the loader picks
// one per machine (ifunc), so a portable build still uses wide vectors. The same
// clone runs on every thread, so results stay independent of the thread count (they
// may differ in the last bits between machines of different SIMD levels).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    !defined(VALR_NO_SIMD_CLONES)
#define VALR_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VALR_SIMD_CLONES
#endif

namespace valr {
namespace cpu {

namespace {

constexpr int64_t kBQ = 32;  // queries per block
constexpr int64_t kBK = 64;  // keys per block
constexpr int64_t kNR = 8;   // padded widths (Dh, key counts) are multiples of this
constexpr int64_t kDirectRows = 4;  // query blocks up to this size take scores as dot products
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// exp(x) in two steps, each a loop of its own: expArg clamps to [-88, 88] (NaN and
// -inf to -88), expPoly evaluates 2^n p(r) (Cephes expf, about 1.5 ulp) and gives
// exactly 0 below about -87.7. Split so that the compiler cannot fold the clamped
// cases into branches: with the default -ftrapping-math a loop with branches around
// floating-point arithmetic is not vectorised. std::isgreater/isless are the quiet
// comparisons, which do not count as trapping.
inline float expArg(float x) {
  x = std::isgreater(x, -88.f) ? x : -88.f;
  return std::isless(x, 88.f) ? x : 88.f;
}

inline float expPoly(float x) {
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n; n = -127 gives +0
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// Reductions keep eight partial results, combined in a fixed order (vectorisable).
// x = expPoly(x) in place (x from expArg), returning the sum.
inline float expSum(float* x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) {
      const float y = expPoly(x[k + j]);
      x[k + j] = y;
      acc[j] += y;
    }
  for (int j = 0; k < n; ++k, ++j) {
    const float y = expPoly(x[k]);
    x[k] = y;
    acc[j] += y;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

inline float dot8(const float* x, const float* y, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += x[k + j] * y[k + j];
  for (int j = 0; k < n; ++k, ++j) acc[j] += x[k] * y[k];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

inline float max8(const float* x, int64_t n) {
  float acc[8];
  std::fill(acc, acc + 8, kNegInf);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] = std::isgreater(x[k + j], acc[j]) ? x[k + j] : acc[j];
  for (int j = 0; k < n; ++k, ++j) acc[j] = std::isgreater(x[k], acc[j]) ? x[k] : acc[j];
  float m = acc[0];
  for (int j = 1; j < 8; ++j) m = std::isgreater(acc[j], m) ? acc[j] : m;
  return m;
}

// C [M, N] (= or +=) A [M, K] B [K, N], with A read as A[r rsA + k csA] (so a
// transposed tile is read in place) and B, C row-major. The inner loops run over
// contiguous columns of B and C (the compiler vectorises them at any SIMD width);
// two rows of C are updated from four rows of B per sweep. Every element sums over k
// in order, c = (((c + a0 b0) + a1 b1) + a2 b2) + a3 b3, so its value does not depend
// on how the product is tiled.
template <bool ACC>
VALR_SIMD_CLONES void matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsA, int64_t csA, const float* B,
                             int64_t ldb, float* C, int64_t ldc) {
  int64_t r = 0;
  for (; r + 2 <= M; r += 2) {
    float* __restrict c0 = C + r * ldc;
    float* __restrict c1 = c0 + ldc;
    if (!ACC) {
      std::fill(c0, c0 + N, 0.f);
      std::fill(c1, c1 + N, 0.f);
    }
    const float* a = A + r * rsA;
    const float* e = a + rsA;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const float a0 = a[k * csA], a1 = a[(k + 1) * csA], a2 = a[(k + 2) * csA], a3 = a[(k + 3) * csA];
      const float e0 = e[k * csA], e1 = e[(k + 1) * csA], e2 = e[(k + 2) * csA], e3 = e[(k + 3) * csA];
      const float* __restrict b0 = B + k * ldb;
      const float* __restrict b1 = b0 + ldb;
      const float* __restrict b2 = b1 + ldb;
      const float* __restrict b3 = b2 + ldb;
      for (int64_t j = 0; j < N; ++j) {
        const float x0 = b0[j], x1 = b1[j], x2 = b2[j], x3 = b3[j];
        c0[j] = (((c0[j] + a0 * x0) + a1 * x1) + a2 * x2) + a3 * x3;
        c1[j] = (((c1[j] + e0 * x0) + e1 * x1) + e2 * x2) + e3 * x3;
      }
    }
    for (; k < K; ++k) {
      const float a0 = a[k * csA], e0 = e[k * csA];
      const float* __restrict b0 = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) {
        c0[j] += a0 * b0[j];
        c1[j] += e0 * b0[j];
      }
    }
  }
  if (r < M) {  // the last odd row
    float* __restrict c0 = C + r * ldc;
    if (!ACC) std::fill(c0, c0 + N, 0.f);
    const float* a = A + r * rsA;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const float a0 = a[k * csA], a1 = a[(k + 1) * csA], a2 = a[(k + 2) * csA], a3 = a[(k + 3) * csA];
      const float* __restrict b0 = B + k * ldb;
      const float* __restrict b1 = b0 + ldb;
      const float* __restrict b2 = b1 + ldb;
      const float* __restrict b3 = b2 + ldb;
      for (int64_t j = 0; j < N; ++j) c0[j] = (((c0[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j];
    }
    for (; k < K; ++k) {
      const float a0 = a[k * csA];
      const float* __restrict b0 = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) c0[j] += a0 * b0[j];
    }
  }
}

// Per-task scratch, 64-byte aligned so that vectorised loops split the same way on
// every thread.
class Scratch {
 public:
  explicit Scratch(int64_t n) : buf_(size_t(n) + 16) {
    const uintptr_t addr = reinterpret_cast<uintptr_t>(buf_.data());
    data_ = buf_.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
  float* data() { return data_; }

 private:
  std::vector<float> buf_;
  float* data_;
};

// Shapes and index helpers shared by the passes.
struct Geometry {
  int64_t B, Tq, Tk, Hq, Hkv, Dh, group, DP, nQB, nKB, off, kvStride;
  float scale;
  bool causal;
  // Query-side tasks: (b, kv head, head chunk, query block), hpt heads per chunk.
  int64_t hpt = 1, nHC = 1;

  explicit Geometry(const AttentionDims& d)
      : B(d.B), Tq(d.Tq), Tk(d.Tk), Hq(d.Hq), Hkv(d.Hkv), Dh(d.Dh), kvStride(d.kvStride()), scale(d.scale),
        causal(d.causal) {
    group = Hkv > 0 ? std::max<int64_t>(1, Hq / Hkv) : 1;
    DP = roundUp(std::max<int64_t>(Dh, 1), kNR);
    nQB = (Tq + kBQ - 1) / kBQ;
    nKB = (Tk + kBK - 1) / kBK;
    off = Tk - Tq;  // query i sits at absolute position off + i
    // The heads of a group share each key/value block a task loads, so a task takes
    // the whole group unless that leaves fewer than 4 tasks per thread. (Only the
    // split of work changes with the thread count, never a head's arithmetic.)
    const int64_t want = 4 * int64_t(numThreads());
    while (nHC < group && B * Hkv * nQB * nHC < want) ++nHC;
    hpt = (group + nHC - 1) / nHC;
    nHC = (group + hpt - 1) / hpt;
  }
  int64_t queryTasks() const { return B * Hkv * nHC * nQB; }
  // Row offsets: q-like [B, Tq, Hq, Dh]; k, v [B, *, Hkv, Dh] with batch stride
  // kvStride (a cache may be larger than Tk); dk, dv dense [B, Tk, Hkv, Dh].
  int64_t qRow(int64_t b, int64_t i, int64_t h) const { return ((b * Tq + i) * Hq + h) * Dh; }
  int64_t kvRow(int64_t b, int64_t j, int64_t g) const { return b * kvStride + (j * Hkv + g) * Dh; }
  int64_t kRow(int64_t b, int64_t j, int64_t g) const { return ((b * Tk + j) * Hkv + g) * Dh; }
  // Keys visible to some query of [i0, i0 + mq) end before this (exclusive).
  int64_t keyEnd(int64_t i0, int64_t mq) const {
    return causal ? std::max<int64_t>(0, std::min(Tk, off + i0 + mq)) : Tk;
  }
  // Keys of the block at j0 that query i may see (causal limit), as a count from j0.
  int64_t causalLimit(int64_t i, int64_t j0, int64_t nk) const {
    return causal ? std::max<int64_t>(0, std::min(nk, off + i - j0 + 1)) : nk;
  }
};

// A query-side task: batch item, kv head, first query head and head count, query block.
struct QueryTask {
  int64_t b, kvh, h0, nh, i0, mq;
  QueryTask(const Geometry& g, int64_t t) {
    const int64_t qb = t % g.nQB, hc = (t / g.nQB) % g.nHC;
    kvh = (t / (g.nQB * g.nHC)) % g.Hkv;
    b = t / (g.nQB * g.nHC * g.Hkv);
    h0 = kvh * g.group + hc * g.hpt;
    nh = std::min(g.hpt, g.group - hc * g.hpt);
    i0 = qb * kBQ;
    mq = std::min(kBQ, g.Tq - i0);
  }
};

// Copies rows [j0, j0 + nk) of k or v transposed into dst [Dh][kBK]; the columns
// [nk, nkP) are zeroed.
void loadTransposed(const float* src, const Geometry& g, int64_t b, int64_t kvh, int64_t j0, int64_t nk, int64_t nkP,
                    float* dst) {
  for (int64_t jj = 0; jj < nk; ++jj) {
    const float* s = src + g.kvRow(b, j0 + jj, kvh);
    for (int64_t dd = 0; dd < g.Dh; ++dd) dst[dd * kBK + jj] = s[dd];
  }
  if (nkP > nk)
    for (int64_t dd = 0; dd < g.Dh; ++dd) std::fill(dst + dd * kBK + nk, dst + dd * kBK + nkP, 0.f);
}

// Copies n rows (row stride `stride`) into dst [n][DP] with the columns [Dh, DP) zeroed.
void loadRows(const float* src, int64_t stride, int64_t n, const Geometry& g, float* dst) {
  for (int64_t r = 0; r < n; ++r) {
    std::copy(src + r * stride, src + r * stride + g.Dh, dst + r * g.DP);
    std::fill(dst + r * g.DP + g.Dh, dst + (r + 1) * g.DP, 0.f);
  }
}

// ok[jj] = 1 where key j0 + jj may be attended (key mask); returns how many may.
int64_t loadKeyMask(const int32_t* keyMask, const Geometry& g, int64_t b, int64_t j0, int64_t nk, float* ok) {
  if (!keyMask) {
    std::fill(ok, ok + nk, 1.f);
    return nk;
  }
  const int32_t* m = keyMask + b * g.Tk + j0;
  int64_t count = 0;
  for (int64_t jj = 0; jj < nk; ++jj) {
    ok[jj] = m[jj] != 0 ? 1.f : 0.f;
    count += m[jj] != 0;
  }
  return count;
}

// P and dS of one [mq, nk] tile (row stride kBK) from S = Q K^T and dP = dO V^T, in
// place (S -> P, dP -> dS): p = exp(scale s - lse) where visible, else 0;
// ds = p (dp - D). Rows with lse = -inf (no visible key) get zeros.
VALR_SIMD_CLONES void softmaxGrad(const Geometry& g, float* S, float* dP, const float* lseRow, const float* DRow,
                                  int64_t i0, int64_t mq, int64_t j0, int64_t nk, const float* ok, bool allOk) {
  for (int64_t r = 0; r < mq; ++r) {
    float* s = S + r * kBK;
    float* dp = dP + r * kBK;
    const float L = lseRow[r], Di = DRow[r];
    if (!std::isgreater(L, kNegInf)) {
      std::fill(s, s + nk, 0.f);
      std::fill(dp, dp + nk, 0.f);
      continue;
    }
    const int64_t lim = g.causalLimit(i0 + r, j0, nk);
    const float scale = g.scale;
    if (lim == nk && allOk)
      for (int64_t jj = 0; jj < nk; ++jj) s[jj] = expArg(s[jj] * scale - L);
    else
      for (int64_t jj = 0; jj < nk; ++jj) s[jj] = (jj < lim && ok[jj] != 0.f) ? expArg(s[jj] * scale - L) : -88.f;
    for (int64_t jj = 0; jj < nk; ++jj) s[jj] = expPoly(s[jj]);
    for (int64_t jj = 0; jj < nk; ++jj) dp[jj] = s[jj] * (dp[jj] - Di);
  }
}

// S [mq][kBK] = Q K^T as dot products with the key rows in place (decode).
VALR_SIMD_CLONES void directScores(const float* Q, int64_t ldq, int64_t mq, const float* K, int64_t ldk, int64_t nk,
                                   int64_t Dh, float* S) {
  for (int64_t r = 0; r < mq; ++r)
    for (int64_t jj = 0; jj < nk; ++jj) S[r * kBK + jj] = dot8(Q + r * ldq, K + jj * ldk, Dh);
}

// One key block of the forward's online softmax for mq query rows: masks and scales
// the raw scores S (row stride kBK), updates the running max m and sum l, rescales
// the output rows O (row stride DP) and leaves in S the weights exp(s - m) (zeros
// where not visible) for O += P V.
VALR_SIMD_CLONES void onlineSoftmax(const Geometry& g, float* S, int64_t i0, int64_t mq, int64_t j0, int64_t nk,
                                    const float* ok, bool allOk, float* m, float* l, float* O) {
  for (int64_t r = 0; r < mq; ++r) {
    float* s = S + r * kBK;
    const int64_t lim = g.causalLimit(i0 + r, j0, nk);
    // Scores are s * scale; with scale > 0, max(s) * scale == max(s * scale) exactly,
    // so a fully visible row is scaled inside the exp pass.
    float sc = g.scale;
    if (lim < nk || !allOk || !(sc > 0.f)) {
      for (int64_t jj = 0; jj < nk; ++jj) s[jj] = (jj < lim && ok[jj] != 0.f) ? s[jj] * sc : kNegInf;
      sc = 1.f;
    }
    const float mx = max8(s, nk) * sc;
    const float mNew = std::isgreater(mx, m[r]) ? mx : m[r];
    if (mNew == kNegInf) {  // nothing visible yet: this row adds nothing
      std::fill(s, s + nk, 0.f);
      continue;
    }
    for (int64_t jj = 0; jj < nk; ++jj) s[jj] = expArg(s[jj] * sc - mNew);
    const float sum = expSum(s, nk);
    const float alpha = m[r] == kNegInf ? 0.f : std::exp(m[r] - mNew);
    l[r] = l[r] * alpha + sum;
    m[r] = mNew;
    if (alpha != 1.f) {
      float* o = O + r * g.DP;
      for (int64_t dd = 0; dd < g.DP; ++dd) o[dd] *= alpha;
    }
  }
}

}  // namespace

void attentionForward(const float* q, const float* k, const float* v, const int32_t* keyMask, float* out, float* lse,
                      const AttentionDims& d) {
  const Geometry g(d);
  if (g.B <= 0 || g.Tq <= 0 || g.Hq <= 0 || g.Hkv <= 0) return;
  const int64_t DP = g.DP, Dh = g.Dh, hpt = g.hpt;

  parallelFor(g.queryTasks(), 1, [&](int64_t t0, int64_t t1) {
    // Per head: Q, O [kBQ][DP], m, l [kBQ]; shared: K^T [Dh][kBK], S [kBQ][kBK],
    // key mask [kBK].
    Scratch buf(hpt * (2 * kBQ * DP + 2 * kBQ) + Dh * kBK + kBQ * kBK + kBK);
    float* Qs = buf.data();
    float* O = Qs + hpt * kBQ * DP;
    float* M = O + hpt * kBQ * DP;
    float* L = M + hpt * kBQ;
    float* Kt = L + hpt * kBQ;
    float* S = Kt + Dh * kBK;
    float* ok = S + kBQ * kBK;

    for (int64_t t = t0; t < t1; ++t) {
      const QueryTask task(g, t);
      const int64_t b = task.b, i0 = task.i0, mq = task.mq;
      // A block of a few queries (decode) takes its scores as dot products with the
      // key rows in place rather than through a transposed copy of each key block.
      const bool direct = mq <= kDirectRows;
      for (int64_t hh = 0; hh < task.nh; ++hh) {
        loadRows(q + g.qRow(b, i0, task.h0 + hh), g.Hq * Dh, mq, g, Qs + hh * kBQ * DP);
        std::fill(O + hh * kBQ * DP, O + hh * kBQ * DP + mq * DP, 0.f);
        std::fill(M + hh * kBQ, M + hh * kBQ + mq, kNegInf);
        std::fill(L + hh * kBQ, L + hh * kBQ + mq, 0.f);
      }

      const int64_t jEnd = g.keyEnd(i0, mq);
      for (int64_t j0 = 0; j0 < jEnd; j0 += kBK) {
        const int64_t nk = std::min(kBK, jEnd - j0), nkP = roundUp(nk, kNR);
        const int64_t visible = loadKeyMask(keyMask, g, b, j0, nk, ok);
        if (visible == 0) continue;
        const bool allOk = visible == nk;
        const float* kBlock = k + g.kvRow(b, j0, task.kvh);
        const float* vBlock = v + g.kvRow(b, j0, task.kvh);
        if (!direct) loadTransposed(k, g, b, task.kvh, j0, nk, nkP, Kt);

        for (int64_t hh = 0; hh < task.nh; ++hh) {
          float* Oh = O + hh * kBQ * DP;
          float* m = M + hh * kBQ;
          float* l = L + hh * kBQ;
          if (direct)
            directScores(Qs + hh * kBQ * DP, DP, mq, kBlock, g.Hkv * Dh, nk, Dh, S);
          else
            matmul<false>(mq, nkP, Dh, Qs + hh * kBQ * DP, DP, 1, Kt, kBK, S, kBK);
          onlineSoftmax(g, S, i0, mq, j0, nk, ok, allOk, m, l, Oh);
          matmul<true>(mq, Dh, nk, S, kBK, 1, vBlock, g.Hkv * Dh, Oh, DP);
        }
      }

      for (int64_t hh = 0; hh < task.nh; ++hh) {
        const int64_t h = task.h0 + hh;
        for (int64_t r = 0; r < mq; ++r) {
          float* o = out + g.qRow(b, i0 + r, h);
          float* lo = lse ? lse + (b * g.Hq + h) * g.Tq + i0 + r : nullptr;
          const float lr = L[hh * kBQ + r];
          if (lr > 0.f) {
            const float inv = 1.f / lr;
            const float* src = O + (hh * kBQ + r) * DP;
            for (int64_t dd = 0; dd < Dh; ++dd) o[dd] = src[dd] * inv;
            if (lo) *lo = M[hh * kBQ + r] + std::log(lr);
          } else {
            std::fill(o, o + Dh, 0.f);
            if (lo) *lo = kNegInf;
          }
        }
      }
    }
  });
}

void attentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                       const float* lse, const int32_t* keyMask, float* dq, float* dk, float* dv,
                       const AttentionDims& d) {
  const Geometry g(d);
  if (g.B <= 0 || g.Hq <= 0 || g.Hkv <= 0) return;
  const int64_t DP = g.DP, Dh = g.Dh, hpt = g.hpt;

  // D [B, Hq, Tq] = dout . out per query (double sums).
  std::vector<float> Dsum(size_t(g.B * g.Hq * g.Tq));
  parallelFor(g.B * g.Tq, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, g.Hq * Dh)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / g.Tq, i = row % g.Tq;
      for (int64_t h = 0; h < g.Hq; ++h) {
        const float* x = dout + g.qRow(b, i, h);
        const float* y = out + g.qRow(b, i, h);
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t c = 0;
        for (; c + 8 <= Dh; c += 8)
          for (int j = 0; j < 8; ++j) acc[j] += double(x[c + j]) * double(y[c + j]);
        for (int j = 0; c < Dh; ++c, ++j) acc[j] += double(x[c]) * double(y[c]);
        Dsum[size_t((b * g.Hq + h) * g.Tq + i)] =
            float(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
      }
    }
  });
  auto rowIndex = [&](int64_t b, int64_t h, int64_t i) { return (b * g.Hq + h) * g.Tq + i; };

  // Two schedules with bit-identical results (each dq, dk, dv element gets the same
  // operations in the same order):
  //  fused: tasks (b, kv head) own all of the group's dq rows, so one sweep over key
  //    blocks (then heads, then query blocks) computes S, dP once and updates dk, dv
  //    and a task-local dq: 5 products per tile;
  //  two-pass: a dq pass over query tasks, then the dk/dv pass over (b, kv head, key
  //    block) tasks: 7 products per tile but many more tasks.
  // Fused when its B * Hkv tasks keep the threads at least 3/4 busy and a task's dq
  // buffer stays under 64 MiB.
  const int64_t threads = numThreads(), units = g.B * g.Hkv;
  const bool fused = units * 4 >= 3 * threads * ((units + threads - 1) / threads) &&
                     g.group * g.Tq * DP <= (int64_t(64) << 20) / int64_t(sizeof(float));

  // dK, dV of key block kb of (b, kvh) into dk, dv; with dQ ([group][Tq][DP]) also
  // dQ += dS K for every query block that sees the block.
  struct KeyScratch {
    float *Kt, *Vt, *dK, *dV, *Qs, *dOs, *S, *dP, *ok;
  };
  const int64_t keyScratchSize = 2 * Dh * kBK + 2 * kBK * DP + 2 * kBQ * DP + 2 * kBQ * kBK + kBK;
  auto carveKeyScratch = [&](float* p) {
    KeyScratch w;
    w.Kt = p;
    w.Vt = w.Kt + Dh * kBK;
    w.dK = w.Vt + Dh * kBK;
    w.dV = w.dK + kBK * DP;
    w.Qs = w.dV + kBK * DP;
    w.dOs = w.Qs + kBQ * DP;
    w.S = w.dOs + kBQ * DP;
    w.dP = w.S + kBQ * kBK;
    w.ok = w.dP + kBQ * kBK;
    return w;
  };
  auto keyBlock = [&](int64_t b, int64_t kvh, int64_t kb, const KeyScratch& w, float* dQ) {
    const int64_t j0 = kb * kBK, nk = std::min(kBK, g.Tk - j0), nkP = roundUp(nk, kNR);
    std::fill(w.dK, w.dK + nk * DP, 0.f);
    std::fill(w.dV, w.dV + nk * DP, 0.f);
    const int64_t visible = loadKeyMask(keyMask, g, b, j0, nk, w.ok);
    if (visible > 0) {
      const bool allOk = visible == nk;
      loadTransposed(k, g, b, kvh, j0, nk, nkP, w.Kt);
      loadTransposed(v, g, b, kvh, j0, nk, nkP, w.Vt);
      const float* kBlock = k + g.kvRow(b, j0, kvh);
      // First query that sees key j0: off + i >= j0.
      const int64_t iStart = g.causal ? std::max<int64_t>(0, j0 - g.off) : 0;
      for (int64_t hh = 0; hh < g.group; ++hh) {
        const int64_t h = kvh * g.group + hh;
        for (int64_t i0 = iStart / kBQ * kBQ; i0 < g.Tq; i0 += kBQ) {
          const int64_t mq = std::min(kBQ, g.Tq - i0);
          loadRows(q + g.qRow(b, i0, h), g.Hq * Dh, mq, g, w.Qs);
          loadRows(dout + g.qRow(b, i0, h), g.Hq * Dh, mq, g, w.dOs);
          matmul<false>(mq, nkP, Dh, w.Qs, DP, 1, w.Kt, kBK, w.S, kBK);
          matmul<false>(mq, nkP, Dh, w.dOs, DP, 1, w.Vt, kBK, w.dP, kBK);
          softmaxGrad(g, w.S, w.dP, lse + rowIndex(b, h, i0), Dsum.data() + rowIndex(b, h, i0), i0, mq, j0, nk, w.ok,
                      allOk);
          matmul<true>(nk, DP, mq, w.S, 1, kBK, w.dOs, DP, w.dV, DP);  // dV += P^T dO
          matmul<true>(nk, DP, mq, w.dP, 1, kBK, w.Qs, DP, w.dK, DP);  // dK += dS^T Q
          if (dQ)  // dQ += dS K
            matmul<true>(mq, Dh, nk, w.dP, kBK, 1, kBlock, g.Hkv * Dh, dQ + (hh * g.Tq + i0) * DP, DP);
        }
      }
    }
    for (int64_t jj = 0; jj < nk; ++jj) {
      float* odk = dk + g.kRow(b, j0 + jj, kvh);
      float* odv = dv + g.kRow(b, j0 + jj, kvh);
      const float* sk = w.dK + jj * DP;
      const float* sv = w.dV + jj * DP;
      for (int64_t dd = 0; dd < Dh; ++dd) {
        odk[dd] = sk[dd] * g.scale;
        odv[dd] = sv[dd];
      }
    }
  };

  if (fused) {
    parallelFor(units, 1, [&](int64_t t0, int64_t t1) {
      Scratch buf(keyScratchSize + g.group * g.Tq * DP);
      const KeyScratch w = carveKeyScratch(buf.data());
      float* dQ = buf.data() + keyScratchSize;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / g.Hkv, kvh = t % g.Hkv;
        std::fill(dQ, dQ + g.group * g.Tq * DP, 0.f);
        for (int64_t kb = 0; kb < g.nKB; ++kb) keyBlock(b, kvh, kb, w, dQ);
        for (int64_t hh = 0; hh < g.group; ++hh)
          for (int64_t i = 0; i < g.Tq; ++i) {
            float* o = dq + g.qRow(b, i, kvh * g.group + hh);
            const float* src = dQ + (hh * g.Tq + i) * DP;
            for (int64_t dd = 0; dd < Dh; ++dd) o[dd] = src[dd] * g.scale;
          }
      }
    });
    return;
  }

  // Pass 1: dq, tasks as the forward's, key blocks in order.
  parallelFor(g.queryTasks(), 1, [&](int64_t t0, int64_t t1) {
    // Per head: Q, dO, dQ [kBQ][DP]; shared: K^T, V^T [Dh][kBK], S, dP [kBQ][kBK],
    // key mask.
    Scratch buf(hpt * 3 * kBQ * DP + 2 * Dh * kBK + 2 * kBQ * kBK + kBK);
    float* Qs = buf.data();
    float* dOs = Qs + hpt * kBQ * DP;
    float* dQ = dOs + hpt * kBQ * DP;
    float* Kt = dQ + hpt * kBQ * DP;
    float* Vt = Kt + Dh * kBK;
    float* S = Vt + Dh * kBK;
    float* dP = S + kBQ * kBK;
    float* ok = dP + kBQ * kBK;

    for (int64_t t = t0; t < t1; ++t) {
      const QueryTask task(g, t);
      const int64_t b = task.b, i0 = task.i0, mq = task.mq;
      for (int64_t hh = 0; hh < task.nh; ++hh) {
        loadRows(q + g.qRow(b, i0, task.h0 + hh), g.Hq * Dh, mq, g, Qs + hh * kBQ * DP);
        loadRows(dout + g.qRow(b, i0, task.h0 + hh), g.Hq * Dh, mq, g, dOs + hh * kBQ * DP);
        std::fill(dQ + hh * kBQ * DP, dQ + hh * kBQ * DP + mq * DP, 0.f);
      }

      const int64_t jEnd = g.keyEnd(i0, mq);
      for (int64_t j0 = 0; j0 < jEnd; j0 += kBK) {
        const int64_t nk = std::min(kBK, jEnd - j0), nkP = roundUp(nk, kNR);
        const int64_t visible = loadKeyMask(keyMask, g, b, j0, nk, ok);
        if (visible == 0) continue;
        const bool allOk = visible == nk;
        loadTransposed(k, g, b, task.kvh, j0, nk, nkP, Kt);
        loadTransposed(v, g, b, task.kvh, j0, nk, nkP, Vt);
        const float* kBlock = k + g.kvRow(b, j0, task.kvh);
        for (int64_t hh = 0; hh < task.nh; ++hh) {
          const int64_t h = task.h0 + hh;
          matmul<false>(mq, nkP, Dh, Qs + hh * kBQ * DP, DP, 1, Kt, kBK, S, kBK);
          matmul<false>(mq, nkP, Dh, dOs + hh * kBQ * DP, DP, 1, Vt, kBK, dP, kBK);
          softmaxGrad(g, S, dP, lse + rowIndex(b, h, i0), Dsum.data() + rowIndex(b, h, i0), i0, mq, j0, nk, ok, allOk);
          matmul<true>(mq, Dh, nk, dP, kBK, 1, kBlock, g.Hkv * Dh, dQ + hh * kBQ * DP, DP);
        }
      }

      for (int64_t hh = 0; hh < task.nh; ++hh)
        for (int64_t r = 0; r < mq; ++r) {
          float* o = dq + g.qRow(b, i0 + r, task.h0 + hh);
          const float* src = dQ + (hh * kBQ + r) * DP;
          for (int64_t dd = 0; dd < Dh; ++dd) o[dd] = src[dd] * g.scale;
        }
    }
  });

  // Pass 2: dk, dv, tasks (b, kv head, key block).
  parallelFor(g.B * g.Hkv * g.nKB, 1, [&](int64_t t0, int64_t t1) {
    Scratch buf(keyScratchSize);
    const KeyScratch w = carveKeyScratch(buf.data());
    for (int64_t t = t0; t < t1; ++t) keyBlock(t / (g.Hkv * g.nKB), (t / g.nKB) % g.Hkv, t % g.nKB, w, nullptr);
  });
}

}  // namespace cpu
}  // namespace valr
