"""safetensors read and write in plain Python (stdlib only), for the reference scripts and the
fixture generators."""
import json
import struct

FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "I32": ("i", 4), "I64": ("q", 8), "BOOL": ("?", 1)}


def read_safetensors(path, shapes=None):
    """Tensors of a safetensors file as flat lists (scalars as numbers); `shapes`, a dict, if
    given, receives each tensor's shape."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        fmt, size = FORMATS[info["dtype"]]
        a, b = info["data_offsets"]
        count = (b - a) // size
        vals = list(struct.unpack(f"<{count}{fmt}", data[a:b]))
        if shapes is not None:
            shapes[name] = info["shape"]
        out[name] = vals[0] if info["shape"] == [] else vals
    return out


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, flat values)."""
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, values in tensors:
        fmt, size = FORMATS[dtype]
        blob = struct.pack("<%d%s" % (len(values), fmt), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
