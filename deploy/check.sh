#!/usr/bin/env bash
# Offline checks of deploy/ (container image, Kubernetes manifests, systemd unit). CI runs it
# after the build; it uses kubectl (with its built-in kustomize) where installed, systemd-analyze, apt-cache,
# dpkg, python3 and the built binaries, and no network, cluster, Docker engine or booted systemd.
#
#   bash deploy/check.sh [BIN_DIR]      BIN_DIR: the built binaries (default: build/bin)
#
# One line per check: "deploy-check: PASS|FAIL|SKIP <name>: <detail>"; a failure is followed by
# the end of its log, indented. Exits 1 when any check failed. Each check is bounded by a
# timeout, so the whole script ends within a few minutes even when something hangs.
set -uo pipefail
# BIN_DIR relative to where the script was called from; everything else relative to the repo.
BIN_DIR=${1:+$(realpath -m "$1")}
cd "$(dirname "$0")/.." || exit 1
BIN_DIR=${BIN_DIR:-$PWD/build/bin}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ttsbench-deploy-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export BIN_DIR WORK
export LC_ALL=C

failed=0
passed=0
skipped=0

# run_check NAME FUNCTION: runs FUNCTION in a bounded subshell. Its output goes to a log; the last
# line of the log is the detail shown. Exit 0 = PASS, 77 = SKIP, anything else = FAIL.
run_check() {
  local name=$1 fn=$2 log="$WORK/log.${1//[^A-Za-z0-9_.-]/_}" rc start=$SECONDS
  timeout 180 bash -c "$fn" >"$log" 2>&1
  rc=$?
  name="$name ($((SECONDS - start)) s)"
  local detail
  detail=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
  case $rc in
    0) passed=$((passed + 1)); echo "deploy-check: PASS $name: $detail" ;;
    77) skipped=$((skipped + 1)); echo "deploy-check: SKIP $name: $detail" ;;
    124) failed=$((failed + 1)); echo "deploy-check: FAIL $name: timed out"; tail -n 20 "$log" | sed 's/^/    /' ;;
    *) failed=$((failed + 1)); echo "deploy-check: FAIL $name: $detail"; tail -n 25 "$log" | sed 's/^/    /' ;;
  esac
}

# ------------------------------------------------------------------------ helpers (python)

# Reads a Dockerfile; checks its structure; writes the runtime stage's apt packages to
# $WORK/runtime-packages.txt and the COPY sources to $WORK/copy-sources.txt.
cat >"$WORK/dockerfile_lint.py" <<'PY'
import json, re, shlex, sys
path, out_pkgs, out_copies = sys.argv[1:4]
lines, cur = [], ""
for raw in open(path, encoding="utf-8"):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if cur and s.lstrip().startswith("#"):
        continue  # comment line inside a continuation
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
if cur:
    sys.exit("line continuation runs past the end of the file")
stages, errors = [], []
for line in lines:
    m = re.match(r"\s*([A-Za-z]+)\s+(.*)$", line)
    if not m:
        errors.append("cannot parse: " + line); continue
    ins, arg = m.group(1).upper(), m.group(2).strip()
    if ins == "FROM":
        parts = arg.split()
        name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
        stages.append({"image": parts[0], "name": name, "ins": []})
    elif not stages:
        if ins != "ARG": errors.append(ins + " before the first FROM")
    else:
        stages[-1]["ins"].append((ins, arg))
def runs(st): return [a for i, a in st["ins"] if i == "RUN"]
if len(stages) < 2: errors.append("expected a multi-stage build (build + runtime)")
for st in stages:
    if not re.fullmatch(r"debian:bookworm-slim(@sha256:[0-9a-f]{64})?", st["image"]):
        errors.append("stage %s is FROM %s, not debian:bookworm-slim" % (st["name"], st["image"]))
build, final = stages[0], stages[-1]
if not any("bash deploy/install-deps.sh" in r for r in runs(build)):
    errors.append("build stage does not run `bash deploy/install-deps.sh`")
cfg = [r for r in runs(build) if re.search(r"cmake\s+-S", r)]
if not cfg or "-G Ninja" not in cfg[0] or "-DBUILD_TESTING=OFF" not in cfg[0]:
    errors.append("build stage must configure with cmake -G Ninja -DBUILD_TESTING=OFF")
blds = [r for r in runs(build) if "cmake --build" in r]
for t in ("ttsbench", "ttsbench-agent", "ttsbench-synth"):
    if not any(re.search(r"--target[^&]*\s%s(\s|$)" % re.escape(t), b) for b in blds):
        errors.append("build stage does not build target " + t)
