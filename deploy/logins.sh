#!/bin/sh
# Creates the LOGIN users the services connect as and grants each its one
# Airlock role. Run after the migrations (which create the roles), as the
# database owner. LOGINS is a list of user:role:password-file; a user holding two
# roles (intake_web: airlock_intake_writer and airlock_intake_results) is
# listed once per role.
set -eu
# psql ignores a password file other users can read, as mounted secrets are.
if [ -n "${PGPASSWORD_FILE:-}" ]; then PGPASSWORD=$(cat "$PGPASSWORD_FILE"); export PGPASSWORD; fi
for spec in $LOGINS; do
  user=${spec%%:*}; rest=${spec#*:}; role=${rest%%:*}; pwfile=${rest#*:}
  psql -v ON_ERROR_STOP=1 -q -v user="$user" -v role="$role" -v pw="$(cat "$pwfile")" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'user', :'pw') \gexec
SELECT format('GRANT %I TO %I', :'role', :'user') \gexec
SQL
  echo "login $user granted $role"
done
