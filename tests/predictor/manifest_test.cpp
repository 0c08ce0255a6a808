#include <gtest/gtest.h>
TEST(Placeholder, NotYetWritten) { GTEST_FAIL() << "placeholder"; }
