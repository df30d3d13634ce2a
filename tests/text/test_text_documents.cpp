// The corpus's building blocks: SHA-256 against the FIPS 180-4 test vectors, UTF-8 repair against the
// Unicode standard's examples and a naive decoder, and the splitting of source text into documents.
#include <gtest/gtest.h>

#include <random>

#include "core/util/check.h"
#include "text/data/documents.h"
#include "text/data/sha256.h"
#include "text/data/utf8.h"

using namespace moelab::text;

TEST(Sha256, FipsTestVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PiecewiseUpdatesEqualOneShot) {
  std::mt19937 rng(7);
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t piece : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 200u}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += piece) h.update(std::string_view(data).substr(i, piece));
    auto d = h.digest();
    EXPECT_EQ(to_hex(d.data(), d.size()), sha256_hex(data)) << "piece " << piece;
  }
}

// Decodes well-formed UTF-8 the long way (code point arithmetic); nullopt if anything is off.
std::optional<std::vector<uint32_t>> naive_decode(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return std::nullopt;
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (c & 0x3F);
    }
    const uint32_t min_for_length[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.push_back(cp);
    i += n;
  }
  return out;
}

TEST(Utf8, ValidTextIsUnchanged) {
  for (std::string s : {"plain ASCII\ttab\n", "Съешь же ещё этих мягких французских булок", "Zażółć gęślą jaźń",
                        "emoji 🎉👍🏽 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\xEF\xBF\xBD already a replacement character", ""}) {
    Utf8Repair r = repair_utf8(s);
    EXPECT_EQ(r.text, s);
    EXPECT_EQ(r.replacements, 0u);
    EXPECT_TRUE(is_valid_utf8(s));
  }
}

TEST(Utf8, MaximalSubpartsFollowTheUnicodeExamples) {
  const std::string fffd = "\xEF\xBF\xBD";
  // Unicode 15, table 3-8: <61 F1 80 80 E1 80 C2 62 80 63 80 BF 64>.
  Utf8Repair r = repair_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64");
  EXPECT_EQ(r.text, "a" + fffd + fffd + fffd + "b" + fffd + "c" + fffd + fffd + "d");
  EXPECT_EQ(r.replacements, 6u);
  // Overlong "/" (C0 AF), a surrogate (ED A0 80), above U+10FFFF (F4 90 80 80), truncated at the end (E2 82).
  EXPECT_EQ(repair_utf8("\xC0\xAF").text, fffd + fffd);
  EXPECT_EQ(repair_utf8("\xED\xA0\x80").replacements, 3u);
  EXPECT_EQ(repair_utf8("\xF4\x90\x80\x80").replacements, 4u);
  EXPECT_EQ(repair_utf8("ok\xE2\x82").text, "ok" + fffd);
  EXPECT_EQ(repair_utf8("Gr\xFC\xDF").replacements, 2u);  // Latin-1 "Grüß"
}

TEST(Utf8, RandomBytesAreRepairedIntoValidText) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes(rng() % 24, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 4 == 0 ? rng() % 128 : 0x80 + rng() % 128);
    const Utf8Repair r = repair_utf8(bytes);
    ASSERT_TRUE(naive_decode(r.text).has_value()) << "trial " << trial;
    EXPECT_EQ(is_valid_utf8(bytes), naive_decode(bytes).has_value()) << "trial " << trial;
    EXPECT_EQ(r.replacements == 0, naive_decode(bytes).has_value()) << "trial " << trial;
    EXPECT_EQ(repair_utf8(r.text).text, r.text);
  }
}

// Non-whitespace characters in order: the chunks together must hold exactly the text's.
std::string ink(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out += c;
  return out;
}

TEST(Documents, ChunksAreBoundedAndLoseNothing) {
  std::mt19937 rng(3);
  const std::vector<std::string> pieces = {"word", "слово", "🎉", " ", " ", "\t", "\n", "\n\n", "x", "long_identifier_name"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 400);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    if (trial % 10 == 0) text += std::string(300, 'z') + "Ж";  // one line longer than the limit
    const size_t max_bytes = 16 + rng() % 100;
    const std::vector<std::string> chunks = chunk_paragraphs(text, max_bytes);
    std::string joined;
    for (const std::string& c : chunks) {
      EXPECT_LE(c.size(), max_bytes);
      EXPECT_FALSE(c.empty());
      EXPECT_TRUE(is_valid_utf8(c)) << "a chunk cut a character in two";
      EXPECT_NE(text.find(c), std::string::npos) << "a chunk is not a piece of the text";
      joined += c;
    }
    EXPECT_EQ(ink(joined), ink(text)) << "trial " << trial;
  }
}

