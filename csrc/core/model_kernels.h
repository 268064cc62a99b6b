// Kernels of the transformer (decoder, vision tower, projector) and its training:
// declared once, implemented by valr::cpu (csrc/cpu) and valr::cuda (csrc/cuda),
// like alignment_kernels.h. Embedding lookup and its gradient are the tap kernels
// (tapGather / tapScatter with accumulate). Index arrays and masks are host pointers.
// Activation gradients are written (=); parameter gradients are added (+=).
// Every reduction sums in a fixed order, so results do not depend on thread counts.
#pragma once
#include <cstdint>

namespace valr {

// C[b] (=, or += when accumulate) alpha * op(A[b]) @ op(B[b]) (+ bias broadcast over rows)
// op(A) is [M, K], op(B) is [K, N], C is [M, N]; all row-major with leading dimensions.
// With accumulate == false, C is never read (it may hold NaN).
struct GemmArgs {
  bool transA = false, transB = false;
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  const float* B = nullptr;
  int64_t ldb = 0;
  float* C = nullptr;
  int64_t ldc = 0;
  float alpha = 1.f;
  bool accumulate = false;
  const float* bias = nullptr;  // [N] or nullptr
  int64_t batch = 1;
  int64_t strideA = 0, strideB = 0, strideC = 0;  // elements between batch items (0 = shared)
};

// q [B, Tq, Hq, Dh]; k, v [B, Tk, Hkv, Dh] (Hq % Hkv == 0: grouped-query heads, head h
// reads kv head h / (Hq / Hkv)). The Tq queries are the last Tq of the Tk positions
// (the first Tk - Tq keys are the cache), so query i sees keys j <= Tk - Tq + i when
// causal, all keys otherwise; keyMask [B, Tk] (1 = attend, 0 = padding) or nullptr.
// A query that sees no key gets out = 0 and lse = -inf.
// kvBatchStride: elements between batch items of k and v (0 = dense, Tk*Hkv*Dh); a
// KV cache preallocated as [B, capacity, Hkv, Dh] is read in place with
// capacity*Hkv*Dh. The backward's dk and dv are always dense.
struct AttentionDims {
  int64_t B = 0, Tq = 0, Tk = 0, Hq = 0, Hkv = 0, Dh = 0;
  float scale = 1.f;  // usually 1/sqrt(Dh)
  bool causal = true;
  int64_t kvBatchStride = 0;
  int64_t kvStride() const { return kvBatchStride ? kvBatchStride : Tk * Hkv * Dh; }
};

#define VALR_MODEL_KERNELS                                                                                   \
  void gemm(const GemmArgs& a);                                                                              \
  /* out [B,Tq,Hq,Dh]; lse [B,Hq,Tq] saved for the backward */                                                \
  void attentionForward(const float* q, const float* k, const float* v, const int32_t* keyMask, float* out,  \
                        float* lse, const AttentionDims& d);                                                 \
  /* dq [B,Tq,Hq,Dh], dk, dv [B,Tk,Hkv,Dh], all written (=) */                                                \
  void attentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* out, \
                         const float* lse, const int32_t* keyMask, float* dq, float* dk, float* dv,           \
                         const AttentionDims& d);                                                            \
  /* y = x / sqrt(mean(x^2) + eps) * w over the last dim D; rstd [rows] saved */                             \
  void rmsNormForward(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t D, float eps); \
  void rmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw, \
                       int64_t rows, int64_t D);                                                              \
  /* y = (x - mean) * rstd * w + b; mean, rstd [rows] saved */                                                 \
  void layerNormForward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,    \
                        int64_t rows, int64_t D, float eps);                                                   \
  void layerNormBackward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd, \
                         float* dx, float* dw, float* db, int64_t rows, int64_t D);                           \
  /* Rotary embedding, rotate-half layout (Hugging Face Llama/Qwen2): x [rows, H, Dh] with                    \
     positions [rows] (host); inverse rotates back (the backward). y may equal x. */                         \
  void rope(const float* x, float* y, const int32_t* positions, int64_t rows, int64_t H, int64_t Dh,         \
            float theta, bool inverse);                                                                      \
  /* y = silu(gate) * up */                                                                                  \
  void swigluForward(const float* gate, const float* up, float* y, int64_t n);                               \
  void swigluBackward(const float* dy, const float* gate, const float* up, float* dgate, float* dup, int64_t n); \
  /* exact GELU: x * Phi(x) */                                                                               \
  void geluForward(const float* x, float* y, int64_t n);                                                     \
  void geluBackward(const float* dy, const float* x, float* dx, int64_t n);                                  \
  /* Mean cross-entropy of softmax(logits [N, V]) over targets [N] (host; ignoreIndex skipped) and, when       \
     dlogits != nullptr, dlogits = gradScale * d(loss)/d(logits) in the same pass. Returns the summed loss     \
     (not divided) and the count of counted targets through *count; the mean uses divisor (> 0). */          \
  double crossEntropy(const float* logits, const int32_t* targets, int64_t N, int64_t V, int32_t ignoreIndex, \
                      double divisor, float* dlogits, double gradScale, int64_t* count);                     \
  /* One AdamW step (decoupled weight decay, bias correction with 1-based `step`), as torch.optim.AdamW */    \
  void adamw(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2, \
             float eps, float weightDecay, int64_t step);                                                    \
  /* sum of squares in double (for global-norm clipping) */                                                  \
  double sumSquares(const float* x, int64_t n);                                                              \
  /* dst[b, dstOffset + t, :] (=|+=) src[b, srcOffset + t, :] for t < T; rows of `row` floats:                \
     concatenation and slicing along the sequence dim (KV cache, splicing) */                                \
  void copyBlock(const float* src, int64_t srcT, int64_t srcOffset, float* dst, int64_t dstT, int64_t dstOffset, \
                 int64_t B, int64_t T, int64_t row, bool accumulate);                                        \
  /* dst[rows[i], :] = src[i, :] (overwrite), dst [numRows, D]: image features into placeholder rows */       \
  void scatterRows(const float* src, const int32_t* rows, int64_t count, int64_t D, float* dst);

namespace cpu {
VALR_MODEL_KERNELS
}
namespace cuda {
VALR_MODEL_KERNELS
}

}  // namespace valr
