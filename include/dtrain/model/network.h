// Fully connected networks (multilayer perceptrons) over a flat parameter
// buffer: forward pass, loss, and the gradient by backpropagation.
//
// With no hidden layer the network is multinomial (softmax) regression, or a
// linear model under squared loss. The parameters of all layers live in one
// contiguous buffer, layer by layer (W0 b0 W1 b1 ...), so that one collective
// moves the whole model or gradient, as for the linear models of model.h.
//
// Network<float> is the training path: its layers run on dtrain's sgemm.
// Network<double> has the same arithmetic in plain double loops; it exists
// for finite-difference gradient checks and as a reference for the float one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dtrain/util/aligned_vector.h"

namespace dtrain {

enum class Activation { kRelu, kTanh, kSigmoid };
enum class NetworkLoss { kSoftmaxCrossEntropy, kSquared };
// kAuto: He for ReLU, Xavier (Glorot uniform) for tanh and sigmoid.
enum class InitScheme { kAuto, kHe, kXavier, kZero };

const char* to_string(Activation activation);
// "relu" | "tanh" | "sigmoid"; ConfigError otherwise.
Activation parse_activation(std::string_view name);
const char* to_string(NetworkLoss loss);
// "cross-entropy" | "squared"; ConfigError otherwise.
NetworkLoss parse_network_loss(std::string_view name);
const char* to_string(InitScheme scheme);
// "auto" | "he" | "xavier" | "zero"; ConfigError otherwise.
InitScheme parse_init_scheme(std::string_view name);

struct NetworkSpec {
  std::size_t inputs = 0;
  std::vector<std::size_t> hidden;            // widths; empty: softmax regression / linear model
  std::size_t outputs = 0;                    // classes for cross-entropy
  Activation activation = Activation::kRelu;  // of every hidden layer
  NetworkLoss loss = NetworkLoss::kSoftmaxCrossEntropy;
};

// Throws ConfigError, naming the field, for a zero input count, output count
// or hidden width, cross-entropy with fewer than 2 classes, or a parameter
// count that does not fit in std::size_t.
void validate(const NetworkSpec& spec);

// Where one dense layer's parameters live in the flat buffer: W is out x in,
// row-major (like torch.nn.Linear's weight), followed by b (out values).
struct DenseLayout {
  std::size_t in, out, weight_offset, bias_offset;
};

// The layers in order (hidden ones, then the output layer), contiguous:
// W0 b0 W1 b1 ... Validates the spec.
std::vector<DenseLayout> dense_layout(const NetworkSpec& spec);
std::size_t num_params(const NetworkSpec& spec);

// A network's arithmetic. It holds no parameters, only the layout and scratch
// buffers (activations and deltas) that are reused across calls and grown to
// the largest batch seen, so that training allocates nothing per batch.
// Because of that scratch, a Network object is NOT thread-safe: each worker
// thread owns its own.
//
// Per-row losses, with z the output layer's linear outputs:
//   kSoftmaxCrossEntropy: -log softmax(z)[y], y the class id of the row;
//   kSquared:             0.5 * sum_k (z_k - t_k)^2, where t is the label
//                         itself when outputs == 1, else the one-hot vector of
//                         the class id.
template <class T>
class Network {
 public:
  explicit Network(NetworkSpec spec);  // validates

  const NetworkSpec& spec() const { return spec_; }
  std::size_t num_params() const { return num_params_; }
  std::span<const DenseLayout> layers() const { return layers_; }

  // Seeded, deterministic initialisation: the same seed gives the same bits
  // on every machine (up to the last-bit agreement of the C library's log and
  // cos, used by He). Biases are 0. Weights are drawn layer by layer in
  // row-major order from SplitMix64 (state += 0x9e3779b97f4a7c15, output
  // mix64(state)) started at `seed`, turning each 64-bit draw into a uniform
  // u = (draw >> 11) * 2^-53 in [0, 1):
  //   kHe:     N(0, 2 / in), by Box-Muller on pairs of draws (u1, u2):
  //            sqrt(-2 ln(1 - u1)) * (cos 2 pi u2, sin 2 pi u2);
  //   kXavier: U(-a, a), a = sqrt(6 / (in + out)), as a * (2u - 1);
  //   kZero:   all weights 0 (fine for softmax regression, not for hidden
  //            layers, whose units would stay identical).
  // Throws std::invalid_argument when params.size() != num_params().
  void init(std::span<T> params, std::uint64_t seed, InitScheme scheme = InitScheme::kAuto) const;

  // Forward and backward pass over a batch. x: rows x inputs, row-major (as a
  // dense Dataset stores them); labels: one per row (see the losses above).
  // ADDS d(sum of per-row losses)/d(params) into grad, which it does not
  // zero, and returns that summed loss. A label that is not a class id in
  // [0, outputs) (cross-entropy, or squared loss with outputs > 1), or a
  // non-finite regression target, throws InputError naming the row and value;
  // labels are checked before grad is touched. Span sizes that do not match
  // the spec throw std::invalid_argument.
  double accumulate_gradient(std::span<const T> params, std::span<const float> x, std::size_t rows,
                             std::span<const float> labels, std::span<T> grad);
  // The same gradient written over grad instead of added to it: the values
  // accumulate_gradient() adds to a zeroed grad, bit for bit except that a
  // zero may come out as -0 (a sum of -0 products; 0 + -0 is +0). Cheaper
  // than clearing first: the weight-gradient GEMMs write without reading.
  double compute_gradient(std::span<const T> params, std::span<const float> x, std::size_t rows,
                          std::span<const float> labels, std::span<T> grad);

  // out: rows x outputs: the class probabilities (cross-entropy) or the
  // linear outputs (squared loss).
  void predict(std::span<const T> params, std::span<const float> x, std::size_t rows,
               std::span<T> out);

 private:
  void check_sizes(std::span<const T> params, std::span<const float> x, std::size_t rows) const;
  void reserve_rows(std::size_t rows);
  double gradient(std::span<const T> params, std::span<const float> x, std::size_t rows,
                  std::span<const float> labels, std::span<T> grad, bool overwrite);
  // Hidden activations into hidden_, the output layer's linear outputs
  // (bias added) into `logits` (rows x outputs).
  void forward(std::span<const T> params, std::span<const float> x, std::size_t rows,
               std::span<T> logits);

  NetworkSpec spec_;
  std::vector<DenseLayout> layers_;
  std::size_t num_params_ = 0;
  std::size_t widest_ = 0;  // the largest layer width (hidden or output)
  std::size_t capacity_rows_ = 0;
  std::vector<AlignedVector<T>> hidden_;  // per hidden layer: rows x width, after activation
  AlignedVector<T> delta_, delta_next_;   // rows x widest_: d loss / d (pre-activation)
};

extern template class Network<float>;
extern template class Network<double>;

}  // namespace dtrain
