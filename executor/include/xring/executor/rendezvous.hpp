// How the processes of a multi-process run (`--backend nccl`) find out who they are and meet:
// the launcher's identity (flags, or OpenMPI / PMI / Slurm / torchrun environment variables),
// and a rendezvous on a shared file that hands rank 0's blob (NCCL's unique id) to every rank.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace xring::executor {

struct LaunchIdentity {
  int rank = 0;
  int world = 1;
  std::string rendezvous;  ///< shared file path ("" when world == 1)
  std::string source;      ///< where rank and world came from: "flags", "OpenMPI", "Slurm", ...
};

/// Rank and world from the flags when given, else from the launcher's environment (checked in
/// this order: OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/PMI_SIZE, SLURM_PROCID/SLURM_NTASKS,
/// RANK/WORLD_SIZE). A world above 1 needs a rendezvous file. Throws xring::Error (bad input)
/// naming the flag or variable that is missing or wrong.
LaunchIdentity launch_identity(std::optional<int> rank, std::optional<int> world,
                               const std::string& rendezvous,
                               const std::map<std::string, std::string>& environment);
/// The process environment as a map, for launch_identity.
std::map<std::string, std::string> process_environment();

struct RendezvousResult {
  std::string blob;                ///< rank 0's blob
  std::vector<std::string> hosts;  ///< every rank's host, for messages that name where it failed
};

/// Meets the other ranks through `path` on a file system they all see. Each rank checks in
/// (PATH.rank<R>, a random token and its host); rank 0 waits for all of them and publishes
/// `blob` with the tokens (PATH, written atomically); the others wait for a publication that
/// lists their own token, so a file left by an earlier job is never mistaken for this one.
/// Throws xring::Error (runtime) after `timeout_s`, naming the ranks that did not arrive.
RendezvousResult file_rendezvous(const std::string& path, int rank, int world,
                                 const std::string& blob, double timeout_s);

}  // namespace xring::executor
