// The one rule of the CLI tests that run `--backend cuda`: without a usable GPU (or without CUDA
// in the build) the run exits 3 saying why after "--backend cuda: " and writes no report, and
// the test skips with that message; anything else must be a real run.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>

#define XRING_SKIP_UNLESS_CUDA_RAN(result, report)                                 \
  do {                                                                             \
    if ((result).exit_code == 3) {                                                 \
      EXPECT_NE((result).output.find("--backend cuda: "), std::string::npos)       \
          << (result).output;                                                      \
      EXPECT_FALSE(std::filesystem::exists(report));                               \
      GTEST_SKIP() << (result).output;                                             \
    }                                                                              \
  } while (false)
