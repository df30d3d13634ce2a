#!/usr/bin/env bash
# General-purpose compressors on the text corpus's test split: the bits that the test text adds when
# compressed after the training text, (size(train + test) - size(train)) * 8 / test UTF-8 bytes, overall
# and per domain; the baseline for the language model's bits per byte (docs/text.md).
#
#   bench/text_compressors.sh [--corpus DIR] [--moelab BIN] [--out DIR] [--compressors "xz zstd ppmd ppmd_o32"]
#
# --corpus: a corpus cache directory (train.jsonl, test.jsonl, manifest.json); default: the one that
# `moelab data text` (default options) builds or finds. Texts are the documents' `text` fields,
# concatenated in file order without separators. Two conditionings per domain: after the whole training
# split (what the model sees) and after the domain's own training documents only.
# Writes compressors.csv and compressors.md into --out (default: a new directory under /tmp).
set -euo pipefail

corpus="" moelab="./build/moelab" out="" compressors="xz zstd ppmd ppmd_o32"
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) corpus="$2"; shift 2 ;;
    --moelab) moelab="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --compressors) compressors="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "text_compressors.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

need() {  # tool, Debian package
  command -v "$1" >/dev/null || { echo "text_compressors.sh: '$1' is missing: install the Debian package $2 (apt-get install $2, or make deps)" >&2; exit 2; }
}
need python3 python3
for c in $compressors; do
  case "$c" in
    xz) need xz xz-utils ;;
    zstd) need zstd zstd ;;
    ppmd|ppmd_o32) need 7z p7zip-full ;;
    *) echo "text_compressors.sh: unknown compressor '$c' (xz, zstd, ppmd, ppmd_o32)" >&2; exit 2 ;;
  esac
done

if [ -z "$corpus" ]; then
  [ -x "$moelab" ] || { echo "text_compressors.sh: $moelab is not built (make build, or pass --moelab BIN or --corpus DIR)" >&2; exit 2; }
  corpus=$("$moelab" data text | sed -n 's/^corpus: *\(.*\) (\(cached\|built\).*/\1/p')
fi
for f in train.jsonl test.jsonl manifest.json; do
  [ -f "$corpus/$f" ] || { echo "text_compressors.sh: $corpus/$f is missing (not a corpus directory from moelab data text)" >&2; exit 2; }
done
[ -n "$out" ] || out=$(mktemp -d /tmp/text_compressors.XXXXXX)
mkdir -p "$out"
work=$(mktemp -d /tmp/text_compressors_work.XXXXXX)
trap 'rm -rf "$work"' EXIT

# train.txt, test.txt and per domain train.<d>.txt, test.<d>.txt; domains.txt lists the domains in
# manifest order with their test bytes.
python3 - "$corpus" "$work" <<'EOF'
import json, sys
corpus, work = sys.argv[1], sys.argv[2]
domains = [d["name"] for d in json.load(open(f"{corpus}/manifest.json", encoding="utf-8"))["domains"]]
for split in ("train", "test"):
    whole = open(f"{work}/{split}.txt", "wb")
    parts = {d: open(f"{work}/{split}.{d}.txt", "wb") for d in domains}
    with open(f"{corpus}/{split}.jsonl", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            doc = json.loads(line)
            if doc["domain"] not in parts:
                sys.exit(f"{corpus}/{split}.jsonl:{n}: domain '{doc['domain']}' is not in manifest.json")
            data = doc["text"].encode("utf-8")
            whole.write(data)
            parts[doc["domain"]].write(data)
    for p in parts.values(): p.close()
    whole.close()
import os
with open(f"{work}/domains.txt", "w") as f:
    for d in domains:
        f.write(f"{d} {os.path.getsize(f'{work}/test.{d}.txt')}\n")
EOF

# Compressed size in bytes of the concatenation of the given files.
size_of() {
  local c="$1"; shift
  case "$c" in
    xz) cat "$@" | xz -9e -T1 -c | wc -c ;;
    zstd) cat "$@" | zstd -q --ultra -22 --long=27 -T1 -c | wc -c ;;
    ppmd|ppmd_o32)
      local opt="-m0=PPMd"; [ "$c" = ppmd_o32 ] && opt="-m0=PPMd:o=32:mem=192m"
      rm -f "$work/a.7z"
      cat "$@" | 7z a -bd -bso0 -bsp0 "$opt" -sitext "$work/a.7z" >/dev/null
      stat -c %s "$work/a.7z" ;;
  esac
}
bits_per_byte() { python3 -c "print(f'{8 * ($1 - $2) / $3:.4f}')"; }

csv="$out/compressors.csv"
echo "compressor,condition,domain,test_bytes,size_context,size_context_plus_test,bits_per_byte" > "$csv"
total_test=$(stat -c %s "$work/test.txt")
for c in $compressors; do
  start=$(date +%s)
  s_train=$(size_of "$c" "$work/train.txt")
  s_all=$(size_of "$c" "$work/train.txt" "$work/test.txt")
  echo "$c,after_train,all,$total_test,$s_train,$s_all,$(bits_per_byte "$s_all" "$s_train" "$total_test")" >> "$csv"
  while read -r d bytes; do
    s=$(size_of "$c" "$work/train.txt" "$work/test.$d.txt")
    echo "$c,after_train,$d,$bytes,$s_train,$s,$(bits_per_byte "$s" "$s_train" "$bytes")" >> "$csv"
    s_dtrain=$(size_of "$c" "$work/train.$d.txt")
    s_d=$(size_of "$c" "$work/train.$d.txt" "$work/test.$d.txt")
    echo "$c,after_domain_train,$d,$bytes,$s_dtrain,$s_d,$(bits_per_byte "$s_d" "$s_dtrain" "$bytes")" >> "$csv"
  done < "$work/domains.txt"
  echo "text_compressors.sh: $c done in $(( $(date +%s) - start )) s" >&2
done

# Markdown: one table per conditioning, domains as rows, compressors as columns.
python3 - "$csv" "$corpus" "$compressors" > "$out/compressors.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
names = {"xz": "xz -9e", "zstd": "zstd --ultra -22 --long=27", "ppmd": "7z PPMd (-m0=PPMd)", "ppmd_o32": "7z PPMd o=32 mem=192m"}
comps = sys.argv[3].split()
print(f"corpus: {sys.argv[2]}\n")
for cond, title in (("after_train", "after the whole training split"), ("after_domain_train", "after the domain's training documents")):
    got = {(r["compressor"], r["domain"]): r for r in rows if r["condition"] == cond}
    domains = [d for d in dict.fromkeys(r["domain"] for r in rows if r["condition"] == cond)]
    print(f"Test bits per byte, {title}:\n")
    print("| domain | test bytes | " + " | ".join(names[c] for c in comps) + " | best |")
    print("|---|---:|" + "---:|" * (len(comps) + 1))
    for d in domains:
        vals = [float(got[(c, d)]["bits_per_byte"]) for c in comps]
        print(f"| {d} | {got[(comps[0], d)]['test_bytes']} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {min(vals):.3f} |")
    print()
EOF
cat "$out/compressors.md"
echo "tables: $csv, $out/compressors.md" >&2
