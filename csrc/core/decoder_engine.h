// The inference decoder: runs new positions of a Qwen2-style decoder against a
// contiguous KV cache entirely in native code, and the fused latent segment (K
// steps that feed each step's post-final-norm hidden state back as the next input,
// no LM head, nothing returned to JavaScript in between). Declared once, built for
// both backends from decoder_engine.inc (valr::cpu and valr::cuda).
#pragma once
#include <cstdint>
#include <vector>

namespace valr {

struct DecoderLayerWeights {
  const float *qW, *qB, *kW, *kB, *vW, *vB, *oW;  // biases may be null
  const float *gateW, *upW, *downW;
  const float *inputNorm, *postAttentionNorm;
};

struct DecoderWeights {
  std::vector<DecoderLayerWeights> layers;
  const float* finalNorm;
  const float* lmHead;  // [vocab, hidden] (the embedding table when tied)
};

struct DecoderShape {
  int64_t hidden, heads, kvHeads, headDim, intermediate, vocab;
  float ropeTheta, eps;
};

// Per layer k and v buffers [B, capacity, kvHeads, headDim]; positions [0, length)
// are filled. keyMask [B, capacity] (host) marks which cached positions may be attended.
struct KVCacheView {
  std::vector<float*> k, v;
  int64_t batch = 0, capacity = 0, length = 0;
  const int32_t* keyMask = nullptr;
};

#define VALR_DECODER_ENGINE                                                                                  \
  /* x [B, T, hidden] -> hidden [B, T, hidden] after the final norm; appends T positions to the cache       \
     (the caller has set keyMask for them and advances length afterwards); positions [B*T] host;          \
     tap (nullable) [B, T, hidden] = hidden_states[tapLayer] (0 = x, L = after the final norm);            \
     logits (nullable) [B, vocab] of each row's last position. */                                          \
  void decoderForward(const DecoderWeights& w, const DecoderShape& s, const KVCacheView& cache, const float* x, \
                      int64_t T, const int32_t* positions, float* hidden, int tapLayer, float* tap, float* logits); \
  /* K latent steps from h0 [B, hidden]: step j's input is step j-1's hidden (h0 first); appends K        \
     positions (keyMask already set for them); startPositions [B] host; taps [B, K, hidden] at tapLayer;   \
     lastHidden [B, hidden] is the K-th step's hidden. */                                                  \
  void latentSegment(const DecoderWeights& w, const DecoderShape& s, const KVCacheView& cache, const float* h0, \
                     int64_t K, const int32_t* startPositions, int tapLayer, float* taps, float* lastHidden);

namespace cpu {
VALR_DECODER_ENGINE
}
namespace cuda {
VALR_DECODER_ENGINE
}

}  // namespace valr
