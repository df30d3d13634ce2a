#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/). Standard library only;
the formats are written from their specifications (safetensors, IDX, TFRecord + Event protobuf,
SentencePiece ModelProto)."""
import gzip, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, checksums=True):
    # tensors: list of (name, dtype, shape, bytes), already in the reference order
    header, offset, meta = {}, 0, dict(metadata or {})
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        if checksums:
            meta["crc32c." + name] = "%08x" % crc32c(data)
    if meta:
        header = {"__metadata__": meta, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def record(payload):
    mask = lambda c: (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", mask(crc32c(n))) + payload + struct.pack("<I", mask(crc32c(payload)))


def main():
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    i64 = struct.pack("<2q", -7, 42)
    put("fuzz_safetensors", "checksummed", safetensors([("counts", "I64", [2], i64), ("w", "F32", [2, 3], f32)], {"step": "3"}))
    put("fuzz_safetensors", "plain", safetensors([("attn0", "F32", [1, 1, 2, 3], f32)], checksums=False))
    put("fuzz_safetensors", "raw_dtypes", safetensors([("h", "BF16", [2], b"\x80\x3f\x00\x40"), ("m", "U8", [3], b"\x01\x02\x03")]))
    put("fuzz_safetensors", "empty", safetensors([], {"framework": "pt"}, checksums=False))

    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([3, 1, 4, 1, 5])
    images = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 2, 3) + bytes(range(12))
    put("fuzz_idx", "labels", b"\x00" + labels)                   # rank 1
    put("fuzz_idx", "images", b"\x02" + images)                   # rank 3
    put("fuzz_idx", "images_gz", b"\x02" + gzip.compress(images, mtime=0))

    version = field(1, 1, struct.pack("<d", 1.5e9)) + field(3, 2, b"brain.Event:2")
    value = field(1, 2, b"train/loss") + field(2, 5, struct.pack("<f", 0.25))
    scalar = field(1, 1, struct.pack("<d", 1.5e9 + 1)) + field(2, 0, varint(7)) + field(5, 2, field(1, 2, value))
    events = record(version) + record(scalar)
    put("fuzz_tfevents", "two_events", b"\x00" + events)
    put("fuzz_tfevents", "truncated_tail", b"\x01" + events + record(scalar)[:11])

    put("fuzz_config", "full", b"""task = "fuzz"
seed = 3
[model]
d_model = 32
conv = [4, 8]
[model.moe]
num_experts = 8
top_k = 2
[optim]
lr = 3e-4
name = "sgd"
[data]
mean = [0.25, 0.5]
sets = ["train", "val"]
[notes]
text = "hello"
%%
model.moe.top_k=1
+data.path=/tmp/x
++notes.more=[1, 2]
""")
    put("fuzz_config", "errors", b"[model.moe]\ntop_k = 9\nnum_experts = 2\nunknown = 1\n%%\nmodel.d_modle=3\n")

    for game in range(5):
        put("fuzz_trace_actions", "game%d" % game, bytes([game]) + b"0 1 2 3 4 5\n5 5 4 3 2 1 0 0 1\n" * 4)

    # SentencePiece ModelProto: pieces (1) {piece 1, score 2, type 3}; trainer_spec (2) {model_type 3};
    # normalizer_spec (3) {name 1, add_dummy_prefix 3, remove_extra_whitespaces 4, escape_whitespaces 5}.
    def piece(text, score, kind):
        return field(1, 2, field(1, 2, text.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(kind)))
    NORMAL, UNKNOWN, CONTROL = 1, 2, 3
    pieces = piece("<unk>", 0, UNKNOWN) + piece("<s>", 0, CONTROL) + piece("</s>", 0, CONTROL)
    for i, p in enumerate(["\u2581", "e", "o", "l", "\u2581the", "r", "x", "p", "t", "s", "H", "w", "d", "a", "m", "i", "f", ","]):
        pieces += piece(p, -1.0 - i * 0.1, NORMAL)
    normalizer = field(3, 2, field(1, 2, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(1)) + field(5, 0, varint(1)))
    for name, model_type in (("unigram", 1), ("bpe", 2), ("word", 3), ("char", 4)):
        trainer = field(2, 2, field(3, 0, varint(model_type)) + field(35, 0, varint(0)))
        put("fuzz_sentencepiece", name, pieces + trainer + normalizer)


if __name__ == "__main__":
    main()
