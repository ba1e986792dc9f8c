// Backend-independent parts of the Communicator interface.
#include <gtest/gtest.h>

#include <string>

#include "dtrain/comm/communicator.h"
#include "dtrain/comm/threads.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

TEST(Communicator, DataTypeNamesAndSizes) {
  EXPECT_STREQ(to_string(DataType::kFloat32), "float32");
  EXPECT_STREQ(to_string(DataType::kFloat64), "float64");
  EXPECT_STREQ(to_string(DataType::kInt64), "int64");
  EXPECT_STREQ(to_string(DataType::kUint64), "uint64");
  EXPECT_EQ(size_of(DataType::kFloat32), sizeof(float));
  EXPECT_EQ(size_of(DataType::kFloat64), sizeof(double));
  EXPECT_EQ(size_of(DataType::kInt64), sizeof(std::int64_t));
  EXPECT_EQ(size_of(DataType::kUint64), sizeof(std::uint64_t));
  static_assert(data_type_of<float>() == DataType::kFloat32);
  static_assert(data_type_of<std::uint64_t>() == DataType::kUint64);
}

TEST(Communicator, ReduceOpNames) {
  EXPECT_STREQ(to_string(ReduceOp::kSum), "sum");
  EXPECT_STREQ(to_string(ReduceOp::kMean), "mean");
  EXPECT_STREQ(to_string(ReduceOp::kMax), "max");
  EXPECT_STREQ(to_string(ReduceOp::kMin), "min");
}

// A pending op that counts how it is driven.
class FakeOp : public PendingOp {
 public:
  FakeOp(int& waits, bool fail) : waits_(waits), fail_(fail) {}
  bool test() override { return false; }
  void wait() override {
    ++waits_;
    if (fail_) throw CommError("fake failure");
  }

 private:
  int& waits_;
  bool fail_;
};

TEST(Request, DefaultIsDone) {
  Request r;
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(r.test());
  r.wait();
}

TEST(Request, DestructorWaitsOnceAndSwallowsErrors) {
  int waits = 0;
  { Request r(std::make_unique<FakeOp>(waits, true)); }
  EXPECT_EQ(waits, 1);
}

TEST(Request, WaitPropagatesErrorsAndThenCountsAsDone) {
  int waits = 0;
  {
    Request r(std::make_unique<FakeOp>(waits, true));
    EXPECT_FALSE(r.test());
    EXPECT_THROW(r.wait(), CommError);
    EXPECT_TRUE(r.done());
  }
  EXPECT_EQ(waits, 1);  // not waited for again on destruction
}

TEST(Request, MoveAssignWaitsForTheOldOp) {
  int old_waits = 0, new_waits = 0;
  Request r(std::make_unique<FakeOp>(old_waits, false));
  r = Request(std::make_unique<FakeOp>(new_waits, false));
  EXPECT_EQ(old_waits, 1);
  EXPECT_EQ(new_waits, 0);
  EXPECT_FALSE(r.done());
  r.wait();
  EXPECT_EQ(new_waits, 1);
  Request moved = std::move(r);
  EXPECT_TRUE(moved.done());
}

}  // namespace
}  // namespace dtrain
