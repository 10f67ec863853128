#!/usr/bin/env bash
# `make deploy-check`: static checks of the deployment files.
#   systemd units: `systemd-analyze verify`, and `systemd-analyze security --offline` must rate each
#                  at most 2.0 (0 best, 10 worst)
#   alert rules:   `promtool check rules` and `promtool test rules`
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failed=0

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify wants ExecStart= to exist: point the units at freshly built binaries.
  go build -o "$T/bin/" ./intake/cmd/intake ./transfer/cmd/transfer ./clinical/cmd/clinical
  for u in deploy/systemd/*.service; do sed "s#/usr/local/bin/#$T/bin/#" "$u" >"$T/${u##*/}"; done
  if out=$(systemd-analyze verify "$T"/*.service 2>&1) && [ -z "$out" ]; then
    echo "ok    systemd-analyze verify: deploy/systemd/*.service"
  else
    echo "FAIL  systemd-analyze verify"; echo "$out" | sed 's/^/      /'; failed=1
  fi
  for u in deploy/systemd/*.service; do
    miss=()
    for want in '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^PrivateTmp=yes$' '^ProtectHome=yes$' \
                '^CapabilityBoundingSet=$' '^Restart=on-failure$' '^User=airlock-' '^LoadCredentialEncrypted=' \
                '^MemoryDenyWriteExecute=yes$' '^SystemCallFilter=@system-service$' '^LimitCORE=0$'; do
      grep -q -- "$want" "$u" || miss+=("$want")
    done
    if [ ${#miss[@]} -eq 0 ]; then echo "ok    ${u##*/} has every required hardening line"
    else echo "FAIL  ${u##*/} lacks: ${miss[*]}"; failed=1; fi
  done
  for u in "$T"/*.service; do
    line=$(systemd-analyze security --offline=yes --threshold=20 "$u" 2>&1 | grep 'Overall exposure') || {
      echo "FAIL  systemd-analyze security ${u##*/}: ${line:-no rating}"; failed=1; continue; }
    echo "ok    systemd-analyze security ${u##*/}: ${line#*: }"
  done
else
  echo "skip  systemd units: systemd-analyze is not installed"
fi
if command -v promtool >/dev/null 2>&1; then
  for step in "check rules deploy/prometheus/alerts.yaml" "test rules deploy/prometheus/alerts_test.yaml" \
              "check config deploy/prometheus/prometheus.yml"; do
    # shellcheck disable=SC2086
    if out=$(promtool $step 2>&1); then
      echo "ok    promtool $step"
    else
      echo "FAIL  promtool $step"; echo "$out" | sed 's/^/      /'; failed=1
    fi
  done
else
  echo "FAIL  promtool is not installed (Debian package prometheus; .ci/run installs it)"; failed=1
fi
exit $failed
