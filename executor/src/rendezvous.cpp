// Launch identity and the shared-file rendezvous.
#include "xring/executor/rendezvous.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "xring/executor/communicator.hpp"
#include "xring/planner/error.hpp"

extern char** environ;

namespace xring::executor {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr auto kPoll = std::chrono::milliseconds(5);

std::optional<int> integer_variable(const std::map<std::string, std::string>& env,
                                    const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  try {
    size_t used = 0;
    int v = std::stoi(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("environment variable " + name + "=\"" + it->second + "\" is not an integer");
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string unhex(const std::string& text) {
  std::string out;
  for (size_t i = 0; i + 1 < text.size(); i += 2)
    out += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
  return out;
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw Error("rendezvous " + path + ": cannot write " + tmp, ExitCode::runtime);
  }
  fs::rename(tmp, path);
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string check_in_path(const std::string& path, int rank) {
  return path + ".rank" + std::to_string(rank);
}

}  // namespace

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

LaunchIdentity launch_identity(std::optional<int> rank, std::optional<int> world,
                               const std::string& rendezvous,
                               const std::map<std::string, std::string>& env) {
  LaunchIdentity id;
  id.rendezvous = rendezvous;
  if (rank || world) {
    if (!rank || !world)
      throw Error("--rank and --world go together (got only " +
                  std::string(rank ? "--rank" : "--world") + ")");
    id.rank = *rank;
    id.world = *world;
    id.source = "flags";
  } else {
    static const std::vector<std::array<const char*, 3>> launchers = {
        {"OpenMPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
        {"PMI", "PMI_RANK", "PMI_SIZE"},
        {"Slurm", "SLURM_PROCID", "SLURM_NTASKS"},
        {"torchrun", "RANK", "WORLD_SIZE"}};
    for (const auto& [name, rank_var, size_var] : launchers) {
      auto r = integer_variable(env, rank_var), w = integer_variable(env, size_var);
      if (!r && !w) continue;
      if (!r || !w)
        throw Error(std::string(name) + " launch: " + (r ? size_var : rank_var) +
                    " is missing beside " + (r ? rank_var : size_var));
      id.rank = *r;
      id.world = *w;
      id.source = name;
      break;
    }
    if (id.source.empty())
      throw Error(
          "--backend nccl needs to know this process's rank: pass --rank R --world N "
          "--rendezvous FILE, or start it under mpirun, srun or torchrun");
  }
  if (id.world < 1)
    throw Error("--world must be at least 1 (got " + std::to_string(id.world) + ")");
  if (id.rank < 0 || id.rank >= id.world)
    throw Error("--rank " + std::to_string(id.rank) + " is outside 0.." +
                std::to_string(id.world - 1) + " (from " + id.source + ")");
  if (id.world > 1 && id.rendezvous.empty())
    throw Error("--rendezvous FILE is required with " + std::to_string(id.world) +
                " processes: a path on a file system every rank can see, fresh for the job");
  return id;
}

RendezvousResult file_rendezvous(const std::string& path, int rank, int world,
                                 const std::string& blob, double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  std::random_device seed;
  const std::string token = std::to_string(seed()) + "-" + std::to_string(seed()) + "-" +
                            std::to_string(::getpid()) + "-" + std::to_string(rank);
  const std::string host = host_name();
  RendezvousResult result;
  if (world == 1) return {blob, {host}};
  if (rank != 0) {
    write_atomically(check_in_path(path, rank),
                     nlohmann::json{{"token", token}, {"host", host}}.dump());
    while (true) {
      if (auto j = read_json(path); j && j->value("world", 0) == world && j->contains("tokens") &&
                                    (*j)["tokens"].size() == size_t(world) &&
                                    (*j)["tokens"][rank] == token) {
        std::error_code ignored;
        fs::remove(check_in_path(path, rank), ignored);
        return {unhex((*j)["blob"].get<std::string>()),
                (*j)["hosts"].get<std::vector<std::string>>()};
      }
      if (Clock::now() > deadline)
        throw Error("rendezvous " + path + ": rank " + std::to_string(rank) + " on " + host +
                        " waited " + std::to_string(timeout_s) +
                        " s for rank 0 to publish (is rank 0 running, with the same --rendezvous "
                        "and --world " +
                        std::to_string(world) + "?)",
                    ExitCode::runtime);
      std::this_thread::sleep_for(kPoll);
    }
  }
  // Rank 0: wait for every check-in, then publish.
  std::vector<std::string> tokens(world), hosts(world);
  tokens[0] = token;
  hosts[0] = host;
  while (true) {
    std::vector<int> missing;
    for (int r = 1; r < world; ++r) {
      if (!tokens[r].empty()) continue;
      if (auto j = read_json(check_in_path(path, r)); j && j->contains("token")) {
        tokens[r] = (*j)["token"].get<std::string>();
        hosts[r] = j->value("host", "?");
      } else {
        missing.push_back(r);
      }
    }
    if (missing.empty()) break;
    if (Clock::now() > deadline) {
      std::string list;
      for (int r : missing) list += (list.empty() ? "" : ", ") + std::to_string(r);
      throw Error("rendezvous " + path + ": rank" + (missing.size() > 1 ? "s " : " ") + list +
                      " of " + std::to_string(world) + " did not check in within " +
                      std::to_string(timeout_s) + " s (started, with the same --rendezvous?)",
                  ExitCode::runtime);
    }
    std::this_thread::sleep_for(kPoll);
  }
  write_atomically(
      path,
      nlohmann::json{{"world", world}, {"tokens", tokens}, {"hosts", hosts}, {"blob", hex(blob)}}
          .dump());
  result.blob = blob;
  result.hosts = hosts;
  return result;
}

}  // namespace xring::executor