pkgs = []
for r in runs(final):
    for cmd in r.split("&&"):
        w = shlex.split(cmd)
        if len(w) >= 2 and w[0] == "apt-get" and "install" in w:
            if "--no-install-recommends" not in w:
                errors.append("runtime apt-get install without --no-install-recommends")
            pkgs += [x for x in w[w.index("install") + 1:] if not x.startswith("-")]
    if "apt-get install" in r and "rm -rf /var/lib/apt/lists" not in r:
        errors.append("runtime stage keeps the apt lists (rm -rf /var/lib/apt/lists/*)")
if not pkgs: errors.append("runtime stage installs no packages")
copies = []
for st in stages:
    for ins, arg in st["ins"]:
        if ins in ("COPY", "ADD"):
            w = shlex.split(arg)
            flags = [x for x in w if x.startswith("--")]
            srcs = [x for x in w if not x.startswith("--")][:-1]
            if any(f.startswith("--from=") for f in flags):
                src_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")][0]
                if src_stage not in [s["name"] for s in stages]:
                    errors.append("COPY --from=%s: no such stage" % src_stage)
            else:
                copies += srcs
if not any(i == "COPY" and "--from=" in a for i, a in final["ins"]):
    errors.append("runtime stage copies nothing from the build stage")
users = [a for i, a in final["ins"] if i == "USER"]
if not users or users[-1].split(":")[0] in ("root", "0"):
    errors.append("runtime stage must end with a non-root USER")
eps = [a for i, a in final["ins"] if i == "ENTRYPOINT"]
try:
    ep = json.loads(eps[-1]) if eps else None
except ValueError:
    ep = None
if not isinstance(ep, list) or not any(x.endswith("ttsbench-agent") for x in ep):
    errors.append("ENTRYPOINT must be exec form (JSON) running ttsbench-agent")
if errors:
    print("\n".join(errors)); sys.exit(1)
open(out_pkgs, "w").write("\n".join(pkgs) + "\n")
open(out_copies, "w").write("\n".join(copies) + "\n")
print("%d stages, runtime USER %s, ENTRYPOINT %s, %d runtime packages"
      % (len(stages), users[-1], " ".join(ep), len(pkgs)))
PY

# Reads `kubectl annotate --local -o json` output of one rendered overlay and checks how the
# pieces fit: agents vs the plan, Service vs Job, Secrets/ConfigMaps referenced vs generated,
# pod hardening, flags vs the binaries' --help. Writes the plan and the coordinator's --set
# arguments for the --print-plan check.
cat >"$WORK/k8s_check.py" <<'PY'
import ipaddress, json, re, sys, urllib.parse
objs_path, plan_out, sets_out, agent_help, run_help = sys.argv[1:6]
text = open(objs_path).read()
dec, pos, objs = json.JSONDecoder(), 0, []
while True:
    while pos < len(text) and text[pos].isspace(): pos += 1
    if pos >= len(text): break
    o, pos = dec.raw_decode(text, pos)
    objs += o["items"] if o.get("kind") == "List" else [o]
errors = []
def find(kind, prefix=None):
    return [o for o in objs if o["kind"] == kind and
            (prefix is None or o["metadata"]["name"] == prefix or
             re.fullmatch(re.escape(prefix) + r"-[a-z0-9]{10}", o["metadata"]["name"]))]
def one(kind, name):
    f = find(kind, name)
    if len(f) != 1:
        errors.append("expected one %s %s, found %d" % (kind, name, len(f))); return None
    return f[0]
dep, job, svc = one("Deployment", "ttsbench-agent"), one("Job", "ttsbench-coordinator"), one("Service", "ttsbench-coordinator")
plan_cm, agent_cm = one("ConfigMap", "ttsbench-plan"), one("ConfigMap", "ttsbench-agent-config")
if errors: print("\n".join(errors)); sys.exit(1)
names = {(o["kind"], o["metadata"]["name"]) for o in objs}
namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
if len(namespaces) != 1 or None in namespaces:
    errors.append("resources are not all in one namespace: %s" % sorted(map(str, namespaces)))

