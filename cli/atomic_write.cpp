// Atomic output files: temporaries, one rename per file with fatal signals held, and the
// signal handler that removes temporaries.
#include "atomic_write.hpp"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "xring/planner/error.hpp"

namespace xring::cli {

namespace {

// The temporary files being written, for the signal handler to remove (Ctrl-C must not
// leave a partial output behind). Plain storage: a handler may only touch lock-free state.
char pending_tmp[kMaxOutputFiles][4096];
volatile std::sig_atomic_t pending_count = 0;

extern "C" void remove_pending_and_die(int sig) {
  for (int i = 0; i < pending_count; ++i) ::unlink(pending_tmp[i]);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

/// Marks temporary files as the ones to remove on a signal until the guard goes out of scope.
class PendingFiles {
 public:
  PendingFiles() : outer_(pending_count) {}
  ~PendingFiles() { pending_count = outer_; }  // the files of an enclosing writer stay marked
  void add(const std::string& tmp) {
    if (pending_count >= kMaxOutputFiles || tmp.size() >= sizeof pending_tmp[0])
      throw Error(tmp + ": too many or too long output paths for one command");
    std::snprintf(pending_tmp[pending_count], sizeof pending_tmp[0], "%s", tmp.c_str());
    pending_count = pending_count + 1;
  }

 private:
  std::sig_atomic_t outer_;
};

/// The signals whose default action ends the process: each first removes the temporary files.
/// INT (Ctrl-C), TERM (kill), HUP (the terminal closed), QUIT (Ctrl-\, still dumps core after)
/// and PIPE (a reader of stdout went away, e.g. `| head`: still ends the process quietly).
constexpr int kFatalSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};

/// Holds the fatal signals back while it lives: the renames that commit a command's outputs
/// happen all or not at all; a signal that arrived meanwhile is delivered after.
class FatalSignalsHeld {
 public:
  FatalSignalsHeld() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kFatalSignals) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~FatalSignalsHeld() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  FatalSignalsHeld(const FatalSignalsHeld&) = delete;
  FatalSignalsHeld& operator=(const FatalSignalsHeld&) = delete;

 private:
  sigset_t previous_;
};

/// Test hook (tests/test_hostile_inputs.cpp): with XRING_TEST_HOLD_ATOMIC_WRITE=MARKER, once
/// every temporary file is written the command creates MARKER and waits up to 60 s before
/// committing, so that a test can send a signal inside the write deterministically.
void hold_for_test_after_temporaries() {
  const char* marker = std::getenv("XRING_TEST_HOLD_ATOMIC_WRITE");
  if (!marker || !*marker) return;
  std::ofstream(marker) << ::getpid() << "\n";
  for (int tenth = 0; tenth < 600; ++tenth) ::usleep(100000);
}

}  // namespace

void remove_partial_outputs_on_signals() {
  for (int sig : kFatalSignals) std::signal(sig, remove_pending_and_die);
}

namespace {

/// Writes a file's content to `tmp`; throws (after removing it) when the write fails.
void write_temporary(const OutputFile& file, const std::string& tmp) {
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(file.path + ": cannot write the file (does its folder exist?)");
  file.write(out);
  out.flush();
  if (!out) {
    out.close();
    std::filesystem::remove(tmp);
    throw Error(file.path + ": writing failed (disk full?)", ExitCode::runtime);
  }
}

/// The file a path names, for comparing paths: symbolic links and ".." resolved as far as
/// the path exists, the rest taken as written.
std::filesystem::path file_identity(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec).lexically_normal();
  std::filesystem::path p = std::filesystem::weakly_canonical(absolute, ec);
  return ec ? absolute : p;
}

/// An existing folder, device, pipe or socket (or a link to one) at `path` would be replaced
/// by the rename that commits an output (or fail it): refused (the flags' validator says so
/// first, where the path is a flag's).
void refuse_non_regular(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path + " is a directory; give a file path");
  if (is_special_file(path))
    throw Error(path +
                " is not a regular file (a device, pipe or socket, or a link to one); "
                "give a file path");
}

}  // namespace

bool is_special_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec);
}

