#include "text/helpers_text_sources.h"

#include <zlib.h>

#include <fstream>
#include <stdexcept>

namespace moelab::testing {
namespace fs = std::filesystem;
namespace {

void write(const fs::path& path, const std::string& contents) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// `count` short texts made of the given words, varied by index so that no two are equal.
std::string sentence(const std::vector<std::string>& words, int i, int length) {
  std::string s;
  for (int j = 0; j < length; ++j) s += (j ? " " : "") + words[static_cast<size_t>(i * 7 + j * 3 + j * j) % words.size()];
  return s + " " + std::to_string(i) + ".";
}

std::string fortune_file(const std::vector<std::string>& words, int count, int first) {
  std::string text;
  for (int i = first; i < first + count; ++i) {
    text += sentence(words, i, 6 + i % 5);
    if (i % 3 == 0) text += "\n\t\t-- " + words[static_cast<size_t>(i) % words.size()];
    text += "\n%\n";
  }
  return text;
}

std::string base64_number(unsigned long long v) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  do {
    out.insert(out.begin(), digits[v % 64]);
    v /= 64;
  } while (v);
  return out;
}

void write_gzip(const fs::path& path, const std::string& contents) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f || gzwrite(f, contents.data(), static_cast<unsigned>(contents.size())) != static_cast<int>(contents.size()))
    throw std::runtime_error("cannot write " + path.string());
  gzclose(f);
}

}  // namespace

const std::vector<std::string>& fake_source_excluded_markers() {
  static const std::vector<std::string> markers{"DATINDEXMARKER", "OFFENSIVEMARKER", "TESTSUITEMARKER",
                                                "OLDVERSIONMARKER", "DBINFOMARKER", "BYTECODEMARKER"};
  return markers;
}

