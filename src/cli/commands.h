// The `dtrain` command-line tool: one function per subcommand. Each sets up
// its options on a CLI11 subcommand and returns the action to run after
// parsing. Errors are thrown (dtrain::Error and friends); main() turns them
// into a one-line message and an exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace dtrain::cli {

using Action = std::function<void()>;

Action add_train_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_predict_command(CLI::App& app);
Action add_inspect_command(CLI::App& app);
Action add_partition_command(CLI::App& app);
Action add_compare_command(CLI::App& app);

}  // namespace dtrain::cli
