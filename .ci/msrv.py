"""The declared MSRV (rust-version of each workspace member) holds for what a
user builds: no crate among a member's normal and build dependencies declares
a newer rust-version. (Newer std APIs in our own code are caught by clippy's
incompatible_msrv lint, which reads the same rust-version.) Only one toolchain
is installed here, so the check reads what the dependencies declare."""

import json
import subprocess
import sys


def version(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])


meta = json.loads(
    subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"])
)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
failures = []
for member in meta["workspace_members"]:
    pkg = packages[member]
    if pkg.get("publish") == []:
        continue  # internal crates (benchmarks) build on the developers' toolchain only
    msrv = pkg.get("rust_version")
    if not msrv:
        failures.append(f"{pkg['name']} declares no rust-version")
        continue
    seen, todo = set(), [member]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if node["id"] == member and kinds <= {"dev"}:
                continue  # a member's dev-dependencies are not built by its users
            if dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])
            need = packages[dep["pkg"]].get("rust_version")
            if need and version(need) > version(msrv):
                failures.append(
                    f"{pkg['name']} declares rust-version {msrv}, but "
                    f"{packages[dep['pkg']]['name']} {packages[dep['pkg']]['version']} needs {need}"
                )
    print(f"msrv: {pkg['name']} {msrv}: {len(seen)} dependencies checked")
for f in failures:
    print("msrv: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)
