// Where each lane of a warp points `ldmatrix` for the tensor-core operands of the attention
// forward kernel, shared by the kernel and its CPU check (tests/test_fragments.cpp), which
// emulates ldmatrix over these addresses and compares every lane's registers with the
// mma.m16n8k16 fragment layout (common.cuh). A layout change is checked there without a GPU.
//
// ldmatrix.m8n8.x4 (PTX ISA, "warp-level matrix load"): lanes 8m..8m+7 give the row addresses
// of matrix m (8 rows of 8 16-bit values). Lane l receives, in register m, row l/4 of matrix m,
// columns 2(l%4) and 2(l%4)+1 (low half first); with .trans it receives column l/4, rows
// 2(l%4) and 2(l%4)+1.
//
// Tiles in shared memory are row major, token rows of head_dim values:
// - K for S = Q·Kᵀ (B operand, k = head dim, n = key): b0 = K[key g][2t..2t+1], b1 = the same
//   eight columns on. One x4 load gives b0, b1 of two consecutive 16-column k-tiles.
// - V for O = P·V (B operand, k = key, n = head dim): b0 = V[2t..2t+1][col g], b1 = keys
//   eight on: a transposed load. One x4.trans load gives b0, b1 of two 8-column n-tiles.
#pragma once

#ifdef __CUDACC__
#define XRING_HOST_DEVICE __host__ __device__
#else
#define XRING_HOST_DEVICE
#endif

namespace xring::kernels::fragments {

struct RowCol {
  int row;
  int col;
};

/// The K row (key within the tile) and first column lane `lane` addresses for the x4 load of
/// key n-tile `nt` (8 keys) and k-tiles `kt`, `kt + 1` (16 head-dim columns each; kt even).
XRING_HOST_DEVICE constexpr RowCol k_address(int lane, int nt, int kt) {
  return {nt * 8 + lane % 8, kt * 16 + (lane / 8) * 8};
}

/// The V row (key within the tile) and first column lane `lane` addresses for the x4.trans
/// load of key k-tile `kk` (16 keys) and head-dim n-tiles `dt`, `dt + 1` (8 columns each;
/// dt even). Matrices: 0 = (keys 0-7, dt), 1 = (keys 8-15, dt), 2 and 3 the same for dt + 1.
XRING_HOST_DEVICE constexpr RowCol v_address(int lane, int kk, int dt) {
  const int matrix = lane / 8;
  return {kk * 16 + (matrix % 2) * 8 + lane % 8, (dt + matrix / 2) * 8};
}

}  // namespace xring::kernels::fragments