def pod_checks(what, spec):
    psc = spec.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("runAsUser") in (None, 0):
        errors.append(what + ": pod must set runAsNonRoot and a non-zero runAsUser")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errors.append(what + ": seccompProfile RuntimeDefault missing")
    if spec.get("automountServiceAccountToken") is not False:
        errors.append(what + ": automountServiceAccountToken must be false")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True: errors.append(what + ": readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False: errors.append(what + ": allowPrivilegeEscalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]: errors.append(what + ": capabilities.drop [ALL]")
        r = c.get("resources", {})
        for k in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(r.get(k, {})): errors.append(what + ": resources.%s cpu+memory" % k)
    mounts = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in mounts - set(vols): errors.append(what + ": volumeMount %s has no volume" % m)
    for v in vols.values():
        if "secret" in v and ("Secret", v["secret"]["secretName"]) not in names:
            errors.append(what + ": Secret %s is not rendered" % v["secret"]["secretName"])
        if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in names:
            errors.append(what + ": ConfigMap %s is not rendered" % v["configMap"]["name"])
    for c in spec["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ("ConfigMap", ref["name"]) not in names:
                errors.append(what + ": env %s: ConfigMap %s is not rendered" % (e["name"], ref["name"]))
    return vols

dspec, jspec = dep["spec"]["template"]["spec"], job["spec"]["template"]["spec"]
pod_checks("agent", dspec)
jvols = pod_checks("coordinator", jspec)
replicas = dep["spec"].get("replicas", 1)

# Agent flags: every --flag exists in `ttsbench-agent --help`; --allow-target and auth present.
agent = dspec["containers"][0]
env = {e["name"]: e for e in agent.get("env", [])}
cfg = agent_cm.get("data", {})
def expand(a):
    def sub(m):
        e = env.get(m.group(1))
        if e is None: errors.append("agent arg %s: $(%s) is not in env" % (a, m.group(1))); return ""
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        return cfg.get(ref["key"], "") if ref else e.get("value", "<runtime>")
    return re.sub(r"\$\(([A-Z_0-9]+)\)", sub, a)
aargs = [expand(a) for a in agent.get("args", [])]
ahelp = open(agent_help).read()
flags = {}
for a in aargs:
    if a.startswith("--"):
        k, _, v = a.partition("=")
        if not re.search(r"(^|[\s,])%s([\s,]|$)" % re.escape(k), ahelp):
            errors.append("agent flag %s is not in `ttsbench-agent --help`" % k)
        flags.setdefault(k, []).append(v)
allow = flags.get("--allow-target", [])
if not allow or not all(allow): errors.append("agent has no --allow-target value")
tls = all(k in flags for k in ("--tls-cert", "--tls-key", "--tls-ca"))
if not tls and "--token-file" not in flags:
    errors.append("agent has neither --tls-cert/--tls-key/--tls-ca nor --token-file")
coord_addr = flags.get("--coordinator", [""])[0]

# Coordinator: `ttsbench run PLAN [--set k=v ...]` with the plan from the plan ConfigMap.
c = jspec["containers"][0]
argv = c.get("command", [])[-1:] + c.get("args", [])
if not argv or not argv[0].endswith("ttsbench") or argv[1:2] != ["run"]:
    errors.append("coordinator must run `ttsbench run PLAN`: %s" % argv)
sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set" and i + 1 < len(argv)]
rhelp = open(run_help).read()
for a in argv[2:]:
    if a.startswith("--") and a.split("=")[0] not in rhelp:
        errors.append("coordinator flag %s is not in `ttsbench run --help`" % a)
plan_path = argv[2] if len(argv) > 2 else ""
mnt = [m for m in c.get("volumeMounts", []) if plan_path.startswith(m["mountPath"] + "/")]
if not mnt or "configMap" not in jvols.get(mnt[0]["name"], {}):
    errors.append("plan %s is not on a ConfigMap volume" % plan_path)
else:
    key = plan_path[len(mnt[0]["mountPath"]) + 1:]
    cm = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == jvols[mnt[0]["name"]]["configMap"]["name"]][0]
    if key not in cm.get("data", {}): errors.append("ConfigMap has no key " + key)
    else: open(plan_out, "w").write(cm["data"][key])
if jspec.get("restartPolicy") != "Never" or job["spec"].get("backoffLimit") != 0:
    errors.append("coordinator Job must have restartPolicy Never and backoffLimit 0")
setkeys = {s.split("=", 1)[0] for s in sets}
if tls and not {"agents.tls_cert", "agents.tls_key", "agents.tls_ca"} <= setkeys:
    errors.append("agents use TLS but the coordinator gets no --set agents.tls_*")
if "--token-file" in flags and "agents.token_file" not in setkeys:
    errors.append("agents use a token but the coordinator gets no --set agents.token_file")
# Every path given to the coordinator is inside one of its mounts.
cmounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
for s in sets:
    v = s.split("=", 1)[1] if "=" in s else ""
    if v.startswith("/") and not any(v.startswith(m + "/") for m in cmounts):
        errors.append("--set %s: not inside any volume mount" % s)

# Service: selects the Job's pods; the agents dial it on its gRPC port.
labels = job["spec"]["template"]["metadata"].get("labels", {})
sel = svc["spec"].get("selector", {})
if not sel or any(labels.get(k) != v for k, v in sel.items()):
    errors.append("Service selector %s does not match the coordinator pod labels" % sel)
