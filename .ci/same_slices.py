"""Do two traces show the same slices on the same tracks? Reads the slice
lists pfcheck writes (--slices, one JSON object a line) and compares them
track by track, up to the tracks' uuids: a trace written by partition writers
numbers its async span tracks by sequence, so the same span may sit on a track
of another uuid and still be shown identically."""

import collections
import json
import sys


def tracks(path):
    by_uuid = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            s = json.loads(line)
            by_uuid[s.pop("track_uuid")].append(json.dumps(s, sort_keys=True))
    return sorted(tuple(sorted(v)) for v in by_uuid.values())


a, b = sys.argv[1], sys.argv[2]
ta, tb = tracks(a), tracks(b)
if ta != tb:
    only_a = [t for t in ta if t not in tb]
    only_b = [t for t in tb if t not in ta]
    print(f"{a}: {len(ta)} tracks, {b}: {len(tb)} tracks; "
          f"{len(only_a)} and {len(only_b)} tracks differ", file=sys.stderr)
    for name, only in ((a, only_a), (b, only_b)):
        if only:
            print(f"first track only in {name}:", file=sys.stderr)
            for s in only[0][:5]:
                print("  " + s, file=sys.stderr)
    sys.exit(1)
