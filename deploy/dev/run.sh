#!/usr/bin/env bash
# `make run`: the whole of Airlock on this machine, for trying it out.
# Brings up Postgres if none answers, creates both databases and a login per
# role, migrates, makes demo keys (demo passphrase, in a file), writes one
# complete env file per service (.dev/intake.env, transfer.env,
# clinical.env: the services run from them, and so can every command it
# prints), starts intake, transfer and clinical, and prints where to go.
# Ctrl-C stops everything. `make demo-reset` (--reset) drops both databases
# and .dev/ first, so the demo starts afresh.
# NOT a production setup: demo secrets live in .dev/ in plain files.
#
# Settings (for tests and a second copy): AIRLOCK_DEV_DIR (default .dev),
# AIRLOCK_DEV_BIN (bin), AIRLOCK_DEV_DB_PREFIX (airlock: databases
# airlock_intake and airlock_clinical), AIRLOCK_DEV_ROLE_PREFIX (airlock_dev:
# its logins), INTAKE_PORT (8443), CLINICAL_PORT (8444).
set -euo pipefail
cd "$(dirname "$0")/../.."

RESET=0
case "${1:-}" in
  --reset) RESET=1 ;;
  "") ;;
  *) echo "run.sh: unknown argument $1 (the only one is --reset)" >&2; exit 2 ;;
esac

