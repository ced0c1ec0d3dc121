#!/bin/sh
# Guest side of test/vm/enforcer.test.ts: runs as root inside the VM. It runs
# `sabpf enforce` on two "containers" (cgroups) with different policies and
# an unconfined process beside them, runs real commands, and writes one line
# per probe to $SABPF_OUT/results.txt: "name rc=N out=TEXT". It asserts
# nothing: the host test does.
set -u
OUT=$SABPF_OUT
RESULTS=$OUT/results.txt
ROOT=$SABPF_SHARE
SABPF="node $ROOT/dist/cli/main.js"
CG=/sys/fs/cgroup/demo
W=/tmp/sabpf
: >"$RESULTS"

# Files the policies protect, and binaries to run. busybox applets are all
# /bin/busybox and pick their applet from their own name, so the denied
# binaries are copies named after applets: /srv/bin/true and /srv/bin/sh.
mkdir -p $W/policies /srv/secret /srv/data /srv/bin "$CG/web" "$CG/db"
echo s3cret >/srv/secret/key
echo data >/srv/data/a
cp /bin/busybox /srv/bin/true
cp /bin/busybox /srv/bin/sh
ln -s /srv/bin/true /srv/bin/link
printf '#!/srv/bin/sh\necho script ran\n' >/srv/bin/script.sh
chmod +x /srv/bin/script.sh
ln -s /srv/secret/key /srv/symlink-to-key

cat >$W/containers.yaml <<YAML
node: vm-node
containers:
  - { namespace: shop, pod: web-1, container: nginx, labels: { app: web }, cgroupPath: $CG/web }
  - { namespace: shop, pod: db-1, container: postgres, labels: { app: db }, cgroupPath: $CG/db }
YAML