host, _, port = coord_addr.rpartition(":")
ports = {p["port"] for p in svc["spec"]["ports"]}
ns = dep["metadata"].get("namespace", "")
if host not in (svc["metadata"]["name"], "%s.%s" % (svc["metadata"]["name"], ns),
                "%s.%s.svc" % (svc["metadata"]["name"], ns), "%s.%s.svc.cluster.local" % (svc["metadata"]["name"], ns)):
    errors.append("agents dial %s, not the coordinator Service" % coord_addr)
if not port.isdigit() or int(port) not in ports:
    errors.append("agents dial port %s, the Service has %s" % (port, sorted(ports)))
cports = {p["containerPort"] for p in c.get("ports", [])}
open(sets_out, "w").write("\n".join(sets) + ("\n" if sets else ""))
print(json.dumps({"errors": errors, "replicas": replicas, "allow": allow, "port": port,
                  "cports": sorted(cports), "mounts": cmounts, "ns": ns}))
PY

# Checks the plan as `ttsbench run --print-plan` printed it (canonical YAML: two-space indents)
# against the rendered manifests' facts.
cat >"$WORK/plan_check.py" <<'PY'
import ipaddress, json, sys, urllib.parse
facts = json.load(open(sys.argv[1]))
plan, sec = {}, None
for line in open(sys.argv[2]):
    if not line.strip() or line.lstrip().startswith("#"): continue
    if not line.startswith(" "):
        k, _, v = line.partition(":"); sec = k.strip()
        if v.strip(): plan[sec] = v.strip()
    elif line.startswith("  ") and not line.startswith("   ") and ":" in line and sec:
        k, _, v = line.strip().partition(":"); plan["%s.%s" % (sec, k.strip())] = v.strip()
errors = list(facts["errors"])
expect = int(plan.get("agents.expect", "0") or 0)
if expect != facts["replicas"]:
    errors.append("plan agents.expect %d != agent Deployment replicas %d" % (expect, facts["replicas"]))
listen = plan.get("agents.listen", "")
lport = listen.rpartition(":")[2]
if lport != facts["port"] or int(lport or 0) not in facts["cports"]:
    errors.append("plan agents.listen %s: port differs from the Service/containerPort %s" % (listen, facts["port"]))
url = urllib.parse.urlsplit(plan.get("target.url", ""))
host = (url.hostname or "").lower()
def allowed(entry):
    e = entry.strip().lower()
    if e == host: return True
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(e, strict=False)
    except ValueError:
        return False
if not any(allowed(a) for a in facts["allow"]):
    errors.append("plan target %s is not allowed by the agents' --allow-target %s" % (host, facts["allow"]))
out = plan.get("output_dir", "ttsbench-results")
if not any(out == m or out.startswith(m + "/") for m in facts["mounts"]):
    errors.append("plan output_dir %s is not on a volume (lost with the container)" % out)
if errors: print("\n".join(errors)); sys.exit(1)
print("%d agent(s) = agents.expect, target %s allowed, listen %s, output %s"
      % (expect, host, listen, out))
PY

# ------------------------------------------------------------------------ Kubernetes

k8s_overlay() {  # $1: overlay folder
  local dir=$1 o="$WORK/k8s.${1//\//_}"
  mkdir -p "$o"
  command -v kubectl >/dev/null || { echo "kubectl is not installed (no Debian 12 package has it): manifests not rendered"; return 77; }
  [[ -x $BIN_DIR/ttsbench && -x $BIN_DIR/ttsbench-agent ]] || { echo "no built binaries in $BIN_DIR"; return 1; }
  timeout 60 kubectl kustomize "$dir" >"$o/rendered.yaml" || { echo "kubectl kustomize $dir failed"; return 1; }
  # kubectl decodes the objects offline; a List of typed JSON objects comes back.
  timeout 60 kubectl annotate --local -f "$o/rendered.yaml" -o json deploy-check=1 >"$o/objects.json" ||
    { echo "kubectl could not decode the rendered objects"; return 1; }
  "$BIN_DIR/ttsbench-agent" --help >"$o/agent-help.txt" 2>&1
  "$BIN_DIR/ttsbench" run --help >"$o/run-help.txt" 2>&1
  python3 "$WORK/k8s_check.py" "$o/objects.json" "$o/plan.yaml" "$o/sets.txt" \
    "$o/agent-help.txt" "$o/run-help.txt" >"$o/facts.json" || { cat "$o/facts.json"; return 1; }
  [[ -s $o/plan.yaml ]] || {
    python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["errors"]))' "$o/facts.json"
    return 1
  }
  # The plan, with the coordinator's --set overrides, must load in the real binary.
  local args=() s
  while IFS= read -r s; do [[ -n $s ]] && args+=(--set "$s"); done <"$o/sets.txt"
  timeout 30 "$BIN_DIR/ttsbench" run "$o/plan.yaml" "${args[@]}" --print-plan >"$o/plan.printed" ||
    { echo "the rendered plan does not load: ttsbench run plan.yaml --print-plan failed"; return 1; }
  python3 "$WORK/plan_check.py" "$o/facts.json" "$o/plan.printed"
}
export -f k8s_overlay