TEST(Documents, ParagraphsArePackedAndIndentationKept) {
  EXPECT_EQ(chunk_paragraphs("\n\n    indented\n  body  \n\n\nnext\n", 100),
            (std::vector<std::string>{"    indented\n  body  \n\n\nnext"}));
  EXPECT_EQ(chunk_paragraphs("aaaaaaaaaa\n\nbbbbbbbbbb\n\ncccccccccc\n", 24),
            (std::vector<std::string>{"aaaaaaaaaa\n\nbbbbbbbbbb", "cccccccccc"}));
  EXPECT_TRUE(chunk_paragraphs(" \n\t\n", 100).empty());
  EXPECT_THROW(chunk_paragraphs("x", 4), moelab::Error);
}

TEST(Documents, FortunesSplitAtPercentLines) {
  EXPECT_EQ(split_fortunes("one\n%\ntwo\n  lines\n%\n\n%\nthree\n\t\t-- Author\n%\n", 4096),
            (std::vector<std::string>{"one", "two\n  lines", "three\n\t\t-- Author"}));
  EXPECT_EQ(split_fortunes("100% sure\n%\n", 4096), (std::vector<std::string>{"100% sure"}));
}

TEST(Documents, PythonUnitsStartAtTopLevelDefinitions) {
  const std::string module =
      "import os\n\nX = 1\n\n"
      "@decorator\n@other(1)\ndef f(a):\n    def inner():\n        pass\n\n    return a\n\n"
      "async def g():\n    await h()\n\n"
      "class C:\n    def method(self):\n        return 1\n\n"
      "if __name__ == '__main__':\n    f(1)\n";
  EXPECT_EQ(split_python_units(module, 4096),
            (std::vector<std::string>{"import os\n\nX = 1",
                                      "@decorator\n@other(1)\ndef f(a):\n    def inner():\n        pass\n\n    return a",
                                      "async def g():\n    await h()",
                                      "class C:\n    def method(self):\n        return 1\n\nif __name__ == '__main__':\n    f(1)"}));
}

TEST(Documents, WordnetGlossLines) {
  EXPECT_EQ(wordnet_gloss("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 023 @ 02083346 n 0000 | a member "
                          "of the genus Canis; \"the dog barked all night\"  ",
                          "noun"),
            "dog, domestic dog, Canis familiaris (noun): a member of the genus Canis; \"the dog barked all night\"");
  EXPECT_EQ(wordnet_gloss("00001740 00 s 01 long(a) 0 000 | lasting a while", "adjective"),
            "long (adjective): lasting a while");
  EXPECT_FALSE(wordnet_gloss("  1 This software and database is being provided", "noun"));
  EXPECT_FALSE(wordnet_gloss("00001740 03 n 01 entity 0 000", "noun"));
}

TEST(Documents, DictdIndexNumbersAndEntries) {
  EXPECT_EQ(decode_dict_number("A"), 0u);
  EXPECT_EQ(decode_dict_number("5I"), 57u * 64 + 8);
  EXPECT_EQ(decode_dict_number("Fz"), 5u * 64 + 51);
  EXPECT_EQ(decode_dict_number("+/"), 62u * 64 + 63);
  EXPECT_FALSE(decode_dict_number("a-b"));
  const std::vector<DictEntry> entries =
      parse_dict_index("00-database-info\tA\tZ\nzebra\tBA\tK\nalpha\tK\tC\nalias\tBA\tK\n", "gcide.index");
  ASSERT_EQ(entries.size(), 2u);  // the information entry is skipped, the alias shares zebra's entry
  EXPECT_EQ(entries[0].offset, 10u);
  EXPECT_EQ(entries[0].length, 2u);
  EXPECT_EQ(entries[1].offset, 64u);
  EXPECT_EQ(entries[1].length, 10u);
  try {
    parse_dict_index("good\tA\tB\nbad line\n", "gcide.index");
    FAIL() << "a malformed index line was accepted";
  } catch (const moelab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("gcide.index:2"), std::string::npos) << e.what();
  }
}
