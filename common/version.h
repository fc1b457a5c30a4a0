// The software version agents and coordinator compare at Hello.
#ifndef TTSBENCH_COMMON_VERSION_H_
#define TTSBENCH_COMMON_VERSION_H_

namespace ttsbench::common {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace ttsbench::common

#endif  // TTSBENCH_COMMON_VERSION_H_