k8s_render_only() {  # $1: folder; renders and decodes
  command -v kubectl >/dev/null || { echo "kubectl is not installed (no Debian 12 package has it): not rendered"; return 77; }
  timeout 60 kubectl kustomize "$1" >"$WORK/tool.yaml" || return 1
  timeout 60 kubectl annotate --local -f "$WORK/tool.yaml" -o json deploy-check=1 >/dev/null || return 1
  echo "renders: $(grep -c '^kind:' "$WORK/tool.yaml") object(s)"
}
export -f k8s_render_only

# The secrets/ files in the repository must stay EXAMPLE placeholders: real keys and tokens
# belong in a private copy of the overlay. Looks at what git would commit (the index) when this
# is a git checkout, so a developer's real files in the work tree do not fail it.
k8s_placeholders() {
  local f n=0 bad=0 content
  while IFS= read -r f; do
    n=$((n + 1))
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && git ls-files --error-unmatch "$f" >/dev/null 2>&1; then
      content=$(git show ":$f")
    else
      content=$(cat "$f")
    fi
    if ! grep -q 'EXAMPLE-PLACEHOLDER' <<<"$content" || grep -q -- '-----BEGIN' <<<"$content"; then
      echo "$f is not an EXAMPLE-PLACEHOLDER file (a real key or token must not be committed)"; bad=1
    fi
  done < <(find deploy/k8s -path '*/secrets/*' -type f | sort)
  ((n > 0)) || { echo "no secrets/ placeholder files found"; return 1; }
  ((bad == 0)) && echo "$n secret files are EXAMPLE placeholders"
}
export -f k8s_placeholders

# ------------------------------------------------------------------------ systemd

UNIT=deploy/systemd/ttsbench-agent.service
export UNIT

# A throw-away root for the unit: systemd's own units (targets the unit depends on), the
# ExecStart binary (a stub at /usr/local/bin/ttsbench-agent) and the EnvironmentFile. Works
# without a booted systemd, as root or not.
make_unit_root() {
  local r=$1
  mkdir -p "$r/usr/local/bin" "$r/etc/ttsbench" "$r/etc/systemd/system" "$r/usr/lib/systemd" "$r/etc/sysusers.d"
  cp -r /lib/systemd/system "$r/usr/lib/systemd/"
  printf '#!/bin/sh\nexit 0\n' >"$r/usr/local/bin/ttsbench-agent"
  chmod 0755 "$r/usr/local/bin/ttsbench-agent"
  cp deploy/systemd/agent.env.example "$r/etc/ttsbench/agent.env"
  cp "$UNIT" "$r/etc/systemd/system/"
  cp deploy/systemd/ttsbench.sysusers.conf "$r/etc/sysusers.d/ttsbench.conf"
  cp /etc/passwd /etc/group "$r/etc/"
}
export -f make_unit_root

systemd_verify() {
  command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found"; return 77; }
  local r="$WORK/unit-root" out
  make_unit_root "$r"
  # verify exits 0 on unknown keys and bad values (it only warns): any output is a failure.
  out=$(timeout 60 systemd-analyze verify --man=no --root="$r" ttsbench-agent.service 2>&1)
  local rc=$?
  [[ $rc -eq 0 && -z $out ]] || { echo "$out"; echo "systemd-analyze verify: rc=$rc, output above"; return 1; }
  grep -q '^ExecStart=/usr/local/bin/ttsbench-agent ' "$UNIT" || { echo "ExecStart must be /usr/local/bin/ttsbench-agent"; return 1; }
  echo "systemd-analyze verify --root: no warnings ($(systemd-analyze --version | head -n 1))"
}
export -f systemd_verify

systemd_security() {
  command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found"; return 77; }
  local r="$WORK/unit-root-sec" out
  make_unit_root "$r"
  # --threshold is in tenths: fail above an exposure of 2.0 ("OK" is below 3.0).
  out=$(timeout 60 systemd-analyze security --offline=true --root="$r" --threshold=20 ttsbench-agent.service 2>&1)
  local rc=$?
  grep -o 'Overall exposure level.*' <<<"$out" | tail -n 1
  [[ $rc -eq 0 ]] || { tail -n 40 <<<"$out"; echo "exposure above 2.0 (rc=$rc)"; return 1; }
}
export -f systemd_security

