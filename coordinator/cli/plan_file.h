// Plan files: strict YAML <-> v1::Plan (keys are the proto field names, read through protobuf
// reflection so new fields need no code here), `--set` overrides, and the semantic validation
// shared by plan files and flag-built plans.
#ifndef TTSBENCH_COORDINATOR_PLAN_FILE_H_
#define TTSBENCH_COORDINATOR_PLAN_FILE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// Where each value of a plan came from, so that errors found after parsing can point at it.
// Paths look like "load.concurrency[2]" or "target.headers[0].name".
struct PlanSource {
  std::string file;                  // as given; used as the prefix of messages
  std::map<std::string, int> lines;  // path -> 1-based line in `file`
  // path -> the override as typed ("load.iterations=0"); such a path has no line.
  std::map<std::string, std::string> overrides;
};

// Parses YAML text into a Plan, then applies `overrides` ("load.iterations=50",
// "load.concurrency=[1,2,4]") in order, each value parsed as YAML and checked like the file.
// Unknown keys, duplicate keys, wrong types and out-of-range numbers are InvalidArgument errors
// naming the file, line and key. Does not validate semantics: call ValidatePlan next.
// `source` may be null.
absl::StatusOr<v1::Plan> ParsePlanYaml(absl::string_view yaml, const std::string& file,
                                       const std::vector<std::string>& overrides,
                                       PlanSource* source);

// Reads `path` and parses it as above.
absl::StatusOr<v1::Plan> LoadPlanFile(const std::string& path,
                                      const std::vector<std::string>& overrides,
                                      PlanSource* source);

// Reads a YAML file holding one message (e.g. a RequestTemplate for `--request-template`), with
// the same strictness and file:line errors as a plan.
absl::Status LoadMessageYamlFile(const std::string& path, google::protobuf::Message& msg);

// Fills defaults (listed in plan_file.cc and examples/README.md), then checks ranges and
// combinations. Errors name the field path and, when `source` knows it, the file and line or the
// override. Idempotent: a validated plan validates again unchanged.
absl::Status ValidatePlan(v1::Plan& plan, const PlanSource* source);

// The audio format a dialect is asked for when the plan names none: wav, or for elevenlabs its
// own default output_format, mp3_44100_128.
absl::string_view DefaultFormat(absl::string_view api);

// YAML for `--print-plan`: every set field, in proto order; ParsePlanYaml reads it back equal.
std::string PlanToYaml(const v1::Plan& plan);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_PLAN_FILE_H_
