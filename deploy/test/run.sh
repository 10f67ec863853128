#!/usr/bin/env bash
# `make deploy-test`: Airlock's production topology on one machine, in Linux network namespaces,
# and proof of what it isolates. Needs root, iproute2, Postgres server binaries, haproxy, openssl,
# curl, python3.
#
# Networks (one bridge each, inside a switch namespace of their own, so the host's namespace takes
# no part; no namespace has a default route, none forwards):
#   public         10.213.1.0/24  pub (load balancer and the public client), intake-1, intake-2
#   intake-data    10.213.2.0/24  intake-db, intake-1, intake-2, transfer-1, transfer-2
#   clinical-data  10.213.3.0/24  clinical-db, transfer-1, transfer-2, clinical, backup
#   staff          10.213.4.0/24  clinical, staff (a staff browser)
# These are deploy/compose.yaml's networks; backup is the host that runs pg_dump.
#
# Proofs, one line each: every service's `check` in its own namespace with its production settings;
# /readyz through haproxy; each binary's `healthcheck`; the isolation of each side; a submission end
# to end; the audit log exported for a SIEM; a backup restored and its audit chain verified against
# the live head and the SIEM copy's last entry.
#
# DEPLOY_TEST_LEAK="ns:network ..." attaches a namespace to a network it must not be on (a route
# it should not have), such as intake-1:clinical-data; the isolation lines must then fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

fail() { echo "deploy-test: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (network namespaces)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || fail "no Postgres server binaries under /usr/lib/postgresql (apt-get install postgresql)"
for c in ip haproxy openssl curl runuser python3; do
  command -v "$c" >/dev/null || fail "$c is not installed (.ci/run installs it)"
done
id postgres >/dev/null 2>&1 || fail "no postgres user to run the database servers as"

id=$(printf '%04x' $((RANDOM % 65536)))
T=$(mktemp -d /tmp/airlock-deploy-test.XXXXXX)
chmod 711 "$T"
start=$SECONDS
namespaces=()
passed=0 failed=0

# --- clean-up, also on failure ------------------------------------------------------------
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
    [ "$failed" -ne 0 ] || echo "deploy-test: stopped with exit code $rc" >&2
    for f in "$T"/log/*.log; do
      [ -s "$f" ] && [ "${f%-initdb.log}" = "$f" ] || continue
      echo "--- last lines of ${f##*/}"; tail -n 15 "$f"
    done
  fi
  # Every process in our namespaces is one this script started: stop them, then the namespaces
  # (deleting a namespace removes its veth ends, their peers and its bridges).
  local ns pids
  for ns in "${namespaces[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    pids=
    for ns in "${namespaces[@]}"; do pids+=$(ip netns pids "$ns" 2>/dev/null || true); done
    [ -z "$pids" ] && break
    sleep 0.1
  done
  for ns in "${namespaces[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  local left
  left=$(ip netns list | grep -c "^al$id-" || true)
  [ "$left" -eq 0 ] || echo "deploy-test: $left namespace(s) al$id-* could not be removed" >&2
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # check DESCRIPTION CMD...: one line per proof
  if "$@" >"$T/check.out" 2>&1; then
    echo "ok    $desc"; passed=$((passed + 1))
  else
    echo "FAIL  $desc"; sed 's/^/      /' "$T/check.out"; failed=$((failed + 1))
  fi
}

