// Launch geometry shared by the row-parallel kernels (tap gather/scatter, bilinear
// upsampling): each row (or pixel) of `cols` floats is handled by a group of lanes.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "device_helpers.cuh"

namespace valr {
namespace cuda {
namespace rows {

constexpr int kThreads = 256;
constexpr int kIters = 4;                     // columns per lane per (row, chunk): amortises the row set-up
constexpr int64_t kMaxBlocks = int64_t{1} << 18;


// Rows are split among groups of `1 << shift` lanes (<= a warp, no more lanes than
// columns so narrow rows do not idle a whole warp); grid.y walks column chunks.
struct RowLaunch {
  dim3 grid;
  int shift = 0;
  int64_t chunkCols = 0, numChunks = 0;
  bool wide = false;  // row indices need 64 bits
};

inline RowLaunch rowLaunch(int64_t rows, int64_t cols) {
  RowLaunch l;
  while (l.shift < 5 && (int64_t{1} << l.shift) < cols) ++l.shift;
  const int64_t lanes = int64_t{1} << l.shift;
  l.chunkCols = lanes * kIters;
  l.numChunks = (cols + l.chunkCols - 1) / l.chunkCols;
  const int64_t gy = l.numChunks < 65535 ? l.numChunks : 65535;
  const int64_t rowsPerBlock = kThreads / lanes;
  int64_t gx = (rows + rowsPerBlock - 1) / rowsPerBlock;
  const int64_t maxX = kMaxBlocks / gy > 0 ? kMaxBlocks / gy : 1;
  if (gx > maxX) gx = maxX;
  l.grid = dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1);
  l.wide = rows + gx * rowsPerBlock >= (int64_t{1} << 32);
  return l;
}


}  // namespace rows
}  // namespace cuda
}  // namespace valr