cat >$W/policies/web.yaml <<'YAML'
apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: { name: web-lockdown, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  mode: enforce
  severity: high
  message: web lockdown
  file:
    posture: allow
    rules:
      - { name: secrets, paths: [/srv/secret/**], access: readwrite, action: deny }
  exec:
    posture: allow
    rules:
      - { name: tools, paths: [/srv/bin/true, /srv/bin/sh], action: deny }
  network:
    posture: allow
    rules:
      - { name: no-9000, operation: connect, protocol: tcp, cidrs: [127.0.0.0/8], ports: [{ port: 9000 }], action: deny }
      - { name: no-raw, operation: raw-socket, action: deny }
YAML

cat >$W/policies/db.yaml <<'YAML'
apiVersion: sabpf.io/v1alpha1
kind: ContainerSecurityPolicy
metadata: { name: db-rollout, namespace: shop }
spec:
  selector: { matchLabels: { app: db } }
  mode: audit
  file:
    posture: deny
    rules:
      - { name: system, paths: [/bin/**, /lib/**, /usr/**, /etc/**, /proc/**, /dev/**, /sys/**], access: read, action: allow }
YAML

# probe NAME CGROUP|- COMMAND...: runs COMMAND (in the cgroup unless "-") and records rc and output.
probe() {
  name=$1
  cgroup=$2
  shift 2
  if [ "$cgroup" = - ]; then
    out=$("$@" 2>&1)
  else
    out=$(sh -c 'echo $$ >"$0"/cgroup.procs && exec "$@"' "$CG/$cgroup" "$@" 2>&1)
  fi
  rc=$?
  printf '%s rc=%s out=%s\n' "$name" "$rc" "$(printf '%s' "$out" | tr '\n' ' ')" >>"$RESULTS"
}

# Keeps the audit trail for the host test even when a step below fails.
save_audit() {
  cp $W/audit/audit.log $OUT/audit.log 2>/dev/null
}

start_enforcer() {
  log=$1
  $SABPF enforce --policies $W/policies --containers $W/containers.yaml --audit-dir $W/audit >"$log" 2>&1 &
  ENFORCER=$!
  # A deadline in seconds, not a count of polls: under TCG a start takes
  # 100 s on 5.10 (policy compile, then the verifier), and a poll's length
  # depends on the host's load.
  deadline=$(($(date +%s) + 400))
  while ! grep -q 'enforcing; send SIGHUP' "$log" 2>/dev/null; do
    if [ "$(date +%s)" -gt $deadline ] || ! kill -0 $ENFORCER 2>/dev/null; then
      echo "enforcer did not start" >>"$RESULTS"
      cat "$log" >>"$RESULTS"
      return 1
    fi
    sleep 0.1
  done
}

# reload LOG: sends SIGHUP and waits until the enforcer logged the reload.
reload() {
  before=$(grep -c 'reloaded policies' "$1")
  kill -HUP $ENFORCER
  deadline=$(($(date +%s) + 300))
  while [ "$(grep -c 'reloaded policies' "$1")" -le "$before" ] && [ "$(date +%s)" -le $deadline ]; do
    sleep 0.1
  done
}

start_enforcer $OUT/enforcer1.log || { save_audit; exit 0; }

# Files: protected path, aliases, an unconfined process.
probe web_read_secret web cat /srv/secret/key
probe web_write_secret web sh -c 'echo x >>/srv/secret/key'
probe web_read_data web cat /srv/data/a
probe web_symlink web cat /srv/symlink-to-key
probe web_relative web sh -c 'cd /srv/secret && cat ./key'
probe web_dotdot web cat /srv/data/../secret/key
probe host_read_secret - cat /srv/secret/key

# Hard links: one made inside web would give the secret a second name that
# no rule protects. One made outside beforehand does (the documented limit).
probe web_hardlink web ln /srv/secret/key /srv/data/alias
probe web_hardlink_read web cat /srv/data/alias
probe host_hardlink - ln /srv/secret/key /srv/data/alias
probe web_read_host_hardlink web cat /srv/data/alias
rm -f /srv/data/alias

# Renames: moving the secret out would give it a name no rule protects.
probe web_rename web mv /srv/secret/key /srv/data/moved
probe web_rename_read web cat /srv/data/moved

# Changes made without an open for write: removing or truncating the secret.
probe web_unlink web rm -f /srv/secret/key
probe web_truncate web truncate -s 0 /srv/secret/key
probe web_chmod web chmod 666 /srv/secret/key
probe host_secret_intact - cat /srv/secret/key
probe web_rename_parent web mv /srv /srv-moved

# Exec: the binary, a symlink to it, a script whose interpreter it is.
probe web_exec_tool web /srv/bin/true
probe web_exec_link web /srv/bin/link
probe web_exec_script web /srv/bin/script.sh
probe host_exec_tool - /srv/bin/true
probe host_exec_script - /srv/bin/script.sh

# Network: a listener on loopback; connect over IPv4 and IPv4-mapped IPv6.
node -e 'require("net").createServer((s)=>s.end()).listen(9000,"127.0.0.1",()=>console.log("listening"))' >$OUT/listener.log 2>&1 &
LISTENER=$!
i=0
while ! grep -q listening $OUT/listener.log && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
probe web_connect_v4 web node -e 'require("net").connect(9000,"127.0.0.1").on("connect",()=>{console.log("connected");process.exit(0)}).on("error",e=>{console.log(e.code);process.exit(1)})'
probe web_connect_mapped web node -e 'require("net").connect({port:9000,host:"::ffff:127.0.0.1",family:6}).on("connect",()=>{console.log("connected");process.exit(0)}).on("error",e=>{console.log(e.code);process.exit(1)})'
probe host_connect - node -e 'require("net").connect(9000,"127.0.0.1").on("connect",()=>{console.log("connected");process.exit(0)}).on("error",e=>{console.log(e.code);process.exit(1)})'
probe web_raw_socket web ping -c 1 -W 1 127.0.0.1
probe host_raw_socket - ping -c 1 -W 1 127.0.0.1

# Audit mode: the db container reads outside its allow-list: allowed, recorded.
probe db_read_data db cat /srv/data/a

# Replace the policy while a workload runs: a loop in the web container reads
# the secret 100 times a second. It must never succeed, before, during or
# after the reloads.
sh -c 'echo $$ >'"$CG"'/web/cgroup.procs; ok=0; n=0; while [ ! -e /tmp/stop-loop ]; do if cat /srv/secret/key >/dev/null 2>&1; then ok=$((ok+1)); fi; n=$((n+1)); sleep 0.01; done; echo "$ok $n" >/tmp/loop-result' &
LOOP=$!
sleep 1
sed -i 's#/srv/secret/\*\*\]#/srv/secret/**, /srv/data/**]#' $W/policies/web.yaml
reload $OUT/enforcer1.log
probe web_read_data_after_reload web cat /srv/data/a

# Kill the enforcer outright: the pinned programs keep enforcing.
kill -9 $ENFORCER
sleep 1
probe web_read_secret_enforcer_dead web cat /srv/secret/key
probe web_exec_tool_enforcer_dead web /srv/bin/true
# 1,500 denials with no reader: more than the 4 MiB ring buffer holds, so
# the restarted enforcer must find the losses in the kernel counter.
probe web_flood_enforcer_dead web node -e 'let d=0;for(let i=0;i<1500;i++){try{require("fs").openSync("/srv/secret/key")}catch(e){d++}}console.log(d)'

# Restart: the new process adopts the pins; then a policy change applies.
start_enforcer $OUT/enforcer2.log || { save_audit; exit 0; }
probe web_read_secret_restarted web cat /srv/secret/key
sed -i 's#, /srv/data/\*\*\]#]#' $W/policies/web.yaml
reload $OUT/enforcer2.log
probe web_read_data_after_second_reload web cat /srv/data/a

# Second enforcers beside the running one: each is rejected before it loads
# programs or writes a record, and the running one keeps enforcing. With a
# broken lock one would run on, so timeout ends it and the case fails.
second() {
  name=$1
  shift
  timeout 240 "$@" >$OUT/$name.log 2>&1
  echo "$name rc=$? out=$(grep '^sabpf enforce:' $OUT/$name.log | tr '\n' ' ')" >>"$RESULTS"
}
echo "running_enforcer rc=0 out=$ENFORCER" >>"$RESULTS"
second second_same_pins $SABPF enforce --policies $W/policies --containers $W/containers.yaml --audit-dir $W/audit2
probe second_made_no_trail - test ! -e $W/audit2
second second_same_trail $SABPF enforce --policies $W/policies --containers $W/containers.yaml --audit-dir $W/audit --pin-root /sys/fs/bpf/sabpf-second
probe second_pinned_nothing - sh -c 'ls -A /sys/fs/bpf/sabpf-second && test -z "$(ls -A /sys/fs/bpf/sabpf-second)"'
rmdir /sys/fs/bpf/sabpf-second
second unload_while_running $SABPF enforce --unload
probe web_read_secret_beside_second web cat /srv/secret/key

touch /tmp/stop-loop
wait $LOOP
echo "loop rc=0 out=$(cat /tmp/loop-result)" >>"$RESULTS"

kill -TERM $ENFORCER
wait $ENFORCER
echo "enforcer_exit rc=$? out=" >>"$RESULTS"
probe web_read_secret_after_stop web cat /srv/secret/key
kill $LISTENER 2>/dev/null

$SABPF audit verify $W/audit >$OUT/verify.txt 2>&1
echo "audit_verify rc=$? out=$(tr '\n' ' ' <$OUT/verify.txt)" >>"$RESULTS"
save_audit
$SABPF enforce --unload >/dev/null 2>&1
probe web_read_secret_unloaded web cat /srv/secret/key
exit 0