# --- namespaces and networks ----------------------------------------------------------------
sw=al$id-sw
in_ns() { local ns=al$id-$1; shift; ip netns exec "$ns" "$@"; }
new_ns() {
  local ns=al$id-$1
  ip netns add "$ns"
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
  # A host on two networks must never route between them.
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1
}
declare -A net_prefix=([public]=10.213.1 [intake-data]=10.213.2 [clinical-data]=10.213.3 [staff]=10.213.4)
declare -A net_bridge=([public]=brpub [intake-data]=brint [clinical-data]=brcli [staff]=brstf)
nport=0
attach() { # attach NS NETWORK HOST-NUMBER
  local ns=al$id-$1 net=$2 host=$3
  nport=$((nport + 1))
  local ifname=${net_bridge[$net]#br}0 port=p$nport
  ip link add "$ifname" netns "$ns" type veth peer name "$port" netns "$sw"
  ip -n "$sw" link set "$port" master "${net_bridge[$net]}" up
  ip -n "$ns" addr add "${net_prefix[$net]}.$host/24" dev "$ifname"
  ip -n "$ns" link set "$ifname" up
}
namespaces+=("$sw")
ip netns add "$sw"
ip -n "$sw" link set lo up
for net in "${!net_bridge[@]}"; do
  ip -n "$sw" link add "${net_bridge[$net]}" type bridge
  ip -n "$sw" link set "${net_bridge[$net]}" up
done

declare -A host_of=([pub]=2 [intake-1]=11 [intake-2]=12 [transfer-1]=21 [transfer-2]=22
  [clinical]=31 [backup]=40 [staff]=100 [intake-db]=2 [clinical-db]=2)
declare -A nets_of=(
  [pub]="public"
  [intake-db]="intake-data"
  [clinical-db]="clinical-data"
  [intake-1]="public intake-data"
  [intake-2]="public intake-data"
  [transfer-1]="intake-data clinical-data"
  [transfer-2]="intake-data clinical-data"
  [clinical]="clinical-data staff"
  [staff]="staff"
  [backup]="clinical-data"
)
for ns in "${!nets_of[@]}"; do
  new_ns "$ns"
  for net in ${nets_of[$ns]}; do attach "$ns" "$net" "${host_of[$ns]}"; done
done
for leak in ${DEPLOY_TEST_LEAK:-}; do
  [ -n "${nets_of[${leak%%:*}]:-}" ] && [ -n "${net_bridge[${leak#*:}]:-}" ] ||
    fail "DEPLOY_TEST_LEAK: $leak is not host:network (hosts: ${!nets_of[*]}; networks: ${!net_bridge[*]})"
  echo "deploy-test: DEPLOY_TEST_LEAK attaches ${leak%%:*} to ${leak#*:}, a network it must not be on"
  attach "${leak%%:*}" "${leak#*:}" $((200 + nport))
done

LB=10.213.1.2 INTAKE1=10.213.1.11 INTAKE2=10.213.1.12
INTAKE_DB=10.213.2.2 CLINICAL_DB=10.213.3.2 CLINICAL=10.213.4.31

# --- binaries and secrets (deploy/secrets.sh, as for compose) --------------------------------
mkdir -p "$T/bin" "$T/log"
go build -o "$T/bin/" ./intake/cmd/intake ./transfer/cmd/transfer ./clinical/cmd/clinical
S=$T/secrets
AIRLOCK_BIN=$T/bin INTAKE_DB_HOST=$INTAKE_DB CLINICAL_DB_HOST=$CLINICAL_DB AIRLOCK_ENV_FILE=$T/env \
  INTAKE_TLS_NAMES="IP:$LB" CLINICAL_TLS_NAMES="IP:$CLINICAL" \
  deploy/secrets.sh "$S" >/dev/null 2>"$T/log/secrets.log"
echo "deploy-test: binaries built, secrets made by deploy/secrets.sh ($((SECONDS - start))s)"
# shellcheck disable=SC1091
. "$T/env" # INTAKE_RECIPIENTS

# --- Postgres servers: a cluster each, as user postgres, in their own namespace -------------
pg_server() { # pg_server NAME NS LISTEN PASSWORD-FILE
  local name=$1 ns=$2 listen=$3 d=$T/pg/$1
  mkdir -p "$d"
  install -m 600 -o postgres "$4" "$d.pw"
  chown postgres "$d"
  chmod 700 "$d"
  runuser -u postgres -- "$pgbin/initdb" -D "$d/data" -U postgres --pwfile="$d.pw" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$T/log/$name-initdb.log"
  echo "host all all 10.213.0.0/16 scram-sha-256" >>"$d/data/pg_hba.conf"
  in_ns "$ns" runuser -u postgres -- "$pgbin/postgres" -D "$d/data" -c "listen_addresses=$listen" \
    -c port=5432 -c unix_socket_directories="$d" -c max_connections=60 -c shared_buffers=16MB -c fsync=off \
    >"$T/log/$name.log" 2>&1 &
}
pg_ready() { # pg_ready NS HOST
  for _ in $(seq 1 100); do in_ns "$1" "$pgbin/pg_isready" -q -h "$2" -p 5432 && return 0; sleep 0.2; done
  fail "Postgres at $2 did not start"
}
mkdir -p "$T/pg" && chmod 711 "$T/pg"
pg_server intake-db intake-db "127.0.0.1,$INTAKE_DB" "$S/intake-db-password" &
pg_server clinical-db clinical-db "127.0.0.1,$CLINICAL_DB" "$S/clinical-db-password" &
wait
pg_ready intake-db 127.0.0.1
pg_ready clinical-db 127.0.0.1
echo "deploy-test: two Postgres servers up ($((SECONDS - start))s)"

psql_as() { # psql_as NS PASSWORD-FILE [psql args]: as the superuser, on the namespace's loopback
  local ns=$1 pw=$2; shift 2
  PGPASSWORD=$(cat "$pw") in_ns "$ns" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres "$@"
}
psql_as intake-db "$S/intake-db-password" -d postgres -c "CREATE DATABASE airlock_intake"
psql_as clinical-db "$S/clinical-db-password" -d postgres -c "CREATE DATABASE airlock_clinical"

# Migrations from a host on each data network, then the service logins (deploy/logins.sh, as compose).
in_ns intake-1 env INTAKE_DATABASE_URL_FILE="$S/intake-owner-url" "$T/bin/intake" migrate 2>>"$T/log/migrate.log"
in_ns clinical env CLINICAL_DATABASE_URL_FILE="$S/clinical-owner-url" "$T/bin/clinical" migrate 2>>"$T/log/migrate.log"
in_ns intake-db env PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=airlock_intake PGPASSWORD_FILE="$S/intake-db-password" \
  LOGINS="intake_web:airlock_intake_writer:$S/intake-web-password intake_web:airlock_intake_results:$S/intake-web-password transfer_i:airlock_intake_transfer:$S/transfer-i-password" \
  sh deploy/logins.sh >>"$T/log/logins.log"
in_ns clinical-db env PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=airlock_clinical PGPASSWORD_FILE="$S/clinical-db-password" \
  LOGINS="clinical_web:airlock_clinical_app:$S/clinical-web-password transfer_c:airlock_clinical_transfer:$S/transfer-c-password" \
  sh deploy/logins.sh >>"$T/log/logins.log"

# --- the services ---------------------------------------------------------------------------
# Each service's settings, as serve/run get them and as `check` gets them below.
intake_env=(INTAKE_DATABASE_URL_FILE="$S/intake-writer-url" INTAKE_PLAIN_HTTP=1 INTAKE_TRUSTED_PROXIES=$LB
  INTAKE_RECIPIENTS="$INTAKE_RECIPIENTS" INTAKE_ROW_KEY_FILE="$S/intake-row-key" INTAKE_METRICS_ADDR=127.0.0.1:9101)
transfer_env=(INTAKE_DATABASE_URL_FILE="$S/intake-transfer-url" CLINICAL_DATABASE_URL_FILE="$S/clinical-transfer-url"
  TRANSFER_KEYS="$S/clinic-key.json" TRANSFER_PASSPHRASE_FILE="$S/transfer-passphrase"
  TRANSFER_ROW_KEYS_FILE="$S/intake-row-key" TRANSFER_SCHEDULE="@every 2s" TRANSFER_METRICS_ADDR=127.0.0.1:9464)
clinical_env=(CLINICAL_DATABASE_URL_FILE="$S/clinical-app-url" CLINICAL_SECRET_KEY_FILE="$S/clinical-secret-key")
clinical_serve_env=("${clinical_env[@]}" CLINICAL_ADDR="$CLINICAL:8444" CLINICAL_TLS_CERT="$S/clinical.crt"
  CLINICAL_TLS_KEY="$S/clinical.key" CLINICAL_METRICS_ADDR=127.0.0.1:9102)
for n in 1 2; do
  in_ns "intake-$n" env "${intake_env[@]}" INTAKE_ADDR="10.213.1.1$n:8080" \
    "$T/bin/intake" serve >"$T/log/intake-$n.log" 2>&1 &
  in_ns "transfer-$n" env "${transfer_env[@]}" "$T/bin/transfer" run >"$T/log/transfer-$n.log" 2>&1 &
done
in_ns clinical env "${clinical_serve_env[@]}" "$T/bin/clinical" serve >"$T/log/clinical.log" 2>&1 &

# The load balancer: TLS ends here, X-Forwarded-For appended, round robin over both replicas.
cat "$S/intake.crt" "$S/intake.key" >"$T/lb.pem"
cat >"$T/haproxy.cfg" <<EOF
global
  maxconn 256
defaults
  mode http
  timeout connect 5s
  timeout client 2m
  timeout server 2m
frontend public
  bind $LB:8443 ssl crt $T/lb.pem
  option forwardfor
  default_backend intake
backend intake
  balance roundrobin
  option httpchk GET /readyz
  server intake-1 $INTAKE1:8080 check inter 500ms rise 1
  server intake-2 $INTAKE2:8080 check inter 500ms rise 1
EOF
in_ns pub haproxy -f "$T/haproxy.cfg" -db >"$T/log/haproxy.log" 2>&1 &

wait_http() { # wait_http NS URL [curl args]
  local ns=$1 url=$2; shift 2
  for _ in $(seq 1 150); do
    in_ns "$ns" curl -fsS -m 2 -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "$url did not answer from $ns"
}
wait_http pub "http://$INTAKE1:8080/healthz"
wait_http pub "http://$INTAKE2:8080/healthz"
wait_http staff "https://$CLINICAL:8444/healthz" --cacert "$S/clinical.crt"
for n in 1 2; do wait_http "transfer-$n" http://127.0.0.1:9464/readyz; done
sleep 1.2 # two haproxy health checks: both replicas up
wait_http pub "https://$LB:8443/readyz" --cacert "$S/intake.crt"
echo "deploy-test: topology up in $((SECONDS - start))s (namespaces al$id-*, Postgres ${pgbin#/usr/lib/postgresql/}, haproxy)"

# --- proofs -----------------------------------------------------------------------------------
# own_check HOST PROGRAM ENV...: `PROGRAM check` in HOST's namespace with the service's settings
# (its own database logins, secrets and keys) exits 0; prints its ok lines.
own_check() {
  local host=$1 prog=$2 rc=0; shift 2
  in_ns "$host" env "$@" "$T/bin/$prog" check >"$T/own-check.out" 2>&1 || rc=$?
  sed "s/^/$host: /" "$T/own-check.out"
  [ "$rc" -eq 0 ] || { echo "$host: $prog check exited $rc"; return 1; }
  echo "$host: $prog check exited 0 ($(grep -c '^ok' "$T/own-check.out") checks)"
}
intake_checks() {
  own_check intake-1 intake "${intake_env[@]}" INTAKE_ADDR=$INTAKE1:8080 &&
    own_check intake-2 intake "${intake_env[@]}" INTAKE_ADDR=$INTAKE2:8080
}
transfer_checks() {
  own_check transfer-1 transfer "${transfer_env[@]}" && own_check transfer-2 transfer "${transfer_env[@]}"
}
clinical_checks() { own_check clinical clinical "${clinical_serve_env[@]}"; }
desc="intake check exits 0 in intake-1 and intake-2 (settings; its login reaches the intake database, schema version, grants)"
check intake_checks
desc="transfer check exits 0 in transfer-1 and transfer-2 (both logins, schema versions, grants; the keys unlock)"
check transfer_checks
desc="clinical check exits 0 in clinical (settings; its login reaches the clinical database, schema version, grants)"
check clinical_checks

# /readyz through the load balancer (each request to the next replica), and clinical's from staff.
readyz() {
  local n code
  for n in 1 2; do
    code=$(in_ns pub curl -sS -m 5 -o "$T/readyz.out" -w '%{http_code}' --cacert "$S/intake.crt" "https://$LB:8443/readyz")
    echo "GET https://$LB:8443/readyz from pub (request $n): HTTP $code $(head -c 200 "$T/readyz.out")"
    [ "$code" = 200 ] && grep -q '"status":"ok"' "$T/readyz.out" || return 1
  done
  code=$(in_ns staff curl -sS -m 5 -o "$T/readyz.out" -w '%{http_code}' --cacert "$S/clinical.crt" "https://$CLINICAL:8444/readyz")
  echo "GET https://$CLINICAL:8444/readyz from staff: HTTP $code $(head -c 200 "$T/readyz.out")"
  [ "$code" = 200 ]
}
desc="/readyz answers 200 through haproxy from the public side (both replicas), and clinical's from staff"
check readyz

# The container healthcheck (deploy/compose.yaml): each binary's own `healthcheck`, GET /readyz on
# its metrics listener, in its namespace.
healthchecks() {
  local host prog
  for host in intake-1 intake-2 transfer-1 transfer-2 clinical; do
    prog=${host%-[12]}
    in_ns "$host" env INTAKE_METRICS_ADDR=127.0.0.1:9101 TRANSFER_METRICS_ADDR=127.0.0.1:9464 \
      CLINICAL_METRICS_ADDR=127.0.0.1:9102 "$T/bin/$prog" healthcheck | sed "s/^/$host: $prog healthcheck: /"
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "$host: $prog healthcheck failed"; return 1; }
  done
}
desc="each service's own healthcheck subcommand (compose's) exits 0 in its namespace"
check healthchecks

