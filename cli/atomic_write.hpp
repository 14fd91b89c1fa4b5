// A command's output files, written all or none: temporaries renamed into place together,
// removed on failure and on fatal signals.
#pragma once

#include <cstdio>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace xring::cli {

/// The most output files one command may write (docs/limits.md); no command writes more
/// than 3. The signal handler keeps their temporary paths in fixed storage.
constexpr int kMaxOutputFiles = 8;

/// One output: `write` streams its content (so a large file need not be held in memory).
struct OutputFile {
  std::string path;
  std::function<void(std::ostream&)> write;
};

/// A flag of a command and the path it names ("--json", "report.json").
struct NamedPath {
  std::string flag;
  std::string path;
};

/// Whether an output at `path` would replace a device, pipe or socket (or a link to one): the
/// rename that commits an output replaces the node itself.
bool is_special_file(const std::string& path);

/// Bad input (exit 2) when two outputs name one file, or an output names one of the inputs:
/// the second write would silently replace the first (or the input) and the command would
/// still succeed. Empty paths, "-" (stdout) and inputs that are no file (a built-in name) are
/// skipped. Checked before any work, so nothing is written.
void refuse_shared_paths(const std::vector<NamedPath>& outputs,
                         const std::vector<NamedPath>& inputs = {});

/// Writes every file through temporary files (PATH.tmp.<pid>) and renames them into place
/// only after all were written: a failure or exception leaves none of them (and no temporary
/// file). Throws xring::Error naming the path; more than kMaxOutputFiles files, or two of
/// them at one path, is bad input, refused before anything is written.
void write_files_atomically(const std::vector<OutputFile>& files);
/// The same for contents already in memory: (path, text) pairs.
void write_files_atomically(const std::vector<std::pair<std::string, std::string>>& files);

/// Writes `text` to `path` through a temporary file and a rename, so a failure never leaves
/// a partial file. Throws xring::Error naming the path.
void write_file_atomically(const std::string& path, const std::string& text);

/// An output written piece by piece (a sweep's CSV, a row per point) into a temporary file
/// that commit() renames into place; dropped before that (an error) or ended by a signal, it
/// leaves nothing. Throws xring::Error naming the path.
class StreamedFile {
 public:
  explicit StreamedFile(std::string path);
  ~StreamedFile();
  StreamedFile(const StreamedFile&) = delete;
  StreamedFile& operator=(const StreamedFile&) = delete;
  void write(const std::string& text);
  void commit();

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  int pending_slot_ = -1;
};

/// INT (Ctrl-C), TERM, HUP, QUIT and PIPE remove the temporary files being written, then end
/// the process as the signal would: outputs are never left half-written.
void remove_partial_outputs_on_signals();

}  // namespace xring::cli
