#!/usr/bin/env bash
# `make run`: the whole of Airlock on this machine, for trying it out.
# Brings up Postgres if none answers, creates both databases and a login per
# role, migrates, makes demo keys (demo passphrase!), starts intake, transfer
# and clinical, and prints where to go. Ctrl-C stops everything.
# NOT a production setup: demo secrets live in .dev/ in plain files.
set -euo pipefail
cd "$(dirname "$0")/../.."

DEV=.dev
BIN=bin
ADMIN_URL=${AIRLOCK_DEV_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
INTAKE_PORT=${INTAKE_PORT:-8443}
CLINICAL_PORT=${CLINICAL_PORT:-8444}
DEMO_PASSPHRASE="airlock demo passphrase"
mkdir -p "$DEV"
chmod 700 "$DEV"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

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

say "databases and logins"
for db in airlock_intake airlock_clinical; do
  if [ "$(psql_admin postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
    psql_admin postgres -c "CREATE DATABASE $db"
  fi
done
# The owner login runs migrations; one login per role runs the services.
[ -f "$DEV/db-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DEV/db-password"
PW=$(cat "$DEV/db-password")
for user in airlock_dev_owner airlock_dev_intake airlock_dev_transfer airlock_dev_clinical; do
  psql_admin postgres -c "DO \$\$ BEGIN CREATE ROLE $user LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;" \
             -c "ALTER ROLE $user PASSWORD '$PW'"
done
# The owner runs migrations, which create the NOLOGIN roles: it needs CREATEROLE.
psql_admin postgres -c "ALTER DATABASE airlock_intake OWNER TO airlock_dev_owner" \
           -c "ALTER DATABASE airlock_clinical OWNER TO airlock_dev_owner" \
           -c "ALTER ROLE airlock_dev_owner CREATEROLE"

say "migrations"
INTAKE_DATABASE_URL=$(db_url airlock_dev_owner "$PW" airlock_intake) "$BIN/intake" migrate
CLINICAL_DATABASE_URL=$(db_url airlock_dev_owner "$PW" airlock_clinical) "$BIN/clinical" migrate
psql_admin postgres -c "GRANT airlock_intake_writer, airlock_intake_results TO airlock_dev_intake" \
           -c "GRANT airlock_intake_transfer, airlock_clinical_transfer TO airlock_dev_transfer" \
           -c "GRANT airlock_clinical_app TO airlock_dev_clinical"

say "demo keys (in $DEV/, demo passphrase: never do this in production)"
export TRANSFER_PASSPHRASE="$DEMO_PASSPHRASE"
[ -f "$DEV/clinic.key" ] || "$BIN/transfer" keys new --out "$DEV/clinic.key" >/dev/null
[ -f "$DEV/row-key" ] || { umask 077; "$BIN/transfer" keys row-key > "$DEV/row-key"; }
[ -f "$DEV/clinical-secret-key" ] || { umask 077; "$BIN/clinical" secret-key > "$DEV/clinical-secret-key"; }

export INTAKE_DATABASE_URL_DEV=$(db_url airlock_dev_intake "$PW" airlock_intake)
pids=()
stop() {
  trap - INT TERM EXIT
  say "stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

mkdir -p "$DEV/logs"
INTAKE_DATABASE_URL=$INTAKE_DATABASE_URL_DEV \
INTAKE_ADDR=127.0.0.1:$INTAKE_PORT INTAKE_PLAIN_HTTP=1 \
INTAKE_RECIPIENTS=$("$BIN/transfer" keys show "$DEV/clinic.key") \
INTAKE_ROW_KEY_FILE=$DEV/row-key \
  "$BIN/intake" serve 2> >(tee "$DEV/logs/intake.log" >&2) &
pids+=($!)

export INTAKE_DATABASE_URL=$(db_url airlock_dev_transfer "$PW" airlock_intake)
export CLINICAL_DATABASE_URL_TRANSFER=$(db_url airlock_dev_transfer "$PW" airlock_clinical)
transfer_env=(INTAKE_DATABASE_URL="$INTAKE_DATABASE_URL" CLINICAL_DATABASE_URL="$CLINICAL_DATABASE_URL_TRANSFER"
  TRANSFER_KEYS="$DEV/clinic.key" TRANSFER_ROW_KEYS_FILE="$DEV/row-key" TRANSFER_SCHEDULE="@every 10s")
env "${transfer_env[@]}" "$BIN/transfer" run 2> >(tee "$DEV/logs/transfer.log" >&2) &
pids+=($!)

CLINICAL_APP_URL=$(db_url airlock_dev_clinical "$PW" airlock_clinical)
clinical_env=(CLINICAL_DATABASE_URL="$CLINICAL_APP_URL" CLINICAL_SECRET_KEY_FILE="$DEV/clinical-secret-key"
  CLINICAL_ADDR="127.0.0.1:$CLINICAL_PORT")
# The demo admin also holds the clinician role so one account can see data;
# in production keep staff administration and data access apart.
if [ ! -f "$DEV/demo-admin.txt" ]; then
  (umask 077; env "${clinical_env[@]}" "$BIN/clinical" staff add --email admin@clinic.example --role admin,clinician > "$DEV/demo-admin.txt") ||
    echo "admin@clinic.example exists already in airlock_clinical; its enrolment codes were shown when it was made" > "$DEV/demo-admin.txt"
fi
env "${clinical_env[@]}" "$BIN/clinical" serve 2> >(tee "$DEV/logs/clinical.log" >&2) &
pids+=($!)

printf '%s\n' "${transfer_env[@]}" | grep -v SCHEDULE > "$DEV/transfer.env"
printf '%s\n' "${clinical_env[@]}" > "$DEV/clinical.env"

for _ in $(seq 1 50); do curl -fsS -o /dev/null "http://127.0.0.1:$INTAKE_PORT/healthz" 2>/dev/null && break; sleep 0.2; done

cat <<EOT

  Airlock is running (Ctrl-C stops everything).

  intake (public)     http://127.0.0.1:$INTAKE_PORT/            (forms for patients)
  intake JSON API     http://127.0.0.1:$INTAKE_PORT/api/v1/forms/new-patient
  clinical (staff)    http://127.0.0.1:$CLINICAL_PORT/
  logs                $DEV/logs/

  Demo staff account (admin + clinician; saved in $DEV/demo-admin.txt):
$(sed 's/^/    /' "$DEV/demo-admin.txt")
    Enrol it at http://127.0.0.1:$CLINICAL_PORT/enrol: the email and both codes, then scan the QR
    code with an authenticator app (FreeOTP, Aegis, ...), choose a password and type a code.
    Afterwards log in at http://127.0.0.1:$CLINICAL_PORT/login.

  Submit a sample:
    curl -sS -H 'Content-Type: application/json' \\
      -d '{"family-name":"Doe","given-name":"Jane","birth-date":"1990-04-01","sex-at-birth":"female","allergies":false,"consent":true}' \\
      http://127.0.0.1:$INTAKE_PORT/api/v1/forms/new-patient/submissions

  Queue state:
    env \$(cat $DEV/transfer.env) $BIN/transfer status

  Export what reached the clinic (FHIR NDJSON):
    env \$(cat $DEV/clinical.env) $BIN/clinical export --format ndjson

EOT
wait
