// dtrain partition: split a data file into shard files plus a manifest.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "common.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/shards.h"
#include "dtrain/error.h"

namespace dtrain::cli {

namespace {

struct PartitionOptions {
  DataRequest data;
  std::string delimiter = ",";
  int parts = 0;
  std::string partition = "range";
  std::vector<double> weights;
  std::uint64_t seed = 1;
  std::string out;
};

void run_partition(PartitionOptions& o) {
  if (o.parts < 1) throw ConfigError("--parts must be at least 1");
  const auto partitioner = make_partitioner(o.partition, o.seed, o.weights);
  CsvOptions csv;
  csv.delimiter = parse_delimiter(o.delimiter);
  csv.label = o.data.label;
  // Shards keep every column; the label need not even be present.
  csv.require_label = false;
  if (const auto* hash = dynamic_cast<const HashPartitioner*>(partitioner.get())) {
    csv.key_column = hash->key_column();
  }
  const ShardManifest manifest =
      write_shards(o.data.path, resolve_format(o.data), csv, *partitioner,
                   static_cast<std::uint32_t>(o.parts), o.seed, o.out);
  const BalanceStats b = balance_of(manifest);
  std::printf("%llu rows from %s -> %u shards in %s (%s partitioning)\n",
              static_cast<unsigned long long>(manifest.total_rows), o.data.path.c_str(),
              manifest.parts, o.out.c_str(), manifest.partitioner.c_str());
  for (const ShardInfo& s : manifest.shards) {
    std::printf("  %-18s %10llu rows %12llu bytes  %s\n", s.file.c_str(),
                static_cast<unsigned long long>(s.rows), static_cast<unsigned long long>(s.bytes),
                s.checksum.c_str());
  }
  std::printf("balance: min %llu  max %llu  mean %.2f  max/mean %.4f\n",
              static_cast<unsigned long long>(b.min), static_cast<unsigned long long>(b.max),
              b.mean, b.imbalance);
}

}  // namespace

Action add_partition_command(CLI::App& app) {
  auto opts = std::make_shared<PartitionOptions>();
  auto& o = *opts;
  CLI::App* cmd = app.add_subcommand(
      "partition", "Split a data file into N shard files plus manifest.json (rows, checksums)");
  cmd->add_option("--data", o.data.path, "Input data file")->required();
  cmd->add_option("--format", o.data.format, "csv | libsvm (default: from the file name)");
  cmd->add_option("--label", o.data.label, "CSV label column (only checked, kept in the shards)");
  cmd->add_option("--delimiter", o.delimiter, "CSV field delimiter")->capture_default_str();
  cmd->add_option("--parts", o.parts, "Number of shards")->required();
  cmd->add_option("--partition", o.partition, "range | hash | hash:COLUMN | shuffle")
      ->capture_default_str();
  cmd->add_option("--weights", o.weights, "Range partitioning: relative size of each shard")
      ->delimiter(',');
  cmd->add_option("--seed", o.seed, "Seed for shuffle partitioning")->capture_default_str();
  cmd->add_option("--out", o.out, "Output directory (must not exist or be empty)")->required();
  return [opts] { run_partition(*opts); };
}

}  // namespace dtrain::cli
