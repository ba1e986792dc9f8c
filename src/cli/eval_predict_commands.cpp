// dtrain eval / dtrain predict: apply a saved model to a data file.
#include <cstdio>
#include <iostream>
#include <memory>
#include <numeric>

#include "commands.h"
#include "common.h"
#include "dtrain/comm/threads.h"
#include "dtrain/error.h"
#include "dtrain/util/atomic_file.h"

namespace dtrain::cli {

namespace {

struct ApplyOptions {
  std::string model;
  std::string data;
  std::string format;
  std::string label;
  std::string delimiter = ",";
  std::string out;
  bool json = false;
};

void run_eval(const ApplyOptions& o) {
  const SavedModel saved = load_model(o.model);
  const Dataset data =
      load_data_for_model(saved, o.data, o.format, o.label, true, parse_delimiter(o.delimiter));
  const auto model = make_linear_model(saved.spec.kind, saved.spec.num_features);
  std::vector<std::size_t> rows(data.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  Metrics metrics;
  run_threads(
      {}, [&](Communicator& comm) { metrics = evaluate(comm, *model, saved.params, data, rows); });
  if (o.json) {
    std::cout << metrics_to_json(metrics).dump() << std::endl;
  } else {
    std::printf("%s model on %s (%llu rows): %s\n", to_string(saved.spec.kind), o.data.c_str(),
                static_cast<unsigned long long>(metrics.rows), metrics_to_text(metrics).c_str());
  }
}

void run_predict(const ApplyOptions& o) {
  const SavedModel saved = load_model(o.model);
  const Dataset data =
      load_data_for_model(saved, o.data, o.format, o.label, false, parse_delimiter(o.delimiter));
  const auto model = make_linear_model(saved.spec.kind, saved.spec.num_features);
  AtomicFile out(o.out);
  auto& s = out.stream();
  s.precision(9);
  const bool logistic = saved.spec.kind == ModelKind::kLogistic;
  s << (logistic ? "probability,label\n" : "prediction\n");
  for (std::size_t r = 0; r < data.rows(); ++r) {
    const double p = model->predict(saved.params, data.row(r));
    s << p;
    if (logistic) s << ',' << (p >= 0.5 ? 1 : 0);
    s << '\n';
  }
  out.commit();
  std::printf("%zu predictions written to %s\n", data.rows(), o.out.c_str());
}

void add_common(CLI::App* cmd, ApplyOptions& o) {
  cmd->add_option("--model", o.model, "Model file written by dtrain train")->required();
  cmd->add_option("--data", o.data, "Data file (same columns as for training)")->required();
  cmd->add_option("--format", o.format, "csv | libsvm (default: as the model was trained)");
  cmd->add_option("--label", o.label, "CSV label column (default: the training label's name)");
  cmd->add_option("--delimiter", o.delimiter, "CSV field delimiter")->capture_default_str();
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto opts = std::make_shared<ApplyOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a model on a labelled data file");
  add_common(cmd, *opts);
  cmd->add_flag("--json", opts->json,
                "Print one JSON object: rows and mse, rmse, r2 (linear) or accuracy, logloss, auc "
                "(logistic)");
  return [opts] { run_eval(*opts); };
}

Action add_predict_command(CLI::App& app) {
  auto opts = std::make_shared<ApplyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "Write predictions as CSV (linear: prediction; logistic: probability,label)");
  add_common(cmd, *opts);
  cmd->add_option("--out", opts->out, "Predictions CSV to write")->required();
  return [opts] { run_predict(*opts); };
}

}  // namespace dtrain::cli
