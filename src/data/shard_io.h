// Internal: the shard files as load_shard needs them, shared with
// verify_shard so that a shard is read (and checked) only once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtrain/data/shards.h"
#include "text.h"

namespace dtrain::detail {

// Appends `id` to a .ids file's bytes: 8 bytes, little-endian.
void append_row_id(std::string& out, std::uint64_t id);

struct VerifiedShard {
  TextFile data;                   // the shard file, size and checksum checked
  std::vector<std::uint64_t> ids;  // its .ids file decoded, one per manifest row
  std::string ids_path;            // for error messages
};

// verify_shard's checks, keeping what they read.
VerifiedShard load_verified_shard(const std::string& dir, const ShardManifest& manifest,
                                  std::uint32_t part);

}  // namespace dtrain::detail
