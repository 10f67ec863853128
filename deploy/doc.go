// Package deploy holds no code: its tests check the deployment files beside them (compose.yaml,
// secrets.sh, the Dockerfile, the ignore files, the Prometheus rules and the Grafana dashboard)
// for the properties the security design depends on. `make deploy-test` runs the topology itself.
package deploy
