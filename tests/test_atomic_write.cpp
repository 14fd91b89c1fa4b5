// Output files of one command (docs/limits.md): all or none, at most 8, tested at the limit
// and one past it through the writer every command uses (no command has more than 3 outputs,
// so the binary's flags cannot reach it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "atomic_write.hpp"
#include "cli_test_util.hpp"
#include "xring/planner/error.hpp"

namespace fs = std::filesystem;
using xring::cli::kMaxOutputFiles;
using xring::cli::OutputFile;
using xring::cli::write_files_atomically;

namespace {

/// `count` outputs in a fresh folder, file i holding "output i".
std::vector<OutputFile> outputs_in(const fs::path& folder, int count) {
  fs::remove_all(folder);
  fs::create_directories(folder);
  std::vector<OutputFile> files;
  for (int i = 0; i < count; ++i)
    files.push_back({(folder / ("out" + std::to_string(i) + ".txt")).string(),
                     [i](std::ostream& out) { out << "output " << i; }});
  return files;
}

std::string content_of(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int entries_in(const fs::path& folder) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(folder)) ++n;
  return n;
}

}  // namespace

TEST(ResourceLimits, EightOutputFilesAreWrittenAndNineAreRefused) {
  ASSERT_EQ(kMaxOutputFiles, 8);
  const fs::path at = xring::test::scratch_path("eight-outputs");
  const std::vector<OutputFile> eight = outputs_in(at, 8);
  write_files_atomically(eight);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(content_of(eight[i].path), "output " + std::to_string(i));
  EXPECT_EQ(entries_in(at), 8);  // no temporary file left

  const fs::path past = xring::test::scratch_path("nine-outputs");
  try {
    write_files_atomically(outputs_in(past, 9));
    ADD_FAILURE() << "nine output files were accepted";
  } catch (const xring::Error& e) {
    EXPECT_EQ(e.kind(), xring::ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("at most 8 output files; this one was asked for 9"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(entries_in(past), 0);  // refused before anything was written
}

TEST(AtomicWrite, AWriterThatThrowsLeavesNoFileAndNoTemporary) {
  const fs::path folder = xring::test::scratch_path("failing-output");
  std::vector<OutputFile> files = outputs_in(folder, 2);
  files.push_back({(folder / "third.txt").string(), [](std::ostream& out) {
                     out << "partial";
                     throw xring::Error("third.txt: cannot be made");
                   }});
  EXPECT_THROW(write_files_atomically(files), xring::Error);
  EXPECT_EQ(entries_in(folder), 0);
}
