"""Checks against Google's official Perfetto schema (PyPI `perfetto`):

1. every field in protos/ has the upstream number, type and label;
2. every trace given re-serializes, with Google's implementation, to exactly
   its own bytes (canonical field order, minimal varints, nothing unknown).

Usage: python official.py PROTOS_DIR TRACE...
"""
import re
import sys
from pathlib import Path

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
from google.protobuf.descriptor import FieldDescriptor as FD

SCALARS = {
    "double": FD.TYPE_DOUBLE, "float": FD.TYPE_FLOAT, "int64": FD.TYPE_INT64,
    "uint64": FD.TYPE_UINT64, "int32": FD.TYPE_INT32, "fixed64": FD.TYPE_FIXED64,
    "fixed32": FD.TYPE_FIXED32, "bool": FD.TYPE_BOOL, "string": FD.TYPE_STRING,
    "bytes": FD.TYPE_BYTES, "uint32": FD.TYPE_UINT32, "sint32": FD.TYPE_SINT32,
    "sint64": FD.TYPE_SINT64,
}


def messages(text):
    """(dotted message name, label, type, field name, number) per field."""
    stack, fields = [], []
    for line in text.splitlines():
        line = line.split("//")[0].strip()
        if m := re.match(r"(message|enum)\s+(\w+)\s*\{", line):
            stack.append((m.group(1), m.group(2)))
        elif line.startswith("}"):
            stack.pop()
        elif stack and stack[-1][0] == "message":
            if m := re.match(r"(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", line):
                name = ".".join(n for _, n in stack)
                fields.append((name, m.group(1), m.group(2), m.group(3), int(m.group(4))))
    return fields


def check_schema(protos):
    errors, count = [], 0
    for path in sorted(Path(protos).rglob("*.proto")):
        for message, label, typ, name, number in messages(path.read_text()):
            count += 1
            desc = pb.DESCRIPTOR.pool.FindMessageTypeByName("perfetto.protos." + message)
            field = desc.fields_by_name.get(name)
            if field is None:
                errors.append(f"{message}.{name}: not upstream")
                continue
            if field.number != number:
                errors.append(f"{message}.{name}: number {number}, upstream {field.number}")
            if (label == "repeated") != field.is_repeated:
                errors.append(f"{message}.{name}: label {label} differs from upstream")
            if typ in SCALARS:
                if field.type != SCALARS[typ]:
                    errors.append(f"{message}.{name}: type {typ}, upstream type {field.type}")
            else:
                upstream = (field.message_type or field.enum_type).name
                if upstream != typ.split(".")[-1]:
                    errors.append(f"{message}.{name}: type {typ}, upstream {upstream}")
    return count, errors


def main():
    protos, traces = sys.argv[1], sys.argv[2:]
    count, errors = check_schema(protos)
    for trace in traces:
        data = Path(trace).read_bytes()
        t = pb.Trace()
        t.ParseFromString(data)
        if t.SerializeToString() != data:
            errors.append(f"{trace}: Google's implementation re-encodes it differently")
    for e in errors:
        print("official schema:", e)
    print(f"official schema: {count} fields of protos/ checked, {len(traces)} traces re-encoded")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
