// The forward kernel's ldmatrix addressing (kernels/include/xring/kernels/fragments.hpp),
// checked without a GPU: ldmatrix is emulated over the addresses each lane gives, and every
// lane's registers are compared with the mma.m16n8k16 B-fragment layout (PTX ISA; restated in
// kernels/cuda/common.cuh). Also: every row address is 16-byte aligned and each 8-row phase of
// a load touches 32 distinct shared-memory banks with the kernel's padded row stride.
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <utility>

#include "xring/kernels/fragments.hpp"

namespace {

using xring::kernels::fragments::k_address;
using xring::kernels::fragments::RowCol;
using xring::kernels::fragments::v_address;

/// An element of a tile, identified by where it lives: (row, col).
using Element = std::pair<int, int>;
/// One 32-bit register: its low and high 16-bit halves.
using Register = std::pair<Element, Element>;
using Lanes = std::array<RowCol, 32>;

/// Register m of lane l after ldmatrix.x4 (non-transposed) with these row addresses: row l/4
/// of matrix m, columns 2(l%4) and 2(l%4)+1 of it.
Register ldmatrix(const Lanes& addr, int lane, int m) {
  const RowCol row_start = addr[8 * m + lane / 4];
  const int c = 2 * (lane % 4);
  return {{row_start.row, row_start.col + c}, {row_start.row, row_start.col + c + 1}};
}

/// The same with .trans: column l/4 of matrix m, rows 2(l%4) and 2(l%4)+1 of it.
Register ldmatrix_trans(const Lanes& addr, int lane, int m) {
  const RowCol lo = addr[8 * m + 2 * (lane % 4)];
  const RowCol hi = addr[8 * m + 2 * (lane % 4) + 1];
  return {{lo.row, lo.col + lane / 4}, {hi.row, hi.col + lane / 4}};
}

/// mma.m16n8k16 B operand (16 x 8, "col"): b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g] for lane
/// 4g + t. `at(k, n)` says where B[k][n] lives in the tile.
template <class At>
std::array<Register, 2> b_fragment(int lane, At at) {
  const int g = lane / 4, t = lane % 4;
  return {Register{at(2 * t, g), at(2 * t + 1, g)}, Register{at(2 * t + 8, g), at(2 * t + 9, g)}};
}

/// Each 8-row phase of a 16-byte-per-row load must hit 32 distinct 4-byte banks.
void expect_conflict_free(const Lanes& addr, int row_stride_bytes, const char* what) {
  for (int m = 0; m < 4; ++m) {
    std::set<int> banks;
    for (int r = 0; r < 8; ++r) {
      const RowCol a = addr[8 * m + r];
      const long long byte = static_cast<long long>(a.row) * row_stride_bytes + a.col * 2;
      EXPECT_EQ(byte % 16, 0) << what << " lane " << 8 * m + r << " is not 16-byte aligned";
      for (int word = 0; word < 4; ++word) banks.insert(static_cast<int>((byte / 4 + word) % 32));
    }
    EXPECT_EQ(banks.size(), 32u) << what << ": bank conflict in matrix " << m;
  }
}

constexpr int kTileKeys = 64;  // kN in attention_forward.cu

TEST(Fragments, KLoadsGiveTheBFragmentsOfQKTranspose) {
  for (int d : {64, 128})
    for (int nt = 0; nt < kTileKeys / 8; ++nt)
      for (int kt = 0; kt < d / 16; kt += 2) {
        Lanes addr{};
        for (int lane = 0; lane < 32; ++lane) addr[lane] = k_address(lane, nt, kt);
        for (int lane = 0; lane < 32; ++lane)
          for (int j = 0; j < 2; ++j) {
            // B = Kᵀ restricted to keys nt*8.. and head-dim columns (kt + j)*16..:
            // B[k][n] = K[nt*8 + n][(kt + j)*16 + k].
            const auto want = b_fragment(lane, [&](int k, int n) {
              return Element{nt * 8 + n, (kt + j) * 16 + k};
            });
            EXPECT_EQ(ldmatrix(addr, lane, 2 * j), want[0])
                << "d " << d << " nt " << nt << " kt " << kt + j << " lane " << lane << " b0";
            EXPECT_EQ(ldmatrix(addr, lane, 2 * j + 1), want[1])
                << "d " << d << " nt " << nt << " kt " << kt + j << " lane " << lane << " b1";
          }
        expect_conflict_free(addr, (d + 8) * 2, "K");
      }
}

TEST(Fragments, VLoadsGiveTheBFragmentsOfPV) {
  for (int d : {64, 128})
    for (int kk = 0; kk < kTileKeys / 16; ++kk)
      for (int dt = 0; dt < d / 8; dt += 2) {
        Lanes addr{};
        for (int lane = 0; lane < 32; ++lane) addr[lane] = v_address(lane, kk, dt);
        for (int lane = 0; lane < 32; ++lane)
          for (int j = 0; j < 2; ++j) {
            // B = V restricted to keys kk*16.. and head-dim columns (dt + j)*8..:
            // B[k][n] = V[kk*16 + k][(dt + j)*8 + n].
            const auto want = b_fragment(lane, [&](int k, int n) {
              return Element{kk * 16 + k, (dt + j) * 8 + n};
            });
            EXPECT_EQ(ldmatrix_trans(addr, lane, 2 * j), want[0])
                << "d " << d << " kk " << kk << " dt " << dt + j << " lane " << lane << " b0";
            EXPECT_EQ(ldmatrix_trans(addr, lane, 2 * j + 1), want[1])
                << "d " << d << " kk " << kk << " dt " << dt + j << " lane " << lane << " b1";
          }
        expect_conflict_free(addr, (d + 8) * 2, "V");
      }
}

TEST(Fragments, TheCheckCatchesAWrongLayout) {
  // V's matrices in the K order (both head-dim tiles first) must not pass as B fragments.
  Lanes addr{};
  for (int lane = 0; lane < 32; ++lane)
    addr[lane] = RowCol{(lane / 16) * 8 + lane % 8, ((lane / 8) % 2) * 8};
  const auto want = b_fragment(5, [](int k, int n) { return Element{k, n}; });
  EXPECT_NE(ldmatrix_trans(addr, 5, 1), want[1]);
  // An unpadded row stride of 128 elements puts all eight rows in the same banks.
  for (int lane = 0; lane < 32; ++lane) addr[lane] = k_address(lane, 0, 0);
  std::set<int> banks;
  for (int r = 0; r < 8; ++r) banks.insert(static_cast<int>((addr[r].row * 256 / 4) % 32));
  EXPECT_EQ(banks.size(), 1u);
}

}  // namespace
