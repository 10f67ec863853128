#!/usr/bin/env bash
# deploy/secrets.sh [DIR]: makes every secret file deploy/compose.yaml names, in DIR (default
# deploy/secrets), and the non-secret deploy/.env beside compose.yaml. Files that exist are kept,
# so running it again only fills gaps; nothing is ever overwritten or printed.
#
# Keys come from the binaries' own commands (`transfer keys new`, `transfer keys row-key`,
# `clinical secret-key`); passwords are 32 random letters and digits. Every file is mode 0600 in a
# 0700 directory (umask 077). Run as root, it hands each file to the container user that reads it
# (uid 999 for the postgres image, 65532 for the distroless nonroot user), because compose bind-mounts
# file secrets with their host owner and mode.
#
# Settings (environment):
#   AIRLOCK_BIN        directory holding intake, transfer and clinical (default: bin/ of this
#                      repository if built, else the PATH)
#   INTAKE_DB_HOST, CLINICAL_DB_HOST   database host names in the URLs (default intake-db,
#                      clinical-db: the compose service names)
#   INTAKE_TLS_NAMES, CLINICAL_TLS_NAMES   subjectAltName of the self-signed certificates made
#                      when no intake.crt/clinical.crt is there (default DNS:localhost,IP:127.0.0.1);
#                      replace them with your own certificates for real use
#   AIRLOCK_ENV_FILE   where INTAKE_RECIPIENTS is written (default deploy/.env, kept if it exists)
set -euo pipefail
umask 077

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/secrets}
env_file=${AIRLOCK_ENV_FILE:-$here/.env}
if [ -n "${AIRLOCK_BIN:-}" ]; then
  bin=$AIRLOCK_BIN/
elif [ -x "$here/../bin/transfer" ]; then
  bin=$here/../bin/
else
  bin=
fi
for b in transfer clinical; do
  if ! command -v "${bin}$b" >/dev/null 2>&1; then
    echo "secrets.sh: ${bin}$b not found: run \`make build\` or set AIRLOCK_BIN" >&2
    exit 2
  fi
done
intake_host=${INTAKE_DB_HOST:-intake-db}
clinical_host=${CLINICAL_DB_HOST:-clinical-db}

mkdir -p "$dir"
chmod 700 "$dir"

# put NAME CMD...: run CMD, its standard output becomes NAME (through a temporary file, so a
# failing command leaves nothing half-written). An existing NAME is kept.
made=0
put() {
  local name=$1; shift
  [ -e "$dir/$name" ] && return 0
  "$@" > "$dir/.$name.tmp"
  mv "$dir/.$name.tmp" "$dir/$name"
  made=$((made + 1))
}
password() {
  local p
  p=$(head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
  printf '%s' "${p:0:32}"
}
url() { # url USER PASSWORD-FILE HOST DB
  printf 'postgres://%s:%s@%s:5432/%s?sslmode=disable' "$1" "$(cat "$dir/$2")" "$3" "$4"
}

# Database superusers (the postgres image's POSTGRES_PASSWORD_FILE) and one login per service.
for p in intake-db-password clinical-db-password intake-web-password transfer-i-password \
         clinical-web-password transfer-c-password transfer-passphrase; do
  put "$p" password
done
# Migrations run as each database's owner; the services as their own logins (deploy/logins.sh).
put intake-owner-url      url postgres     intake-db-password    "$intake_host"   airlock_intake
put clinical-owner-url    url postgres     clinical-db-password  "$clinical_host" airlock_clinical
put intake-writer-url     url intake_web   intake-web-password   "$intake_host"   airlock_intake
put intake-transfer-url   url transfer_i   transfer-i-password   "$intake_host"   airlock_intake
put clinical-transfer-url url transfer_c   transfer-c-password   "$clinical_host" airlock_clinical
put clinical-app-url      url clinical_web clinical-web-password "$clinical_host" airlock_clinical

put intake-row-key      "${bin}transfer" keys row-key
put clinical-secret-key "${bin}clinical" secret-key
if [ ! -e "$dir/clinic-key.json" ]; then
  TRANSFER_PASSPHRASE_FILE=$dir/transfer-passphrase "${bin}transfer" keys new --out "$dir/clinic-key.json" >/dev/null
  made=$((made + 1))
fi

# TLS: self-signed certificates only where none was put in place.
cert() { # cert NAME SAN
  [ -e "$dir/$1.crt" ] && return 0
  if ! command -v openssl >/dev/null 2>&1; then
    echo "secrets.sh: put $1.crt and $1.key (PEM) into $dir: openssl is not installed to make self-signed ones" >&2
    return 0
  fi
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -sha256 \
    -subj "/CN=airlock $1" -addext "subjectAltName=$2" \
    -keyout "$dir/$1.key" -out "$dir/$1.crt" 2>/dev/null
  made=$((made + 2))
}
cert intake   "${INTAKE_TLS_NAMES:-DNS:localhost,IP:127.0.0.1}"
cert clinical "${CLINICAL_TLS_NAMES:-DNS:localhost,IP:127.0.0.1}"

# Not secret: the public key string intake seals to, for compose's ${INTAKE_RECIPIENTS}.
if [ ! -e "$env_file" ]; then
  (umask 022; printf 'INTAKE_RECIPIENTS=%s\n' "$("${bin}transfer" keys show "$dir/clinic-key.json")" > "$env_file")
fi

chmod 600 "$dir"/*
if [ "$(id -u)" -eq 0 ]; then
  # The postgres image reads POSTGRES_PASSWORD_FILE as its postgres user (999); the one-shot
  # logins jobs run as root; the Airlock image runs as distroless nonroot (65532).
  for f in "$dir"/*; do
    case ${f##*/} in
      intake-db-password|clinical-db-password) chown 999:999 "$f" ;;
      intake-web-password|transfer-i-password|clinical-web-password|transfer-c-password) chown 0:0 "$f" ;;
      *) chown 65532:65532 "$f" ;;
    esac
  done
else
  echo "secrets.sh: not root, so the files stay yours; containers read them only as the same uid (see docs/operations.md)" >&2
fi
echo "secrets.sh: $made new file(s) in $dir (mode 0600, directory 0700)"
