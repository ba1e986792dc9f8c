// Error types thrown at dtrain's boundaries (I/O, parsing, configuration,
// communication). Library code never exits the process: the CLI is the only
// place that turns these into a message and an exit status.
#pragma once

#include <stdexcept>
#include <string>

namespace dtrain {

// Base of every error dtrain throws on purpose. what() is a single line that
// names the file/line, field, rank or operation involved.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Malformed or unusable input data: "file:line: what".
class InputError : public Error {
 public:
  using Error::Error;
};

// Invalid option values or combinations, bad config files.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A model file that is missing, truncated, corrupt or of the wrong kind.
class ModelFileError : public Error {
 public:
  using Error::Error;
};

// A collective or point-to-point operation failed: timeout, mismatched
// calls between ranks, or a peer that failed. The message names the rank and
// the operation.
class CommError : public Error {
 public:
  using Error::Error;
};

}  // namespace dtrain
