// dtrain inspect: what is inside a model file.
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "common.h"

namespace dtrain::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

// Networks: the shape and the parameter count per layer; the weights
// themselves are too many to list usefully.
void inspect_network(const InspectOptions& o, const SavedModel& m) {
  const ModelArchitecture arch = m.spec.architecture();
  const auto layers = dense_layout(arch.network_spec());
  std::string shape = std::to_string(arch.features);
  for (const DenseLayout& l : layers) shape += "-" + std::to_string(l.out);
  if (o.json) {
    nlohmann::json j;
    j["file"] = o.model;
    j["format_version"] = kModelFormatVersion;
    j["model"] = to_string(m.spec.kind);
    j["num_features"] = m.spec.num_features;
    j["classes"] = m.spec.classes;
    j["hidden"] = m.spec.hidden;
    j["activation"] = to_string(m.spec.activation);
    j["loss"] = to_string(m.spec.loss);
    j["num_params"] = m.params.size();
    j["label"] = m.spec.label_name;
    j["input_format"] = m.spec.input_format;
    j["l2"] = m.spec.l2;
    j["standardized"] = !m.standardizer.empty();
    j["training"] = nlohmann::json::parse(m.spec.training_json);
    std::cout << j.dump(2) << std::endl;
    return;
  }
  std::printf("model file    %s (format version %u)\n", o.model.c_str(), kModelFormatVersion);
  std::printf("model         %s %s (%s, %s loss), %zu parameters, input %s\n",
              to_string(m.spec.kind), shape.c_str(), to_string(m.spec.activation),
              to_string(m.spec.loss), m.params.size(), m.spec.input_format.c_str());
  std::printf("l2            %g\nstandardized  %s\n", m.spec.l2,
              m.standardizer.empty() ? "no" : "yes");
  std::printf("training      %s\n", m.spec.training_json.c_str());
  std::printf("layers:\n");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    std::printf("  dense %zu: %zu -> %zu (%zu weights + %zu biases)\n", i, layers[i].in,
                layers[i].out, layers[i].in * layers[i].out, layers[i].out);
  }
}

void run_inspect(const InspectOptions& o) {
  const SavedModel m = load_model(o.model);
  if (m.spec.architecture().is_network()) {
    inspect_network(o, m);
    return;
  }
  const auto raw = m.raw_params();
  const std::size_t d = m.spec.num_features;
  const std::vector<double> weights(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(d));
  const double intercept = raw[d];
  if (o.json) {
    nlohmann::json j;
    j["file"] = o.model;
    j["format_version"] = kModelFormatVersion;
    j["model"] = to_string(m.spec.kind);
    j["num_features"] = d;
    j["feature_names"] = m.spec.feature_names;
    j["label"] = m.spec.label_name;
    j["input_format"] = m.spec.input_format;
    j["l2"] = m.spec.l2;
    j["standardized"] = !m.standardizer.empty();
    j["training"] = nlohmann::json::parse(m.spec.training_json);
    j["intercept"] = intercept;
    j["weights"] = weights;
    std::cout << j.dump(2) << std::endl;
    return;
  }
  std::printf("model file    %s (format version %u)\n", o.model.c_str(), kModelFormatVersion);
  std::printf("model         %s, %zu features, label '%s', input %s\n", to_string(m.spec.kind), d,
              m.spec.label_name.c_str(), m.spec.input_format.c_str());
  std::printf("l2            %g\nstandardized  %s\n", m.spec.l2,
              m.standardizer.empty() ? "no" : "yes (weights below are in raw units)");
  std::printf("training      %s\n", m.spec.training_json.c_str());
  std::printf("intercept     %.10g\n", intercept);
  std::printf("weights:\n");
  for (std::size_t j = 0; j < d; ++j) {
    const std::string name =
        m.spec.feature_names.empty() ? std::to_string(j + 1) : m.spec.feature_names[j];
    std::printf("  %-24s %.10g\n", name.c_str(), weights[j]);
  }
}

}  // namespace

Action add_inspect_command(CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Print a model file's spec and parameters");
  cmd->add_option("model", opts->model, "Model file")->required();
  cmd->add_flag("--json", opts->json,
                "Print JSON: the spec, and for linear models the intercept and weights in raw "
                "feature units");
  return [opts] { run_inspect(*opts); };
}

}  // namespace dtrain::cli
