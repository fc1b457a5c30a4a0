// How the optional ASR check (Session.asr, LevelStats.asr) reads in the console, summary.csv
// and report.html. Every function gives nothing when the session had no ASR check.
#ifndef TTSBENCH_COORDINATOR_REPORT_ASR_REPORT_H_
#define TTSBENCH_COORDINATOR_REPORT_ASR_REPORT_H_

#include <string>
#include <vector>

#include "ttsbench/v1/ttsbench.pb.h"

namespace ttsbench::coordinator {

// "ASR check (...):" and one line per level: WER/CER mean and median, the WER change against
// the lowest level, samples recognised; the recogniser's CPU time.
std::string AsrConsoleLines(const v1::Session& session);

// summary.csv's ASR columns (appended after the others) and one level's cells (empty cells
// when the level has no recognised sample).
const std::vector<std::string>& AsrCsvColumns();
std::vector<std::string> AsrCsvCells(const v1::LevelStats& level);

// report.html's "ASR check" section: a table per level and each sample's transcript.
std::string AsrHtmlSection(const v1::Session& session);

}  // namespace ttsbench::coordinator

#endif  // TTSBENCH_COORDINATOR_REPORT_ASR_REPORT_H_
