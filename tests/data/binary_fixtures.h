// Writers of small IDX, .npy and gzip files for the binary reader tests,
// written from the formats' descriptions rather than from the readers.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace dtrain::test {

// Appends v in big- or little-endian byte order.
template <class T>
void put(std::string& out, T v, bool big_endian) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  if (big_endian != (std::endian::native == std::endian::big)) {
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
  }
  out.append(reinterpret_cast<const char*>(b), sizeof(T));
}

// An IDX file: 00 00 TYPE RANK, the dimensions (u32, big-endian), then the
// values converted to T, big-endian.
template <class T>
std::string idx_file(unsigned char type, const std::vector<std::uint32_t>& dims,
                     const std::vector<double>& values) {
  std::string out;
  out += '\0';
  out += '\0';
  out += static_cast<char>(type);
  out += static_cast<char>(dims.size());
  for (std::uint32_t d : dims) put<std::uint32_t>(out, d, true);
  for (double v : values) put<T>(out, static_cast<T>(v), true);
  return out;
}

// A .npy file of format version `major`.0 with the given header dict.
inline std::string npy_with_header(const std::string& dict, const std::string& data,
                                   int major = 1) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  // Pad with spaces to a multiple of 64 bytes, ending in '\n', as numpy does.
  std::string header = dict;
  const std::size_t total = 8 + len_bytes + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (major == 1) {
    put<std::uint16_t>(out, static_cast<std::uint16_t>(header.size()), false);
  } else {
    put<std::uint32_t>(out, static_cast<std::uint32_t>(header.size()), false);
  }
  return out + header + data;
}

// A .npy file holding `values` (in file order) as T; `descr` like "<f4".
template <class T>
std::string npy_file(const std::string& descr, const std::string& shape,
                     const std::vector<double>& values, bool fortran = false, int major = 1) {
  std::string data;
  const bool big = descr[0] == '>';
  for (double v : values) put<T>(data, static_cast<T>(v), big);
  const std::string dict = "{'descr': '" + descr +
                           "', 'fortran_order': " + (fortran ? "True" : "False") +
                           ", 'shape': " + shape + ", }";
  return npy_with_header(dict, data, major);
}

// gzip(1)-format compression of `bytes` with zlib.
inline std::string gzip(const std::string& bytes) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(bytes.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace dtrain::test