# connects NS HOST PORT: a TCP connection from NS opens (3 s at most).
connects() { in_ns "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
# isolated NS ALLOWED... -- DENIED...: every ALLOWED host:port opens from NS, no DENIED one does.
isolated() {
  local ns=$1 bad=0 t; shift
  while [ "$1" != -- ]; do
    if connects "$ns" "${1%:*}" "${1#*:}"; then echo "$ns reaches $1 (as it must)"
    else echo "$ns cannot reach $1, which it needs"; bad=1; fi
    shift
  done
  shift
  for t in "$@"; do
    if connects "$ns" "${t%:*}" "${t#*:}"; then echo "$ns opened a connection to $t"; bad=1; fi
  done
  [ "$(in_ns "$ns" sysctl -n net.ipv4.ip_forward)" = 0 ] || { echo "$ns forwards packets"; bad=1; }
  return $bad
}
all_dbs="$INTAKE_DB:5432 $CLINICAL_DB:5432"
services="$CLINICAL:8444 10.213.3.31:8444 10.213.2.21:9464 10.213.3.21:9464"

intake_side() {
  isolated intake-1 $INTAKE_DB:5432 -- $CLINICAL_DB:5432 $services &&
    isolated intake-2 $INTAKE_DB:5432 -- $CLINICAL_DB:5432 $services
}
clinical_side() { isolated clinical $CLINICAL_DB:5432 -- $INTAKE_DB:5432 $INTAKE1:8080 10.213.2.11:8080 $LB:8443; }
public_side() {
  isolated pub $LB:8443 $INTAKE1:8080 $INTAKE2:8080 -- $all_dbs $services 10.213.2.11:8080 &&
    isolated staff $CLINICAL:8444 -- $all_dbs $LB:8443 $INTAKE1:8080
}
transfer_side() {
  isolated transfer-1 $all_dbs -- $LB:8443 $INTAKE1:8080 $CLINICAL:8444 &&
    isolated transfer-2 $all_dbs -- $LB:8443 $INTAKE1:8080 $CLINICAL:8444
}
desc="intake cannot open a connection to the clinical database (both replicas; each reaches its own)"
check intake_side
desc="clinical cannot reach the intake database (it reaches the clinical database)"
check clinical_side
desc="the public side reaches intake only (load balancer and replicas; no database, not clinical, not transfer)"
check public_side
desc="transfer reaches both databases and forwards nothing between them"
check transfer_side

# End to end: POST through the load balancer, transfer moves it, `clinical export` shows it.
e2e() {
  local n marker=Deploytest$id code
  for n in 1 2 3 4; do
    code=$(in_ns pub curl -sS -m 10 -o "$T/post.out" -w '%{http_code}' --cacert "$S/intake.crt" \
      -H 'Content-Type: application/json' \
      -d "{\"family-name\":\"$marker$n\",\"given-name\":\"Jane\",\"birth-date\":\"1990-04-01\",\"sex-at-birth\":\"female\",\"allergies\":false,\"consent\":true}" \
      "https://$LB:8443/api/v1/forms/new-patient/submissions")
    [ "$code" = 201 ] || { echo "POST $n through the load balancer: HTTP $code: $(head -c 300 "$T/post.out")"; return 1; }
  done
  echo "4 submissions accepted through the load balancer"
  for n in 1 2; do
    local took
    took=$(in_ns "intake-$n" curl -fsS -m 5 http://127.0.0.1:9101/metrics |
      awk '/^airlock_intake_submissions_total\{/ && /status="201"/ {s += $2} END {print s + 0}')
    echo "intake-$n took $took of them"
    [ "$took" -ge 1 ] || { echo "intake-$n took none: the load balancer did not spread them"; return 1; }
  done
  local got=0
  for _ in $(seq 1 60); do
    in_ns clinical env "${clinical_env[@]}" "$T/bin/clinical" export --format ndjson >"$T/export.ndjson" 2>>"$T/log/export.log"
    got=$(grep -c "$marker" "$T/export.ndjson" || true)
    [ "$got" -ge 4 ] && break
    sleep 1
  done
  echo "clinical export holds $got of the 4, $(wc -l <"$T/export.ndjson") line(s) in all"
  [ "$got" -eq 4 ] && [ "$(wc -l <"$T/export.ndjson")" -eq 4 ] || return 1
  for n in 1 2 3 4; do grep -q "\"$marker$n\"" "$T/export.ndjson" || { echo "$marker$n missing"; return 1; }; done
  for n in 1 2; do
    [ -n "$(ip netns pids "al$id-transfer-$n")" ] || { echo "transfer-$n is not running"; return 1; }
  done
  echo "both transfer workers still running; no submission delivered twice"
}
desc="a submission flows end to end: POST to the load balancer, both intake replicas, transfer, clinical export"
check e2e

# The audit log shipped to a SIEM: `clinical audit export` in clinical's namespace, as its login.
siem_head=
siem_export() {
  in_ns clinical env "${clinical_env[@]}" "$T/bin/clinical" audit export --format ndjson \
    >"$T/audit.ndjson" 2>>"$T/log/audit-export.log" || { echo "clinical audit export failed"; return 1; }
  siem_head=$(python3 - "$T/audit.ndjson" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
cols = ["action", "actor", "at", "detail", "id", "mac", "seq", "target"]
bad = [l for l in lines if sorted(l) != cols or not isinstance(l["detail"], dict)]
if not lines or bad or lines[-1]["action"] != "audit.export":
    sys.exit(f"{len(lines)} lines, {len(bad)} not the stored columns, last {lines[-1:]}")
print(f'{lines[-1]["id"]}:{lines[-1]["mac"]}')
PY
  ) || { echo "$siem_head"; return 1; }
  echo "$(wc -l <"$T/audit.ndjson") entries, each a JSON object of the stored columns; the last is the export's own, $siem_head"
  if grep -q "Deploytest$id" "$T/audit.ndjson"; then echo "patient data in the audit export"; return 1; fi
  echo "actions: $(python3 -c 'import json,sys,collections; print(dict(collections.Counter(json.loads(l)["action"] for l in open(sys.argv[1]))))' "$T/audit.ndjson")"
}
desc="clinical audit export streams the audit log for a SIEM (stored columns only, no patient data, itself audited)"
check siem_export

# Backup: pg_dump from the backup host, restore into a fresh server, `clinical audit verify` there.
restore() {
  local head
  head=$(in_ns clinical env "${clinical_env[@]}" "$T/bin/clinical" audit verify) || { echo "$head"; return 1; }
  echo "live: $head"
  head=$(sed -n 's/.*, head \([^,]*\).*/\1/p' <<<"$head")
  [ -n "$head" ] || { echo "no audit head on the live database"; return 1; }
  local pw=$S/clinical-db-password
  PGPASSWORD=$(cat "$pw") in_ns backup "$pgbin/pg_dumpall" -h "$CLINICAL_DB" -U postgres --roles-only -f "$T/roles.sql"
  PGPASSWORD=$(cat "$pw") in_ns backup "$pgbin/pg_dump" -h "$CLINICAL_DB" -U postgres -Fc -d airlock_clinical -f "$T/clinical.dump"
  echo "pg_dump: $(stat -c %s "$T/clinical.dump") bytes"
  # A fresh server on the backup host's loopback, restored from the dump alone.
  pg_server restored backup 127.0.0.1 "$pw"
  pg_ready backup 127.0.0.1
  grep -v -e '^CREATE ROLE postgres;' -e '^ALTER ROLE postgres ' "$T/roles.sql" | psql_as backup "$pw" -d postgres >/dev/null
  psql_as backup "$pw" -d postgres -c "CREATE DATABASE airlock_clinical"
  PGPASSWORD=$(cat "$pw") in_ns backup "$pgbin/pg_restore" -h 127.0.0.1 -U postgres -d airlock_clinical --exit-on-error "$T/clinical.dump"
  local url
  url=$(sed "s/@$CLINICAL_DB:/@127.0.0.1:/" "$S/clinical-app-url")
  in_ns backup env CLINICAL_DATABASE_URL="$url" CLINICAL_SECRET_KEY_FILE="$S/clinical-secret-key" \
    "$T/bin/clinical" audit verify --head "$head" ${siem_head:+--head "$siem_head"} || return 1
  in_ns backup env CLINICAL_DATABASE_URL="$url" CLINICAL_SECRET_KEY_FILE="$S/clinical-secret-key" \
    "$T/bin/clinical" export --format ndjson 2>/dev/null | grep -c "Deploytest$id" | sed 's/$/ submissions in the restored export/'
}
desc="a pg_dump of the clinical database restores into a fresh server and clinical audit verify passes there"
check restore

echo "deploy-test: $passed passed, $failed failed ($((SECONDS - start))s)"
[ "$failed" -eq 0 ]
