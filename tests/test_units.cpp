// Unit parsing: exact values for every accepted form, rejection of everything else.
#include <gtest/gtest.h>

#include "xring/planner/units.hpp"

using xring::units::parse;
using xring::units::Quantity;

TEST(Units, BytesDecimalAndBinaryAreDistinct) {
  EXPECT_EQ(parse("80GiB", Quantity::bytes), 80.0 * (1ull << 30));
  EXPECT_EQ(parse("80GB", Quantity::bytes), 80e9);
  EXPECT_EQ(parse("1.5 MiB", Quantity::bytes), 1.5 * (1 << 20));
  EXPECT_EQ(parse("512B", Quantity::bytes), 512.0);
  EXPECT_EQ(parse("2TiB", Quantity::bytes), 2.0 * (1ull << 40));
}

TEST(Units, BandwidthBitsBecomeBytes) {
  EXPECT_EQ(parse("25GB/s", Quantity::bandwidth), 25e9);
  EXPECT_EQ(parse("400Gb/s", Quantity::bandwidth), 50e9);
  EXPECT_EQ(parse("100Gbit/s", Quantity::bandwidth), 12.5e9);
  EXPECT_EQ(parse("1.25GB/s", Quantity::bandwidth), 1.25e9);
  EXPECT_EQ(parse("1GiB/s", Quantity::bandwidth), double(1 << 30));
}

TEST(Units, Time) {
  EXPECT_DOUBLE_EQ(*parse("2us", Quantity::time), 2e-6);
  EXPECT_DOUBLE_EQ(*parse("1.5ms", Quantity::time), 1.5e-3);
  EXPECT_DOUBLE_EQ(*parse("500ns", Quantity::time), 5e-7);
  EXPECT_EQ(parse("3s", Quantity::time), 3.0);
  EXPECT_EQ(parse("1h", Quantity::time), 3600.0);
}

TEST(Units, FlopRateAndCounts) {
  EXPECT_EQ(parse("989TFLOP/s", Quantity::flop_rate), 989e12);
  EXPECT_EQ(parse("312TFLOPS", Quantity::flop_rate), 312e12);
  EXPECT_EQ(parse("10.6B", Quantity::count), 10.6e9);
  EXPECT_EQ(parse("2.5M", Quantity::count), 2.5e6);
  EXPECT_EQ(parse("1e9", Quantity::count), 1e9);
  EXPECT_EQ(parse("42", Quantity::count), 42.0);
}

TEST(Units, RejectsMissingWrongOrMalformedUnits) {
  EXPECT_FALSE(parse("80", Quantity::bytes));           // no unit
  EXPECT_FALSE(parse("25GB", Quantity::bandwidth));     // bytes, not a rate
  EXPECT_FALSE(parse("25 gb/s", Quantity::bandwidth));  // case matters: gb is not a unit
  EXPECT_FALSE(parse("2 us ", Quantity::time));         // trailing space
  EXPECT_FALSE(parse("-1GiB", Quantity::bytes));        // negative
  EXPECT_FALSE(parse("GiB", Quantity::bytes));          // no number
  EXPECT_FALSE(parse("1..5GiB", Quantity::bytes));
  EXPECT_FALSE(parse("80GiB/s", Quantity::bytes));
  EXPECT_FALSE(parse("10X", Quantity::count));
  EXPECT_FALSE(parse("", Quantity::time));
}

TEST(Units, FormatPicksAReadableUnit) {
  EXPECT_EQ(xring::units::format_bytes(80.0 * (1ull << 30)), "80 GiB");
  EXPECT_EQ(xring::units::format_time(0.00927), "9.27 ms");
  EXPECT_EQ(xring::units::format_bandwidth(25e9), "25 GB/s");
  EXPECT_EQ(xring::units::format_flop_rate(989e12), "989 TFLOP/s");
}
