#!/usr/bin/env python3
"""make_test_data.py — writes the small data fixtures under tests/data/ that tests/test_data.c
reads: good IDX sets (raw and .gz), the same images as Kaggle-layout CSV, and one damaged file
per refusal the readers must make. Deterministic (fixed seed, gzip mtime 0), so re-running it
reproduces the committed files byte for byte.

    python3 tools/make_test_data.py          # from the repository root, or anywhere

Layout:
    tests/data/idx/tiny-{images-idx3,labels-idx1}-ubyte[.gz]   12 images of 5x7 (non-square)
    tests/data/idx/sq8-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]
                                                              10 / 6 images of 8x8
    tests/data/csv/train.csv, test.csv                         the sq8 sets as CSV
                                                              (test.csv has CRLF line endings)
    tests/data/bad/*                                           one damaged file per refusal
"""
import gzip
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def out(rel, data):
    path = os.path.join(ROOT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def idx_images(images, rows, cols, count=None, magic=0x00000803):
    n = len(images) if count is None else count
    body = b"".join(bytes(im) for im in images)
    return struct.pack(">IIII", magic, n, rows, cols) + body


def idx_labels(labels, count=None, magic=0x00000801):
    n = len(labels) if count is None else count
    return struct.pack(">II", magic, n) + bytes(labels)


def make_images(rng, n, rows, cols):
    """Random pixels, with 0 and 255 in every image so the extremes are always exercised."""
    ims = []
    for _ in range(n):
        im = [rng.randrange(256) for _ in range(rows * cols)]
        im[0], im[-1] = 0, 255
        ims.append(im)
    return ims


def csv_text(images, labels, side, newline="\n"):
    header = "label," + ",".join("pixel%d" % (i + 1) for i in range(side * side))
    lines = [header] + [
        "%d," % lab + ",".join(str(p) for p in im) for im, lab in zip(images, labels)
    ]
    return (newline.join(lines) + newline).encode()


def main():
    rng = random.Random(20240611)

    # Good IDX sets.
    tiny = make_images(rng, 12, 5, 7)
    tiny_labels = [i % 10 for i in range(12)]
    for name, data in [
        ("tiny-images-idx3-ubyte", idx_images(tiny, 5, 7)),
        ("tiny-labels-idx1-ubyte", idx_labels(tiny_labels)),
    ]:
        out("idx/" + name, data)
        out("idx/" + name + ".gz", gz(data))

    train = make_images(rng, 10, 8, 8)
    train_labels = [9, 0, 3, 1, 2, 8, 4, 7, 5, 6]
    test = make_images(rng, 6, 8, 8)
    test_labels = [1, 1, 0, 9, 4, 2]
    for split, ims, labs in [("train", train, train_labels), ("test", test, test_labels)]:
        for name, data in [
            ("sq8-%s-images-idx3-ubyte" % split, idx_images(ims, 8, 8)),
            ("sq8-%s-labels-idx1-ubyte" % split, idx_labels(labs)),
        ]:
            out("idx/" + name, data)
            out("idx/" + name + ".gz", gz(data))
    out("csv/train.csv", csv_text(train, train_labels, 8))
    out("csv/test.csv", csv_text(test, test_labels, 8, newline="\r\n"))

    # Damaged IDX files.
    good = idx_images(train, 8, 8)
    out("bad/wrong-type-images-idx3-ubyte", idx_images(train, 8, 8, magic=0x00000D03))
    out("bad/wrong-dims-images-idx3-ubyte", idx_images(train, 8, 8, magic=0x00000802))
    out("bad/not-idx-images-idx3-ubyte", b"<html><body>404 Not Found</body></html>\n")
    out("bad/short-header-images-idx3-ubyte", good[:10])
    out("bad/truncated-images-idx3-ubyte", good[: 16 + 300])
    out("bad/truncated-images-idx3-ubyte.gz", gz(good[: 16 + 300]))
    out("bad/trailing-images-idx3-ubyte", good + b"garbage")
    out("bad/trailing-images-idx3-ubyte.gz", gz(good + b"garbage"))
    out("bad/overflow-images-idx3-ubyte", struct.pack(">IIII", 0x803, 0xFFFFFFFF, 0xFFFFFFFF,
                                                      0xFFFFFFFF))
    # 100000 images of 100x200 = 2e9 bytes: no overflow, but over the 1 GiB limit.
    out("bad/huge-images-idx3-ubyte", struct.pack(">IIII", 0x803, 100000, 100, 200))
    out("bad/zero-rows-images-idx3-ubyte", struct.pack(">IIII", 0x803, 10, 0, 8))
    out("bad/zero-count-labels-idx1-ubyte", struct.pack(">II", 0x801, 0))
    out("bad/count9-labels-idx1-ubyte", idx_labels(train_labels[:9]))
    bad_labels = list(train_labels)
    bad_labels[3] = 10
    out("bad/label10-labels-idx1-ubyte", idx_labels(bad_labels))
    out("bad/truncated-labels-idx1-ubyte", idx_labels(train_labels, count=20))
    # Compressible pixels, so the deflate stream has Huffman-coded blocks to damage.
    smooth = [[(r * 8 + c) * 3 % 256 for r in range(8) for c in range(8)] for _ in range(40)]
    zipped = bytearray(gz(idx_images(smooth, 8, 8)))
    for i in range(len(zipped) // 2, len(zipped) // 2 + 8):
        zipped[i] ^= 0x5A
    out("bad/corrupt-images-idx3-ubyte.gz", bytes(zipped))
    whole = gz(good)
    out("bad/cut-images-idx3-ubyte.gz", whole[: len(whole) // 2])

    # Damaged CSV files (8x8 images, so 64 pixel columns).
    def rows(n=3):
        return csv_text(train[:n], train_labels[:n], 8).decode().splitlines()

    lines = rows()
    out("bad/empty.csv", b"")
    out("bad/header-only.csv", (lines[0] + "\n").encode())
    out("bad/no-header.csv", ("\n".join(lines[1:]) + "\n").encode())
    out("bad/bad-header.csv",
        ("\n".join([lines[0].replace("pixel17", "pixle17")] + lines[1:]) + "\n").encode())
    nonsquare = "label," + ",".join("pixel%d" % (i + 1) for i in range(63))
    out("bad/nonsquare.csv", ("\n".join([nonsquare] + [l.rsplit(",", 1)[0] for l in lines[1:]])
                              + "\n").encode())
    bad = list(lines)
    bad[3] = bad[3].rsplit(",", 1)[0]  # line 4 loses its last pixel
    out("bad/columns.csv", ("\n".join(bad) + "\n").encode())
    bad = list(lines)
    bad[1] = bad[1] + ",0"  # line 2 gains a pixel
    out("bad/extra-column.csv", ("\n".join(bad) + "\n").encode())
    # One field replaced: (file, line index, column index, value); line i is line i+1 of the
    # file, column j is column j+1.
    for name, line, column, value in [("nonnumeric", 2, 10, "abc"), ("fraction", 1, 5, "3.5"),
                                      ("range", 2, 20, "256"), ("negative", 3, 64, "-1")]:
        bad = list(lines)
        f = bad[line].split(",")
        f[column] = value
        bad[line] = ",".join(f)
        out("bad/%s.csv" % name, ("\n".join(bad) + "\n").encode())
    bad = list(lines)
    bad[2] = "12" + bad[2][bad[2].index(","):]  # line 3: label 12
    out("bad/label.csv", ("\n".join(bad) + "\n").encode())
    bad = list(lines)
    bad.insert(2, "")  # line 3 empty, data follows on line 4
    out("bad/blank-line.csv", ("\n".join(bad) + "\n").encode())
    # A .csv.gz with a damaged deflate stream.
    zipped = bytearray(gz(csv_text(train, train_labels, 8)))
    for i in range(len(zipped) // 2, len(zipped) // 2 + 8):
        zipped[i] ^= 0x5A
    out("bad/corrupt.csv.gz", bytes(zipped))


if __name__ == "__main__":
    main()