systemd_sysusers() {
  command -v systemd-sysusers >/dev/null || { echo "systemd-sysusers not found"; return 77; }
  local r="$WORK/unit-root-sysusers"
  make_unit_root "$r"
  grep -v '^#' /etc/passwd | grep -q '^ttsbench:' && echo "(host already has a ttsbench user)"
  # A root whose passwd/group lack the user: the dry run must want to create it.
  grep -v '^ttsbench:' /etc/passwd >"$r/etc/passwd"
  grep -v '^ttsbench:' /etc/group >"$r/etc/group"
  local out
  out=$(timeout 30 systemd-sysusers --root="$r" --dry-run 2>&1) || { echo "$out"; return 1; }
  grep -qi 'ttsbench' <<<"$out" || { echo "$out"; echo "sysusers would not create the ttsbench user"; return 1; }
  grep -q '^User=ttsbench$' "$UNIT" || { echo "unit does not run as User=ttsbench"; return 1; }
  echo "sysusers.d creates the unit's user ttsbench"
}
export -f systemd_sysusers

# Every --flag of the example environment file exists in the agent's --help.
systemd_env_flags() {
  [[ -x $BIN_DIR/ttsbench-agent ]] || { echo "no $BIN_DIR/ttsbench-agent"; return 1; }
  local help args f n=0
  help=$("$BIN_DIR/ttsbench-agent" --help 2>&1)
  args=$(sed -n 's/^TTSBENCH_AGENT_ARGS=//p' deploy/systemd/agent.env.example)
  [[ -n $args ]] || { echo "agent.env.example sets no TTSBENCH_AGENT_ARGS"; return 1; }
  # shellcheck disable=SC2016 # a literal $ is meant
  grep -q '\$TTSBENCH_AGENT_ARGS' "$UNIT" || { echo "the unit does not pass \$TTSBENCH_AGENT_ARGS"; return 1; }
  for f in $args; do
    [[ $f == --* ]] || continue
    n=$((n + 1))
    grep -qE -- "(^|[ ,])${f%%=*}([ ,]|$)" <<<"$help" || { echo "agent.env.example: $f is not a ttsbench-agent flag"; return 1; }
  done
  for f in --coordinator --allow-target; do
    grep -q -- "$f " <<<"$args " || { echo "agent.env.example lacks $f"; return 1; }
  done
  echo "$n flags of agent.env.example exist in ttsbench-agent --help"
}
export -f systemd_env_flags

# Runs a real agent (against `ttsbench demo` with one remote agent on loopback) under strace and
# checks that every system call and socket family it used is allowed by the unit's
# SystemCallFilter= and RestrictAddressFamilies=: the sandbox cannot be tried without a booted
# systemd, but what it would refuse can be.
systemd_sandbox_syscalls() {
  command -v strace >/dev/null || { echo "strace not installed"; return 77; }
  command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found"; return 77; }
  [[ -x $BIN_DIR/ttsbench && -x $BIN_DIR/ttsbench-agent ]] || { echo "no built binaries in $BIN_DIR"; return 1; }
  local d="$WORK/strace" port
  mkdir -p "$d"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  timeout 90 "$BIN_DIR/ttsbench" demo --concurrency 2 --iterations 16 --warmup 2 --expect-agents 1 \
    --listen "127.0.0.1:$port" --output-dir "$d/out" >"$d/coordinator.log" 2>&1 &
  local coord=$!
  timeout 80 strace -f -qq -o "$d/trace" "$BIN_DIR/ttsbench-agent" --coordinator "127.0.0.1:$port" \
    --once --connect-timeout 30 >"$d/agent.log" 2>&1
  local arc=$?
  wait "$coord"
  local crc=$?
  [[ $arc -eq 0 && $crc -eq 0 ]] || { tail -n 5 "$d/coordinator.log" "$d/agent.log"; echo "demo run failed: agent rc=$arc, coordinator rc=$crc"; return 1; }
  expand_filter() {  # syscall names of the groups/names given, groups expanded recursively
    local x
    for x in "$@"; do
      if [[ $x == @* ]]; then
        systemd-analyze syscall-filter "$x" | sed -n 's/^    \([@a-z0-9_-]*\)$/\1/p' | while read -r y; do expand_filter "$y"; done
      else
        echo "$x"
      fi
    done
  }
  local allow=() deny=() line
  while IFS= read -r line; do
    if [[ $line == "~"* ]]; then read -ra w <<<"${line#\~}"; deny+=("${w[@]}"); else read -ra w <<<"$line"; allow+=("${w[@]}"); fi
  done < <(sed -n 's/^SystemCallFilter=//p' "$UNIT")
  expand_filter "${allow[@]}" | sort -u >"$d/allow"
  expand_filter "${deny[@]}" | sort -u >"$d/deny"
  comm -23 "$d/allow" "$d/deny" >"$d/allowed"
  sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$d/trace" | sort -u >"$d/used"
  local missing families badfam=""
  missing=$(comm -23 "$d/used" "$d/allowed" | tr '\n' ' ')
  families=$(grep -oE 'socket\(AF_[A-Z0-9]+' "$d/trace" | sed 's/socket(//' | sort -u | tr '\n' ' ')
  for f in $families; do grep -qE "^RestrictAddressFamilies=.*\b$f\b" "$UNIT" || badfam+="$f "; done
  [[ -z $missing && -z $badfam ]] || { echo "the unit would refuse: syscalls [${missing}] families [${badfam}]"; return 1; }
  echo "$(wc -l <"$d/used") syscalls and families ${families% } used by a loopback run are allowed"
}
export -f systemd_sandbox_syscalls

