#include "common/texts.h"

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ttsbench::common {
namespace {

// Written for this project; plain sentences with numbers, names and punctuation that TTS
// front ends must normalise, so that servers do representative work.
constexpr const char* kShort[] = {
    "Your table is ready.",         "Please hold the line.", "The meeting starts at nine.",
    "Turn left at the next light.", "Battery level is low.", "Thank you for calling.",
    "Your order has shipped.",      "Doors are closing.",    "It will rain this evening.",
    "Press one to continue.",       "Welcome back, Dana.",   "The file was saved.",
};

constexpr const char* kMedium[] = {
    "The next train to the airport leaves from platform four in about six minutes.",
    "Your package was delivered at 3:42 PM and left with the building's front desk.",
    "Please review the attached report before Thursday's planning session with the team.",
    "The temperature will drop to two degrees overnight, so cover any plants outside.",
    "We found three restaurants within walking distance that are still open right now.",
    "Your appointment with Doctor Alvarez has been moved to Monday at half past ten.",
    "The library closes early today because of the staff training in the afternoon.",
    "Traffic on the northern bridge is heavy; the detour adds roughly twelve minutes.",
    "Remember to water the tomatoes and to bring the recycling bins in from the curb.",
    "This call may be recorded so that we can improve the quality of our service.",
    "Flight 218 to Lisbon is now boarding passengers in rows twenty through thirty.",
    "The quarterly numbers look better than expected, with revenue up nine percent.",
};

constexpr const char* kLong[] = {
    "When the first steam engines appeared, few people imagined that within a century rails "
    "would cross entire continents, carrying grain, letters and travellers at speeds that had "
    "once seemed impossible, and changing the way towns grew around their stations.",
    "Before you begin the installation, make sure the power is switched off at the breaker, "
    "keep the screws in a small bowl so none of them roll away, and read each step twice; "
    "the whole job should take about forty-five minutes if nothing goes wrong.",
    "The museum's new wing opens on the fourteenth of May with an exhibition of maps drawn "
    "between 1450 and 1700, including a rare chart of the northern coast that was thought "
    "lost for almost two hundred years until a collector found it in an attic.",
    "Good morning, and welcome to the weekly update: the build farm was upgraded on Tuesday, "
    "test times dropped by a third, two flaky suites were fixed, and the release candidate "
    "is scheduled for review by the end of next week, pending the security sign-off.",
    "If you are hearing this message, the office is closed for the holiday weekend; for "
    "urgent matters please call the emergency line, otherwise leave your name, number and "
    "a short message after the tone, and someone will return your call on Tuesday.",
    "Scientists studying the glacier measured that it retreated nearly eighty meters last "
    "summer, the largest loss since records began, and they expect the meltwater lake at "
    "its edge to double in size within the next ten years if the trend continues.",
    "Thank you for your patience while we look into the issue with your account; our team "
    "has confirmed that the duplicate charge of 24 dollars and 99 cents will be refunded "
    "to your card within five business days, and no further action is needed from you.",
    "At the end of the trail you will reach a wooden bridge over a narrow creek; cross it, "
    "follow the stone wall uphill for another kilometre, and you will see the old "
    "lighthouse standing alone on the cliff, its lamp dark for more than sixty years.",
};

template <size_t N>
void Append(std::vector<std::string>& out, const char* const (&texts)[N]) {
  out.insert(out.end(), std::begin(texts), std::end(texts));
}

// splitmix64: a fixed, portable mix so the same seed picks the same texts everywhere.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> BuiltinTexts(absl::string_view length) {
  std::vector<std::string> out;
  if (length == "short" || length == "mixed") Append(out, kShort);
  if (length == "medium" || length == "mixed") Append(out, kMedium);
  if (length == "long" || length == "mixed") Append(out, kLong);
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown text length '", length, "' (short, medium, long or mixed)"));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> LoadTextsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read texts file ", path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (!text.empty()) out.emplace_back(text);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("no texts in ", path));
  return out;
}

int CountCharacters(absl::string_view utf8) {
  int n = 0;
  for (char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

size_t PickText(uint64_t seed, uint64_t stream, uint64_t n, size_t count) {
  return static_cast<size_t>(Mix(Mix(seed ^ Mix(stream)) + n) % count);
}

}  // namespace ttsbench::common