DEV=${AIRLOCK_DEV_DIR:-.dev}
BIN=${AIRLOCK_DEV_BIN:-bin}
DBP=${AIRLOCK_DEV_DB_PREFIX:-airlock}
ROLEP=${AIRLOCK_DEV_ROLE_PREFIX:-airlock_dev}
ADMIN_URL=${AIRLOCK_DEV_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
INTAKE_PORT=${INTAKE_PORT:-8443}
CLINICAL_PORT=${CLINICAL_PORT:-8444}
DEMO_PASSPHRASE="airlock demo passphrase"
DEMO_EMAIL=admin@clinic.example
INTAKE_DB=${DBP}_intake
CLINICAL_DB=${DBP}_clinical

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$INTAKE_PORT" "$CLINICAL_PORT"; do
  if listening "$port"; then
    echo "run.sh: something listens on 127.0.0.1:$port already: stop the running \`make run\` (Ctrl-C) first, or set INTAKE_PORT/CLINICAL_PORT" >&2
    exit 1
  fi
done

# --- Postgres -------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  say "no Postgres on 127.0.0.1:5432; starting one"
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql
  fi
  ver=$(ls /etc/postgresql | sort -n | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

# psql_admin DB ARGS...: run SQL in DB as a superuser, over TCP with
# ADMIN_URL, else as the postgres OS user (a stock Debian cluster).
psql_admin() {
  local db=$1; shift
  if psql -w "$ADMIN_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    psql -w "${ADMIN_URL%%/postgres\?*}/$db?sslmode=disable" -v ON_ERROR_STOP=1 -qtA "$@"
  else
    as_root runuser -u postgres -- psql -d "$db" -v ON_ERROR_STOP=1 -qtA "$@"
  fi
}
db_url() { # db_url USER PASSWORD DB
  printf 'postgres://%s:%s@127.0.0.1:5432/%s?sslmode=disable' "$1" "$2" "$3"
}

if [ "$RESET" = 1 ]; then
  say "demo reset: dropping $INTAKE_DB, $CLINICAL_DB and $DEV/"
  for db in "$INTAKE_DB" "$CLINICAL_DB"; do
    psql_admin postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  done
  rm -rf "$DEV"
fi
mkdir -p "$DEV"
chmod 700 "$DEV"
DEV=$(cd "$DEV" && pwd) # absolute: the env files work from any directory
BIN=$(cd "$BIN" && pwd)

say "databases and logins"
for db in "$INTAKE_DB" "$CLINICAL_DB"; do
  if [ "$(psql_admin postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
    psql_admin postgres -c "CREATE DATABASE $db"
  fi
done
# The owner login runs migrations; one login per role runs the services.
[ -f "$DEV/db-password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DEV/db-password")
PW=$(cat "$DEV/db-password")
for user in "${ROLEP}_owner" "${ROLEP}_intake" "${ROLEP}_transfer" "${ROLEP}_clinical"; do
  psql_admin postgres -c "DO \$\$ BEGIN CREATE ROLE $user LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;" \
             -c "ALTER ROLE $user PASSWORD '$PW'"
done
# The owner runs migrations, which create the NOLOGIN roles: it needs CREATEROLE.
psql_admin postgres -c "ALTER DATABASE $INTAKE_DB OWNER TO ${ROLEP}_owner" \
           -c "ALTER DATABASE $CLINICAL_DB OWNER TO ${ROLEP}_owner" \
           -c "ALTER ROLE ${ROLEP}_owner CREATEROLE"

say "migrations"
INTAKE_DATABASE_URL=$(db_url "${ROLEP}_owner" "$PW" "$INTAKE_DB") "$BIN/intake" migrate
CLINICAL_DATABASE_URL=$(db_url "${ROLEP}_owner" "$PW" "$CLINICAL_DB") "$BIN/clinical" migrate
psql_admin postgres -c "GRANT airlock_intake_writer, airlock_intake_results TO ${ROLEP}_intake" \
           -c "GRANT airlock_intake_transfer, airlock_clinical_transfer TO ${ROLEP}_transfer" \
           -c "GRANT airlock_clinical_app TO ${ROLEP}_clinical"

say "demo keys (in $DEV/, demo passphrase: never do this in production)"
# The passphrase sits in a file, as a systemd credential or a secret mount
# would hold it (TRANSFER_PASSPHRASE_FILE), never in the environment.
[ -f "$DEV/passphrase" ] || (umask 077; printf '%s\n' "$DEMO_PASSPHRASE" > "$DEV/passphrase")
[ -f "$DEV/clinic.key" ] || TRANSFER_PASSPHRASE_FILE="$DEV/passphrase" "$BIN/transfer" keys new --out "$DEV/clinic.key" >/dev/null
[ -f "$DEV/row-key" ] || (umask 077; "$BIN/transfer" keys row-key > "$DEV/row-key")
[ -f "$DEV/clinical-secret-key" ] || (umask 077; "$BIN/clinical" secret-key > "$DEV/clinical-secret-key")

# --- one complete env file per service --------------------------------------
# KEY=value lines without quotes or spaces: `env $(cat F) CMD`, `set -a; . F`,
# systemd's EnvironmentFile= and `docker run --env-file` all read them.
write_env() { # write_env FILE KEY=VALUE...
  local file=$1; shift
  local kv
  for kv in "$@"; do
    case "$kv" in *[[:space:]]*) echo "run.sh: $file: ${kv%%=*} holds white space" >&2; exit 1 ;; esac
  done
  (umask 077; printf '%s\n' "$@" > "$file")
}
write_env "$DEV/intake.env" \
  INTAKE_DATABASE_URL="$(db_url "${ROLEP}_intake" "$PW" "$INTAKE_DB")" \
  INTAKE_ADDR="127.0.0.1:$INTAKE_PORT" INTAKE_PLAIN_HTTP=1 \
  INTAKE_RECIPIENTS="$("$BIN/transfer" keys show "$DEV/clinic.key")" \
  INTAKE_ROW_KEY_FILE="$DEV/row-key"
write_env "$DEV/transfer.env" \
  INTAKE_DATABASE_URL="$(db_url "${ROLEP}_transfer" "$PW" "$INTAKE_DB")" \
  CLINICAL_DATABASE_URL="$(db_url "${ROLEP}_transfer" "$PW" "$CLINICAL_DB")" \
  TRANSFER_KEYS="$DEV/clinic.key" TRANSFER_ROW_KEYS_FILE="$DEV/row-key" \
  TRANSFER_PASSPHRASE_FILE="$DEV/passphrase"
write_env "$DEV/clinical.env" \
  CLINICAL_DATABASE_URL="$(db_url "${ROLEP}_clinical" "$PW" "$CLINICAL_DB")" \
  CLINICAL_SECRET_KEY_FILE="$DEV/clinical-secret-key" \
  CLINICAL_ADDR="127.0.0.1:$CLINICAL_PORT" \
  CLINICAL_INTAKE_URL="http://127.0.0.1:$INTAKE_PORT"
envof() { cat "$DEV/$1.env"; }

# --- the demo admin ---------------------------------------------------------
# The demo admin also holds the clinician role so one account can see data;
# in production keep staff administration and data access apart. Its two
# enrolment codes work once: they are shown while they still work, and
# never again once used (or expired).
admin_state() { # none | enrolled | codes (both codes unused and unexpired) | spent
  psql_admin "$CLINICAL_DB" -c "SELECT CASE WHEN s.id IS NULL THEN 'none' WHEN s.totp_enrolled THEN 'enrolled'
    WHEN (SELECT count(*) FROM staff_enrolment_codes c WHERE c.staff_id = s.id AND c.expires_at > now()) = 2 THEN 'codes'
    ELSE 'spent' END FROM (SELECT 1) one LEFT JOIN staff s ON s.email = '$DEMO_EMAIL'"
}
state=$(admin_state)
if [ "$state" = none ]; then
  (umask 077; env $(envof clinical) "$BIN/clinical" staff add --email "$DEMO_EMAIL" --role admin,clinician > "$DEV/demo-admin.txt")
  state=codes
fi
if [ "$state" != codes ]; then
  rm -f "$DEV/demo-admin.txt" # spent codes are no use to anyone
fi

pids=()
stop() {
  trap - INT TERM EXIT
  say "stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

mkdir -p "$DEV/logs"
env $(envof intake) "$BIN/intake" serve 2> >(tee "$DEV/logs/intake.log" >&2) &
pids+=($!)
env $(envof transfer) TRANSFER_SCHEDULE="@every 10s" "$BIN/transfer" run 2> >(tee "$DEV/logs/transfer.log" >&2) &
pids+=($!)
env $(envof clinical) "$BIN/clinical" serve 2> >(tee "$DEV/logs/clinical.log" >&2) &
pids+=($!)

for port in "$INTAKE_PORT" "$CLINICAL_PORT"; do
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.2; done
done

case "$state" in
  codes) account="  Demo staff account ($DEMO_EMAIL: admin + clinician), not set up yet:
$(grep -E '^(create code|approve code|codes expire):' "$DEV/demo-admin.txt" | sed 's/^/    /')
    Set it up at http://127.0.0.1:$CLINICAL_PORT/enrol: the email and both codes, then scan the QR code
    with an authenticator app (FreeOTP, Aegis, ...), choose a password and type a code. The codes
    work once (they are also in $DEV/demo-admin.txt until then); afterwards log in at
    http://127.0.0.1:$CLINICAL_PORT/login." ;;
  enrolled) account="  Demo staff account: log in at http://127.0.0.1:$CLINICAL_PORT/login as $DEMO_EMAIL with the password
    and authenticator you chose. Lost them? \`make demo-reset\` starts the demo afresh." ;;
  *) account="  Demo staff account $DEMO_EMAIL: its enrolment codes are used or expired and it is not set up.
    \`make demo-reset\` starts the demo afresh, with new codes." ;;
esac

cat <<EOT

  Airlock is running (Ctrl-C stops everything).

  intake (public)     http://127.0.0.1:$INTAKE_PORT/            (forms for patients)
  intake JSON API     http://127.0.0.1:$INTAKE_PORT/api/v1/forms/new-patient
  clinical (staff)    http://127.0.0.1:$CLINICAL_PORT/
  logs                $DEV/logs/
  settings            $DEV/intake.env, transfer.env, clinical.env (complete: the services run from them)

$account

  Submit a sample:
    curl -sS -H 'Content-Type: application/json' -d '{"family-name":"Doe","given-name":"Jane","birth-date":"1990-04-01","sex-at-birth":"female","allergies":false,"consent":true}' http://127.0.0.1:$INTAKE_PORT/api/v1/forms/new-patient/submissions

  Check each service's settings:
    env \$(cat $DEV/intake.env) $BIN/intake check
    env \$(cat $DEV/transfer.env) $BIN/transfer check
    env \$(cat $DEV/clinical.env) $BIN/clinical check

  Queue state:
    env \$(cat $DEV/transfer.env) $BIN/transfer status

  Export what reached the clinic (FHIR NDJSON):
    env \$(cat $DEV/clinical.env) $BIN/clinical export --format ndjson

EOT
wait