# ------------------------------------------------------------------------ container image

docker_lint() {
  python3 "$WORK/dockerfile_lint.py" deploy/Dockerfile "$WORK/runtime-packages.txt" "$WORK/copy-sources.txt"
}
export -f docker_lint

# apt-cache needs package lists; fetch them once when absent (as install-deps.sh would).
ensure_apt_lists() {
  apt-cache show libc6 >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || return 1
  timeout 120 apt-get update -qq >/dev/null 2>&1
  apt-cache show libc6 >/dev/null 2>&1
}
export -f ensure_apt_lists

docker_packages() {
  [[ -s $WORK/runtime-packages.txt ]] || { echo "no package list (docker-lint failed)"; return 1; }
  ensure_apt_lists || { echo "no apt package lists (apt-get update needed)"; return 1; }
  local found missing n
  # One apt-cache call for all of them (each call re-reads the package lists).
  found=$(xargs apt-cache show --no-all-versions <"$WORK/runtime-packages.txt" 2>/dev/null |
    sed -n 's/^Package: //p' | sort -u)
  missing=$(sort -u "$WORK/runtime-packages.txt" | comm -23 - <(echo "$found"))
  [[ -z $missing ]] || { echo "runtime packages not in this Debian's archive: $missing"; return 1; }
  n=$(wc -l <"$WORK/runtime-packages.txt")
  # shellcheck disable=SC1091
  . /etc/os-release
  [[ ${VERSION_CODENAME:-} == bookworm ]] || echo "note: checked against ${PRETTY_NAME:-this system}, not Debian 12"
  echo "$n runtime packages exist in ${PRETTY_NAME:-the archive}"
}
export -f docker_packages

