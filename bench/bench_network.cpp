// bench_network: single-thread training throughput of Network<float> on a
// 784-256-128-10 ReLU MLP with softmax cross-entropy (the Fashion-MNIST
// model), batch 128: one compute_gradient call (forward, loss, backward,
// writing the gradient as the trainer does) per batch. Beside it, the same eight sgemm calls alone
// on the same shapes, so that the time spent outside GEMM (bias, activations, softmax, column sums)
// is visible. GFLOP/s counts 2 flops per multiply-add of those GEMMs: forward X W^T, weight
// gradients dZ^T X, and input gradients dZ W for every layer but the first.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dtrain/kernels/gemm.h"
#include "dtrain/model/network.h"

#include "bench_util.h"

namespace {
using dtrain::bench::cpu_model;
using dtrain::bench::median;
using dtrain::kernels::Transpose;
using Clock = std::chrono::steady_clock;

// Median seconds of one call of each of two functions. Their samples are
// interleaved, so that both see the same machine load and clock speed; calls
// are repeated until a sample of the first lasts min_sample.
std::pair<double, double> time_pair(const std::function<void()>& f, const std::function<void()>& g,
                                    int samples, double min_sample) {
  f();  // warm-up: scratch buffers, oneDNN's kernel generation, page faults
  g();
  const auto per_call = [](const std::function<void()>& h, std::size_t reps) {
    const auto t0 = Clock::now();
    for (std::size_t r = 0; r < reps; ++r) h();
    return std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(reps);
  };
  std::size_t reps = 1;
  while (per_call(f, reps) * static_cast<double>(reps) < min_sample &&
         reps < (std::size_t{1} << 20)) {
    reps *= 2;
  }
  std::vector<double> tf, tg;
  for (int i = 0; i < samples; ++i) {
    tf.push_back(per_call(f, reps));
    tg.push_back(per_call(g, reps));
  }
  return {median(tf), median(tg)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Single-thread Network<float> training step, 784-256-128-10 ReLU"};
  std::size_t batch = 128;
  int samples = 7;
  double min_sample_ms = 200;
  bool quick = false;
  app.add_option("--batch", batch, "rows per compute_gradient call")->check(CLI::PositiveNumber);
  app.add_option("--samples", samples, "timed samples (median reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-sample-ms", min_sample_ms, "calls are repeated to fill a sample")
      ->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "smoke run: 1 sample of 1 call");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    samples = 1;
    min_sample_ms = 0;
  }
  dtrain::kernels::set_gemm_threads(1);

  const dtrain::NetworkSpec spec{.inputs = 784,
                                 .hidden = {256, 128},
                                 .outputs = 10,
                                 .activation = dtrain::Activation::kRelu,
                                 .loss = dtrain::NetworkLoss::kSoftmaxCrossEntropy};
  dtrain::Network<float> net(spec);
  std::vector<float> params(net.num_params());
  net.init(params, 1);
  std::vector<float> grad(params.size(), 0.0f);

  // Pixel-like inputs in [0, 1) and random classes.
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> x(batch * spec.inputs);
  for (float& v : x) v = pixel(rng);
  std::vector<float> labels(batch);
  for (float& y : labels) y = static_cast<float>(rng() % spec.outputs);

  double loss = 0;
  const auto step = [&] { loss = net.compute_gradient(params, x, batch, labels, grad); };

  // The network's GEMMs alone, on buffers of the same shapes.
  const auto layers = net.layers();
  std::vector<float> act(batch * 256), act2(batch * 128), out(batch * 10), dz(batch * 256),
      dx(batch * 256);
  std::vector<std::span<const float>> inputs = {x, act, act2};
  std::vector<std::span<float>> outputs = {act, act2, out};
  double flops = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const double macs = static_cast<double>(batch * layers[l].in * layers[l].out);
    flops += 2 * macs * (l == 0 ? 2 : 3);
  }
  const auto gemms = [&] {
    using dtrain::kernels::sgemm;
    const std::span<const float> p(params);
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const auto& L = layers[l];
      sgemm(Transpose::kNo, Transpose::kYes, batch, L.out, L.in, 1.0f, inputs[l], L.in,
            p.subspan(L.weight_offset, L.in * L.out), L.in, 0.0f, outputs[l], L.out);
    }
    for (std::size_t l = layers.size(); l-- > 0;) {
      const auto& L = layers[l];
      sgemm(Transpose::kYes, Transpose::kNo, L.out, L.in, batch, 1.0f,
            std::span<const float>(dz).first(batch * L.out), L.out, inputs[l], L.in, 0.0f,
            std::span(grad).subspan(L.weight_offset, L.in * L.out), L.in);
      if (l > 0) {
        sgemm(Transpose::kNo, Transpose::kNo, batch, L.in, L.out, 1.0f,
              std::span<const float>(dz).first(batch * L.out), L.out,
              p.subspan(L.weight_offset, L.in * L.out), L.in, 0.0f,
              std::span(dx).first(batch * L.in), L.in);
      }
    }
  };
  const auto [net_s, gemm_s] = time_pair(step, gemms, samples, min_sample_ms / 1000.0);

  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::printf(
      "# bench_network: Network<float>::compute_gradient, 784-256-128-10 relu, "
      "softmax cross-entropy, 1 thread\n");
  std::printf("# command: %s\n", command.c_str());
  std::printf("# machine: %s, nproc=%u\n", cpu_model().c_str(),
              std::thread::hardware_concurrency());
  std::printf("# sgemm backend: %s\n", dtrain::kernels::gemm_backend_name());
  std::printf("# time: median of %d interleaved samples, each >= %.0f ms of back-to-back calls\n",
              samples, min_sample_ms);
  std::printf("# GFLOP/s: %.1f MFLOP per batch (2 x MACs of forward, dW and dX GEMMs)\n",
              flops / 1e6);
  std::printf("%-18s %8s %12s %14s %10s\n", "what", "batch", "ms/batch", "samples/s", "GFLOP/s");
  std::printf("%-18s %8zu %12.3f %14.0f %10.1f\n", "compute_grad", batch, net_s * 1e3,
              static_cast<double>(batch) / net_s, flops / net_s / 1e9);
  std::printf("%-18s %8zu %12.3f %14.0f %10.1f\n", "gemm calls only", batch, gemm_s * 1e3,
              static_cast<double>(batch) / gemm_s, flops / gemm_s / 1e9);
  std::printf("# outside GEMM: %.1f%% of the step (loss of the last batch %.4f)\n",
              100.0 * (net_s - gemm_s) / net_s, loss / static_cast<double>(batch));
  return std::isfinite(loss) ? 0 : 1;
}