void refuse_shared_paths(const std::vector<NamedPath>& outputs,
                         const std::vector<NamedPath>& inputs) {
  std::vector<std::pair<std::filesystem::path, const NamedPath*>> seen;
  auto named = [](const NamedPath& n) { return !n.path.empty() && n.path != "-"; };
  std::error_code ec;  // an input that is no file (a built-in name) cannot be replaced
  for (const NamedPath& in : inputs)
    if (named(in) && std::filesystem::exists(in.path, ec))
      seen.push_back({file_identity(in.path), &in});
  const size_t input_count = seen.size();
  for (const NamedPath& out : outputs) {
    if (!named(out)) continue;
    const std::filesystem::path id = file_identity(out.path);
    for (size_t i = 0; i < seen.size(); ++i)
      if (seen[i].first == id)
        throw Error(out.flag + " " + out.path + ": " + seen[i].second->flag + " names the same " +
                    (i < input_count ? "file as its input; it would be replaced"
                                     : "file; one output would replace the other") +
                    "; give each output its own path");
    seen.push_back({id, &out});
  }
}

void write_files_atomically(const std::vector<OutputFile>& files) {
  if (files.size() > static_cast<size_t>(kMaxOutputFiles))
    throw Error("one command writes at most " + std::to_string(kMaxOutputFiles) +
                " output files; this one was asked for " + std::to_string(files.size()));
  std::vector<NamedPath> outputs;
  for (const OutputFile& file : files) {
    outputs.push_back({"output", file.path});
    refuse_non_regular(file.path);
  }
  refuse_shared_paths(outputs);
  std::vector<std::string> tmps;
  auto remove_all = [&] {
    std::error_code ignored;
    for (const auto& t : tmps) std::filesystem::remove(t, ignored);
  };
  PendingFiles pending;  // a signal removes every temporary file, written or in progress
  try {
    for (const OutputFile& file : files) {
      tmps.push_back(file.path + ".tmp." + std::to_string(::getpid()));
      pending.add(tmps.back());
      write_temporary(file, tmps.back());
    }
    hold_for_test_after_temporaries();
    FatalSignalsHeld commit;
    for (size_t i = 0; i < files.size(); ++i) {
      std::error_code ec;
      std::filesystem::rename(tmps[i], files[i].path, ec);
      if (ec) throw Error(files[i].path + ": cannot replace the file: " + ec.message());
    }
  } catch (...) {
    remove_all();
    throw;
  }
}

void write_files_atomically(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<OutputFile> outputs;
  for (const auto& [path, text] : files)
    outputs.push_back({path, [&text = text](std::ostream& out) { out << text; }});
  write_files_atomically(outputs);
}

StreamedFile::StreamedFile(std::string path)
    : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {
  if (pending_count >= kMaxOutputFiles || tmp_.size() >= sizeof pending_tmp[0])
    throw Error(tmp_ + ": too many or too long output paths for one command");
  refuse_non_regular(path_);
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (!file_) throw Error(path_ + ": cannot write the file (does its folder exist?)");
  std::snprintf(pending_tmp[pending_count], sizeof pending_tmp[0], "%s", tmp_.c_str());
  pending_slot_ = pending_count;
  pending_count = pending_count + 1;
}

StreamedFile::~StreamedFile() {
  if (file_) std::fclose(file_);
  if (!tmp_.empty()) std::remove(tmp_.c_str());
  if (pending_slot_ >= 0 && pending_count == pending_slot_ + 1) pending_count = pending_slot_;
}

void StreamedFile::write(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size())
    throw Error(path_ + ": writing failed (disk full?)", ExitCode::runtime);
}

void StreamedFile::commit() {
  const bool flushed = std::fflush(file_) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) throw Error(path_ + ": writing failed (disk full?)", ExitCode::runtime);
  hold_for_test_after_temporaries();
  FatalSignalsHeld commit;
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) throw Error(path_ + ": cannot replace the file: " + ec.message());
  tmp_.clear();
}

void write_file_atomically(const std::string& path, const std::string& text) {
  write_files_atomically(std::vector<std::pair<std::string, std::string>>{{path, text}});
}

}  // namespace xring::cli