void write_fake_text_sources(const fs::path& root) {
  const fs::path fortunes = root / "usr/share/games/fortunes";
  const std::vector<std::pair<std::string, std::vector<std::string>>> languages = {
      {"en", {"the", "computer", "is", "a", "wise", "old", "owl", "never", "trust", "anything", "that", "thinks"}},
      {"de", {"der", "Bahnhof", "ist", "grün", "und", "Straße", "über", "Mädchen", "schön", "Fußball", "nicht"}},
      {"es", {"el", "niño", "año", "mañana", "¿qué", "sabiduría", "corazón", "¡ay!", "también", "vida"}},
      {"it", {"il", "perché", "città", "è", "più", "però", "pensiero", "cosa", "caffè", "sempre"}},
      {"ru", {"Голос", "совести", "когда", "ещё", "этих", "мягких", "булок", "чаю", "выпей", "жизнь"}},
      {"pl", {"Zażółć", "gęślą", "jaźń", "żeby", "ucznia", "nauczycielki", "dzień", "łódź", "się", "był"}},
      {"cs", {"Příliš", "žluťoučký", "kůň", "úpěl", "ďábelské", "ódy", "přátele", "své", "manžele", "ale"}},
  };
  for (const auto& [code, words] : languages) {
    const fs::path dir = code == "en" ? fortunes : fortunes / code;
    write(dir / (code + "-first"), fortune_file(words, 30, 0));
    write(dir / (code + "-second"), fortune_file(words, 30, 30));
    write(dir / (code + "-first.dat"), std::string("\x00\x00\x02" "DATINDEXMARKER" "\xff", 18));
  }
  // German: three ill-formed sequences (Latin-1 "ü" and "ß", a truncated 3-byte sequence) in one fortune.
  write(fortunes / "de/latin1", std::string("Gr\xfc\xdf Gott, sagte der Mann \xe2\x82 am Bahnhof.\n%\n"));
  fs::create_symlink("en-first", fortunes / "en-first.u8");
  fs::create_symlink("it/it-first", fortunes / "it-first");  // as fortunes-it does; not English
  write(fortunes / "es/off/racistas.fortunes", "OFFENSIVEMARKER\n%\n");

  // C++ headers: version 12 is the newest; 11 must be ignored.
  const fs::path cxx = root / "usr/include/c++";
  std::string header = "// <vector> -*- C++ -*-\n\n#pragma once\n\nnamespace std {\n";
  for (int i = 0; i < 40; ++i)
    header += "\n  template<typename _Tp>\n    inline _Tp\n    __helper_" + std::to_string(i) +
              "(const _Tp& __x)\n    {\n\tif (__x < " + std::to_string(i) + ")\n\t  return __x;\n      return _Tp(" +
              std::to_string(i) + ");\n    }\n";
  write(cxx / "12/vector", header + "}\n");
  write(cxx / "12/bits/stl_pair.h", "#ifndef _STL_PAIR_H\n#define _STL_PAIR_H 1\n\nstruct pair { int first, second; };\n\n#endif\n");
  write(cxx / "11/vector", "OLDVERSIONMARKER\n");

  // The Python library: the newest python3.N with os.py; tests and byte code are skipped.
  const fs::path py = root / "usr/lib/python3.11";
  std::string module = "\"\"\"OS routines.\"\"\"\n\nimport sys\nimport abc\n\n";
  for (int i = 0; i < 30; ++i) {
    if (i % 4 == 0) module += "@abc.abstractmethod\n";
    module += (i % 5 == 0 ? "async def fetch_" : "def helper_") + std::to_string(i) + "(x):\n    \"\"\"Return x plus " +
              std::to_string(i) + ".\"\"\"\n    if x:\n        return x + " + std::to_string(i) + "\n\n    return None\n\n\n";
  }
  module += "class Path:\n    def __init__(self, p):\n        self.p = p\n";
  write(py / "os.py", module);
  write(py / "json/__init__.py", "def dumps(obj):\n    return str(obj)\n");
  write(py / "test/test_os.py", "TESTSUITEMARKER = 1\n");
  write(py / "__pycache__/os.cpython-311.py", "BYTECODEMARKER = 1\n");
  write(root / "usr/lib/python3.9/os.py", "OLDVERSIONMARKER = 1\n");

  // WordNet: licence header lines start with two spaces.
  const fs::path wn = root / "usr/share/wordnet";
  const std::pair<const char*, char> parts[] = {{"data.noun", 'n'}, {"data.verb", 'v'}, {"data.adj", 'a'}, {"data.adv", 'r'}};
  for (const auto& [file, tag] : parts) {
    std::string text = "  1 This software and database is being provided to you, the LICENSEE, by\n";
    for (int i = 0; i < 20; ++i)
      text += std::to_string(10000000 + i) + " 03 " + tag + " 02 word_" + std::string(file + 5) + std::to_string(i) +
              " 0 synonym" + std::to_string(i) + "(a) 1 001 @ 00001740 n 0000 | meaning number " + std::to_string(i) +
              " of the " + std::string(file + 5) + "; \"an example\"  \n";
    write(wn / file, text);
  }

  // GCIDE: the .dict.dz text and an index of base64 offsets; two headwords share one entry.
  std::string dict = "00-database-info DBINFOMARKER\n";
  std::string index = "00-database-info\tA\t" + base64_number(dict.size()) + "\n";
  for (int i = 0; i < 25; ++i) {
    const std::string entry = "Word" + std::to_string(i) + " \\Word" + std::to_string(i) + "\\, n.\n   1. A thing numbered " +
                              std::to_string(i) + "; as, a word.\n      [1913 Webster]\n\n";
    index += "word" + std::to_string(i) + "\t" + base64_number(dict.size()) + "\t" + base64_number(entry.size()) + "\n";
    if (i == 3) index += "alias3\t" + base64_number(dict.size()) + "\t" + base64_number(entry.size()) + "\n";
    dict += entry;
  }
  fs::create_directories(root / "usr/share/dictd");
  write(root / "usr/share/dictd/gcide.index", index);
  write_gzip(root / "usr/share/dictd/gcide.dict.dz", dict);

  // Licences, with a symlink alias that must not be read twice.
  const fs::path lic = root / "usr/share/common-licenses";
  std::string gpl;
  for (int i = 0; i < 12; ++i)
    gpl += std::to_string(i) + ". Section " + std::to_string(i) + ".\n\nYou may convey verbatim copies of the Program's\n"
           "source code as you receive it, in any medium, provided that clause " + std::to_string(i) + " holds.\n\n";
  write(lic / "GPL-3", gpl);
  write(lic / "BSD", "Redistribution and use in source and binary forms, with or without\nmodification, are permitted.\n");
  fs::create_symlink("GPL-3", lic / "GPL");
}

}  // namespace moelab::testing
