// `xring explain`: the numbers behind one cross-attention layer's choice.
#include <fmt/core.h>

#include "command_json.hpp"
#include "commands.hpp"
#include "xring/planner/explain.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {

void attach_explain(CLI::App& sub, int& exit_code) {
  struct Options {
    SpecOptions spec;
    int layer = -1;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  add_spec_options(sub, o->spec);
  sub.add_option("--layer", o->layer,
                 "Decoder layer index of a cross-attention layer (default: the first one)");
  sub.add_flag("--json", o->json,
               "Print {schema_version, command, layer, shape, ring, strategies[], crossover, "
               "hiding} instead of the text");
  sub.footer(
      "Example:\n  xring explain --model openflamingo-9b --cluster a30-8 --workload video-qa\n"
      "  xring explain --model tiny --json");
  sub.callback([o, &exit_code] {
    Inputs in = load_inputs(o->spec);
    Explanation e = explain(in, planner_options(o->spec), o->layer);
    exit_code = 0;
    if (o->json) {
      fmt::print("{}\n", explain_json(e, in).dump(2));
      return;
    }
    using units::format_bytes, units::format_time, units::format_bandwidth, units::format_flop_rate;
    const LayerShape& s = e.shape;
    // As in the JSON: backward bytes only for training, the link and hiding only for a ring.
    const bool training = in.workload.phase == Phase::training;
    const bool ring = e.ring_ranks > 1;
    fmt::print("layer {} of {}: B={} H={} H_kv={} d={} b={} S_Q={} S_KV={}\n", e.layer.index,
               in.model.name, s.batch, s.heads, s.kv_heads, s.head_dim, s.bytes, s.s_q, s.s_kv);
    fmt::print("chosen: {} on {} rank{}{}\n  {}\n\n", to_string(e.layer.strategy), e.layer.ranks,
               e.layer.ranks == 1 ? "" : "s", e.layer.recompute ? " with recomputation" : "",
               e.layer.reason);
    if (ring)
      fmt::print("ring of P={} ranks, slowest hop {} + {} latency, attention {} per rank\n",
                 e.ring_ranks, format_bandwidth(e.ring_link.bytes_per_s),
                 format_time(e.ring_link.latency_s), format_flop_rate(e.attention_flop_per_s));
    else
      fmt::print("one GPU: no ring and no transfers, attention {}\n",
                 format_flop_rate(e.attention_flop_per_s));
    fmt::print("  {:<12} {:>16} {:>16} {:>14} {:>16}\n", "strategy", "fwd bytes/step",
               "bwd bytes/step", "fwd comm/step", "fwd compute/step");
    for (const auto& row : e.rows)
      fmt::print("  {:<12} {:>16} {:>16} {:>14} {:>16}\n", to_string(row.strategy),
                 ring ? format_bytes(row.forward_bytes_per_step) : "—",
                 ring && training ? format_bytes(row.backward_bytes_per_step) : "—",
                 ring ? format_time(transfer_s(row.forward_bytes_per_step, e.ring_link)) : "—",
                 format_time(e.step_compute_s));
    if (!ring) {
      fmt::print("\ncrossover: — (one GPU: nothing moves between ranks)\n");
      fmt::print("hiding:    — (one GPU: no transfers to hide)\n");
      return;
    }
    const ExplainRow& kv_row = e.rows[0];
    const ExplainRow& q_row = e.rows[1];
    fmt::print(
        "\ncrossover: query-ring moves fewer bytes when (S_Q/P)/(S_KV/P) < (H_kv/H)*d*b/(d*b+2) = "
        "{:.4g}\n           here {:.0f}/{:.0f} = {:.4g} -> {}\n",
        e.crossover_ratio, e.local_q_block, e.local_kv_block, e.block_ratio,
        q_row.forward_bytes_per_step < kv_row.forward_bytes_per_step ? "query_ring moves fewer bytes"
        : q_row.forward_bytes_per_step > kv_row.forward_bytes_per_step
            ? "kv_ring moves fewer bytes"
            : "both move the same bytes");
    fmt::print(
        "hiding:    query-ring transfers hide once S_KV/P >= F*(2db+4)/(4d*BW) + "
        "F*latency/(4*B*H*(S_Q/P)*d) = {:.0f} tokens (here {:.0f}: {})\n",
        e.query_ring_hiding_block, e.local_kv_block,
        e.local_kv_block >= e.query_ring_hiding_block ? "hidden" : "exposed");
    fmt::print(
        "           KV-ring transfers hide once S_Q/P >= F*H_kv*b/(2*H*BW) + "
        "F*latency/(4*B*H*(S_KV/P)*d) = {:.0f} tokens (here {:.0f}: {})\n",
        e.kv_ring_hiding_block, e.local_q_block,
        e.local_q_block >= e.kv_ring_hiding_block ? "hidden" : "exposed");
    fmt::print("           (F = {} at one step's shape)\n",
               format_flop_rate(e.attention_flop_per_s));
  });
}

}  // namespace xring::cli
