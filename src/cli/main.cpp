// dtrain: distributed training from the command line.
#include <iostream>
#include <map>
#include <sstream>

#include "commands.h"
#include "dtrain/error.h"

namespace {

// CLI11 reads config files on the main app only. `dtrain train --config F`
// reaches the main app's option by fall-through, and this formatter files the
// file's top-level keys under [train], so that they set train's options (and
// a flag given on the command line still wins, as CLI11 skips options that
// already have a value).
class TrainSectionToml : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::stringstream text;
    text << "[train]\n" << input.rdbuf();
    return CLI::ConfigTOML::from_config(text);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dtrain: distributed training of linear models, softmax regression and MLPs on N workers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dtrain 0.1.0");
  std::map<std::string, dtrain::cli::Action> actions;
  using Adder = dtrain::cli::Action (*)(CLI::App&);
  const std::pair<const char*, Adder> commands[] = {
      {"train", dtrain::cli::add_train_command},
      {"eval", dtrain::cli::add_eval_command},
      {"predict", dtrain::cli::add_predict_command},
      {"inspect", dtrain::cli::add_inspect_command},
      {"partition", dtrain::cli::add_partition_command},
      {"compare", dtrain::cli::add_compare_command},
  };
  for (const auto& [name, add] : commands) actions[name] = add(app);
  app.set_config("--config", "", "TOML file with train options (keys are option names; flags win)");
  app.config_formatter(std::make_shared<TrainSectionToml>());
  app.allow_config_extras(CLI::config_extras_mode::error);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11's own messages can span lines; keep the contract of one line.
    std::string msg = e.what();
    for (char& c : msg) {
      if (c == '\n') c = ' ';
    }
    std::cerr << "dtrain: " << msg << " (see --help)\n";
    return 2;
  }
  try {
    for (const auto* sub : app.get_subcommands()) actions.at(sub->get_name())();
  } catch (const dtrain::ConfigError& e) {
    std::cerr << "dtrain: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dtrain: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
