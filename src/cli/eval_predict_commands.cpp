// dtrain eval / dtrain predict: apply a saved model to a data file.
#include <algorithm>
#include <cmath>
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
  std::string labels;
  std::string delimiter = ",";
  std::string out;
  bool json = false;
  std::size_t top_k = 5;  // eval only
};

// The saved model's outputs for every row of `data`: rows x output width.
std::vector<double> model_outputs(const SavedModel& saved, const Dataset& data) {
  const ModelArchitecture arch = saved.spec.architecture();
  std::vector<std::size_t> rows(data.rows());
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  std::vector<double> out(rows.size() * arch.output_width());
  if (arch.is_network()) {
    // Trained in float32; the file's doubles hold those values exactly.
    const std::vector<float> params(saved.params.begin(), saved.params.end());
    make_network_trainable<float>(arch)->predict(params, data, rows, out);
  } else {
    make_linear_trainable(arch)->predict(saved.params, data, rows, out);
  }
  return out;
}

void run_eval(const ApplyOptions& o) {
  const SavedModel saved = load_model(o.model);
  const Dataset data = load_data_for_model(saved, o.data, o.format, o.labels, o.label, true,
                                           parse_delimiter(o.delimiter));
  const ModelArchitecture arch = saved.spec.architecture();
  const std::vector<double> outputs = model_outputs(saved, data);
  Metrics metrics;
  try {
    run_threads({}, [&](Communicator& comm) {
      metrics = compute_metrics(comm, task_for(arch.output_kind()), arch.output_width(), outputs,
                                data.labels(), o.top_k);
    });
  } catch (const InputError& e) {
    throw InputError(o.data + ": " + e.what());  // labels the model cannot have produced
  }
  if (o.json) {
    std::cout << metrics_to_json(metrics).dump() << std::endl;
  } else {
    std::printf("%s model on %s (%llu rows): %s\n", to_string(saved.spec.kind), o.data.c_str(),
                static_cast<unsigned long long>(metrics.rows), metrics_to_text(metrics).c_str());
    if (metrics.classes > 0) {
      std::printf("%s", confusion_to_text(metrics).c_str());
      // Per class; "-" where undefined (no row predicted as, or belonging
      // to, the class).
      const auto cell = [](double v) {
        if (!std::isfinite(v)) return std::string("-");
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", v);
        return std::string(buf);
      };
      std::printf("class  precision  recall\n");
      for (std::size_t c = 0; c < metrics.classes; ++c) {
        std::printf("%5zu  %9s  %6s\n", c, cell(metrics.precision[c]).c_str(),
                    cell(metrics.recall[c]).c_str());
      }
    }
  }
}

void run_predict(const ApplyOptions& o) {
  const SavedModel saved = load_model(o.model);
  const Dataset data = load_data_for_model(saved, o.data, o.format, o.labels, o.label, false,
                                           parse_delimiter(o.delimiter));
  const ModelArchitecture arch = saved.spec.architecture();
  const std::vector<double> outputs = model_outputs(saved, data);
  const std::size_t width = arch.output_width();
  AtomicFile out(o.out);
  auto& s = out.stream();
  s.precision(9);
  switch (arch.output_kind()) {
    case OutputKind::kValue:
      // One column per output (a squared-loss network may have several).
      for (std::size_t k = 0; k < width; ++k) {
        s << (k ? "," : "")
          << (width == 1 ? std::string("prediction") : "output_" + std::to_string(k));
      }
      s << '\n';
      for (std::size_t r = 0; r < data.rows(); ++r) {
        for (std::size_t k = 0; k < width; ++k) s << (k ? "," : "") << outputs[r * width + k];
        s << '\n';
      }
      break;
    case OutputKind::kProbability:
      s << "probability,label\n";
      for (const double p : outputs) s << p << ',' << (p >= 0.5 ? 1 : 0) << '\n';
      break;
    case OutputKind::kClassProbabilities:
    case OutputKind::kClassScores: {
      const char* prefix = arch.output_kind() == OutputKind::kClassScores ? ",score" : ",p";
      s << "label";
      for (std::size_t k = 0; k < width; ++k) s << prefix << k;
      s << '\n';
      for (std::size_t r = 0; r < data.rows(); ++r) {
        const double* p = outputs.data() + r * width;
        s << (std::max_element(p, p + width) - p);
        for (std::size_t k = 0; k < width; ++k) s << ',' << p[k];
        s << '\n';
      }
      break;
    }
  }
  out.commit();
  std::printf("%zu predictions written to %s\n", data.rows(), o.out.c_str());
}

void add_common(CLI::App* cmd, ApplyOptions& o) {
  cmd->add_option("--model", o.model, "Model file written by dtrain train")->required();
  cmd->add_option("--data", o.data,
                  "Data file (same columns as for training) or a shortcut such as "
                  "fashion-mnist:test")
      ->required();
  cmd->add_option("--format", o.format,
                  "csv | libsvm | idx | npy (default: as the model was trained)");
  cmd->add_option("--labels", o.labels, "IDX/npy: the labels file");
  cmd->add_option("--label", o.label, "CSV label column (default: the training label's name)");
  cmd->add_option("--delimiter", o.delimiter, "CSV field delimiter")->capture_default_str();
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto opts = std::make_shared<ApplyOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a model on a labelled data file");
  add_common(cmd, *opts);
  cmd->add_flag("--json", opts->json,
                "Print one JSON object: rows and mse, rmse, r2 (regression); accuracy, logloss, "
                "auc (binary); accuracy, top5 (see --top-k), logloss, macro precision/recall, "
                "confusion, per-class precision and recall (multiclass)");
  cmd->add_option("--top-k", opts->top_k, "Multiclass: report top-k accuracy for this k")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return [opts] { run_eval(*opts); };
}

Action add_predict_command(CLI::App& app) {
  auto opts = std::make_shared<ApplyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Write predictions as CSV (regression: prediction; binary: probability,label; "
      "multiclass: label,p0..pK-1)");
  add_common(cmd, *opts);
  cmd->add_option("--out", opts->out, "Predictions CSV to write")->required();
  return [opts] { run_predict(*opts); };
}

}  // namespace dtrain::cli