# Every shared library the built binaries load must come with the runtime packages: a library a
# binary links directly (DT_NEEDED) from a package named in the Dockerfile, the rest from those
# packages' dependencies (apt-cache depends --recurse). libc6 comes with the base image.
docker_ldd() {
  [[ -s $WORK/runtime-packages.txt ]] || { echo "no package list (docker-lint failed)"; return 1; }
  ensure_apt_lists || { echo "no apt package lists (apt-get update needed)"; return 1; }
  local base=(libc6) b lib path p bad=0
  declare -A listed=() closure=() owner=()
  while IFS= read -r p; do listed[$p]=1; done <"$WORK/runtime-packages.txt"
  while IFS= read -r p; do closure[$p]=1; done < <(
    xargs apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${base[@]}" <"$WORK/runtime-packages.txt" | grep -v '^[ <]')
  # (binary, library, resolved path, directly needed?) for every library load.
  : >"$WORK/loads"
  for b in ttsbench ttsbench-agent ttsbench-synth; do
    [[ -x $BIN_DIR/$b ]] || { echo "no $BIN_DIR/$b: build first"; return 1; }
    if ldd "$BIN_DIR/$b" | grep -q 'not found'; then ldd "$BIN_DIR/$b" | grep 'not found'; bad=1; fi
    local needed
    needed=$(readelf -d "$BIN_DIR/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    while read -r lib _ path _; do
      [[ $path == /* ]] || continue
      if grep -qxF "$lib" <<<"$needed"; then echo "$b $lib $path direct"; else echo "$b $lib $path indirect"; fi
    done < <(ldd "$BIN_DIR/$b" | grep '=>') >>"$WORK/loads"
  done
  # Which package ships each path: one dpkg -S for all spellings (merged /usr: /lib = /usr/lib).
  local spellings=() real
  while read -r path; do
    real=$(readlink -f "$path")
    spellings+=("$path" "$real" "${path#/usr}" "${real#/usr}" "/usr${path#/usr}" "/usr${real#/usr}")
  done < <(awk '{print $3}' "$WORK/loads" | sort -u)
  while IFS= read -r line; do
    p=${line%%: /*}; p=${p%%,*}; p=${p%%:*}
    owner[${line#*: }]=$p
  done < <(dpkg -S "${spellings[@]}" 2>/dev/null)
  local dir pkg what
  while read -r b lib path what; do
    real=$(readlink -f "$path")
    pkg=""
    for p in "$path" "$real" "${path#/usr}" "${real#/usr}" "/usr${path#/usr}" "/usr${real#/usr}"; do
      [[ -n ${owner[$p]:-} ]] && { pkg=${owner[$p]}; break; }
    done
    [[ -n $pkg ]] || { echo "$b: $lib ($path) belongs to no package"; bad=1; continue; }
    if [[ $what == direct && -z ${listed[$pkg]:-} && " ${base[*]} " != *" $pkg "* ]]; then
      echo "$b links $lib directly: add $pkg to the runtime stage"; bad=1
    fi
    [[ -n ${closure[$pkg]:-} ]] || { echo "$b needs $lib from $pkg, which the runtime packages do not bring"; bad=1; }
  done <"$WORK/loads"
  ((bad == 0)) || return 1
  echo "$(wc -l <"$WORK/loads") library loads of 3 binaries ($(awk '{print $3}' "$WORK/loads" | sort -u | wc -l) libraries) covered by the runtime packages"
}
export -f docker_ldd

# Builds the context Docker would send (deploy/Dockerfile.dockerignore applied), checks every
# COPY source is in it, and configures the build in it: every source the three targets need
# must be there (ninja -n fails on a missing input). Nothing is compiled.
docker_context() {
  local ign=deploy/Dockerfile.dockerignore ctx="$WORK/context" line
  [[ -f $ign ]] || { echo "no $ign"; return 1; }
  mkdir -p "$ctx"
  local seen_all=0
  while IFS= read -r line; do
    line=${line%%#*}; line=${line//[[:space:]]/}
    [[ -z $line ]] && continue
    if [[ $line == '**' || $line == '*' ]]; then seen_all=1; continue; fi
    [[ $line == '!'* && $seen_all -eq 1 ]] || { echo "$ign: only '*' then '!path' lines are understood here: $line"; return 1; }
    line=${line#!}; line=${line%/}
    [[ -e $line ]] || { echo "$ign re-includes $line, which does not exist"; return 1; }
    mkdir -p "$ctx/$(dirname "$line")"
    cp -a "$line" "$ctx/$line"
  done <"$ign"
  ((seen_all)) || { echo "$ign must start by excluding everything (*)"; return 1; }
  local src
  while IFS= read -r src; do
    [[ -z $src || $src == . || $src == ./ ]] && continue
    [[ -e $ctx/$src ]] || { echo "COPY $src: not in the build context (see $ign)"; return 1; }
  done <"$WORK/copy-sources.txt"
  if find "$ctx" -maxdepth 2 -name CMakeCache.txt | grep -q .; then echo "a build tree leaked into the context"; return 1; fi
  timeout 120 cmake -S "$ctx" -B "$ctx/_build" -G Ninja -DBUILD_TESTING=OFF >"$WORK/context-cmake.log" 2>&1 ||
    { tail -n 15 "$WORK/context-cmake.log"; echo "cmake configure fails in the image's build context"; return 1; }
  timeout 60 ninja -C "$ctx/_build" -n ttsbench ttsbench-agent ttsbench-synth >"$WORK/context-ninja.log" 2>&1 ||
    { tail -n 15 "$WORK/context-ninja.log"; echo "the build context lacks inputs of the three targets"; return 1; }
  echo "context of $(find "$ctx" -path "$ctx/_build" -prune -o -type f -print | wc -l) files configures; $(grep -c 'Building\|Linking' "$WORK/context-ninja.log") build steps, none missing"
}
export -f docker_context

# ------------------------------------------------------------------------ run

for overlay in deploy/k8s/overlays/*/; do
  overlay=${overlay%/}
  run_check "k8s:${overlay#deploy/k8s/}" "k8s_overlay $overlay"
done
for tool in deploy/k8s/tools/*/; do
  tool=${tool%/}
  run_check "k8s:${tool#deploy/k8s/}" "k8s_render_only $tool"
done
run_check k8s:placeholders k8s_placeholders
run_check systemd:verify systemd_verify
run_check systemd:security systemd_security
run_check systemd:sysusers systemd_sysusers
run_check systemd:env-flags systemd_env_flags
run_check systemd:sandbox-syscalls systemd_sandbox_syscalls
run_check docker:lint docker_lint
run_check docker:packages docker_packages
run_check docker:ldd docker_ldd
run_check docker:context docker_context

echo "deploy-check: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
